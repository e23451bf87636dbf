"""The stage graph as users see it: what each change retrains, counted on real runs,
and where the two compared nets start from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import stage_statuses

# small digits runs with the baseline on; t-SNE on a few points
RUN = ["--set", "pretrain.epochs=2", "--set", "head.epochs=2", "--set", "finetune.epochs=2",
       "--set", "evaluate.baseline=true", "--set", "evaluate.tsne=false", "--set", "evaluate.tsne_samples=60",
       "--set", "unroll.epochs=0"]


def trained(result) -> list[str]:
    return sorted(n for n, s in stage_statuses(result).items() if s != "cached")


@pytest.fixture
def first_run(aepipe):
    result = aepipe("run", "--json", "-q", *RUN)
    assert set(stage_statuses(result).values()) == {"trained"}
    return result


def test_status_lists_baseline_and_tsne_stages_when_enabled(aepipe, first_run):
    rows = json.loads(aepipe("status", "--json", *RUN, "--set", "evaluate.tsne=true").stdout)["stages"]
    assert [(r["name"], r["status"]) for r in rows] == [
        ("pretrain-0", "cached"), ("pretrain-1", "cached"), ("head", "cached"), ("finetune", "cached"),
        ("baseline", "cached"), ("evaluate", "cached"), ("tsne", "missing")]
    off = json.loads(aepipe("status", "--json", *RUN, "--set", "evaluate.baseline=false").stdout)["stages"]
    assert "baseline" not in [r["name"] for r in off]


def test_toggling_tsne_trains_only_tsne(aepipe, first_run):
    on = aepipe("run", "--json", "-q", *RUN, "--set", "evaluate.tsne=true")
    assert trained(on) == ["tsne"]
    assert set(json.loads(on.stdout)["metrics"]["tsne"]) == {"raw", "pca", "ae"}
    off = aepipe("run", "--json", "-q", *RUN)
    assert trained(off) == [] and "tsne" not in json.loads(off.stdout)["metrics"]


def test_changing_pretraining_noise_keeps_the_baseline(aepipe, first_run):
    noisy = aepipe("run", "--json", "-q", *RUN, "--set", "layers.0.noise.kind=masking")
    assert trained(noisy) == ["evaluate", "finetune", "head", "pretrain-0", "pretrain-1"]
    before, after = (json.loads(r.stdout)["metrics"] for r in (first_run, noisy))
    assert after["baseline_test_accuracy"] == before["baseline_test_accuracy"]  # the same stage, reused


def test_label_counts_share_every_pretrain_stage(aepipe, first_run):
    few = aepipe("run", "--json", "-q", *RUN, "--set", "data.labels=200")
    assert trained(few) == ["baseline", "evaluate", "finetune", "head"]
    fewer = aepipe("run", "--json", "-q", *RUN, "--set", "data.labels=100")
    assert trained(fewer) == ["baseline", "evaluate", "finetune", "head"]


def test_rebuild_retrains_a_stage_and_what_depends_on_it(aepipe, first_run, artifacts):
    again = aepipe("run", "--json", "-q", *RUN, "--rebuild", "pretrain-1")
    assert trained(again) == ["evaluate", "finetune", "head", "pretrain-1"]
    assert json.loads(again.stdout)["metrics"]["test_accuracy"] == json.loads(first_run.stdout)["metrics"][
        "test_accuracy"]  # bit-identical retraining
    assert list((artifacts / "quarantine").glob("pretrain-*"))  # the old copy is kept until `aepipe clean`
    everything = aepipe("run", "--json", "-q", *RUN, "--rebuild", "all")
    assert set(stage_statuses(everything).values()) == {"trained"}
    bad = aepipe("run", "-q", *RUN, "--rebuild", "tsne", expect=2)
    assert "--rebuild 'tsne': this run has no such stage" in bad.stderr


def test_baseline_starts_from_random_weights_finetune_from_the_stage_files(aepipe, artifacts, monkeypatch):
    """Both nets train with the same seed (data order, noise); only their starting weights differ."""
    from aepipe.nn import train

    starts, real_fit = {}, train.fit

    def recording_fit(model, x, y, **kw):
        if model.name == "stacked_classifier":
            starts[Path(kw["workdir"]).name.split("-")[0]] = ([w.copy() for w in model.get_weights()], kw["seed"])
        return real_fit(model, x, y, **kw)

    monkeypatch.setattr(train, "fit", recording_fit)
    result = aepipe("run", "--json", "-q", *RUN)
    paths = {s["name"]: Path(s["path"]) for s in json.loads(result.stdout)["stages"]}
    (ft_weights, ft_seed), (base_weights, base_seed) = starts["finetune"], starts["baseline"]
    assert ft_seed == base_seed
    import keras

    for i in range(2):
        enc = keras.models.Sequential([keras.Input((64,) if i == 0 else (48,)),
                                       keras.layers.Dense(48 if i == 0 else 24, name="dense")])
        enc.load_weights(paths[f"pretrain-{i}"] / "encoder.weights.h5")
        kernel = enc.get_weights()[0]
        assert np.array_equal(ft_weights[2 * i], kernel)  # the pretrained kernel, read from the stage file
        assert not np.allclose(base_weights[2 * i], kernel)
        assert base_weights[2 * i].shape == kernel.shape
