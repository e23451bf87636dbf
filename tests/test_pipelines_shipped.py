"""Every shipped pipeline parses; the digits and sequence ones run end to end
(tiny epochs) through the CLI."""

import json
from pathlib import Path

import pytest

from aepipe import config as spec

PIPELINES = Path(__file__).parent.parent / "pipelines"
TINY = ["--set", "pretrain.epochs=1", "--set", "head.epochs=1", "--set", "finetune.epochs=1",
        "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false"]
# each block kind has a unit test (test_blocks); the default suite runs digits-vae end to end (its pictures
# are checked only here), the others run with -m slow
RUNNABLE = [pytest.param(n, marks=() if n == "digits-vae" else pytest.mark.slow)
            for n in ("digits-sparse", "digits-denoising", "digits-tied", "digits-conv", "sequences-lstm",
                      "digits-vae", "digits-layer-matching")]


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_pipeline_is_valid(path):
    s = spec.load(path)
    assert s.layers and s.pretrain.mode in ("greedy", "joint", "layer_matching")


@pytest.mark.parametrize("name", RUNNABLE)
def test_pipeline_runs_end_to_end(name, aepipe, artifacts):
    result = aepipe("run", PIPELINES / f"{name}.toml", "--json", "-q", *TINY)
    out = json.loads(result.stdout)
    assert 0.0 <= out["metrics"]["test_accuracy"] <= 1.0
    mse = out["metrics"]["reconstruction_mse"]
    assert mse and all(v is not None and v >= 0 for v in mse.values())
    if name == "digits-vae":
        paths = {s["name"]: Path(s["path"]) for s in out["stages"]}
        assert (paths["pretrain-0"] / "latent_manifold.png").stat().st_size > 0  # needs no labels
        assert (paths["evaluate"] / "latent_scatter_0.png").stat().st_size > 0  # coloured by class
        for png in ("latent_manifold.png", "latent_scatter.png"):  # copied into the run
            assert (Path(out["run_dir"]) / f"pretrain-0-{png}").is_file()
