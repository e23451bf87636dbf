"""Nothing lost while exploring (issue 31), as a user hits it on the command line:
``clean --keep-last`` counts runs per configuration, not per pipeline name, and
says what it removes by configuration; ``runs`` tells a --set variant from the
pipeline file's own runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import TINY, aepipe, assert_one_line_error, run_json

VARIANT = ("--set", "layers.1.units=26", "--set", "evaluate.tsne=false")


@pytest.fixture(scope="module")
def explored(tiny_run, tmp_path_factory):
    """`aepipe run`, then `aepipe run --set layers.1.units=26 --set evaluate.tsne=false`
    (TINY epochs both times) in one artifacts directory."""
    art = tmp_path_factory.mktemp("explored") / "art"
    shutil.copytree(tiny_run[0], art)
    return art, tiny_run[1], run_json(art, *TINY, *VARIANT)


@pytest.fixture
def copy(explored, tmp_path):
    src, default, variant = explored
    art = tmp_path / "art"
    shutil.copytree(src, art)
    return art, Path(default["run_dir"]).name, Path(variant["run_dir"]).name


def test_keep_last_keeps_the_default_configuration_cached(copy):
    art, default, variant = copy
    runs = art / "runs" / "digits"
    shutil.copytree(runs / default, runs / "20250101T000000Z")  # an older run of the default configuration
    p = aepipe("clean", "--artifacts", art, "--keep-last", "1")
    assert p.returncode == 0, p.stderr
    print(p.stdout)
    lines = p.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("digits [")]
    assert len(heads) == 2, p.stdout  # two configurations, each its own line
    first, second = (lines[i] for i in heads)
    assert "layers.1.units" not in first and "(vs the built-in pipeline): 2 runs, keeping 1" in first, first
    assert "layers.1.units=26" in second and ": 1 run, keeping 1" in second, second
    # what goes is listed under its configuration, before it goes
    assert lines[heads[0] + 1].strip() == f"removing {runs / '20250101T000000Z'}"
    assert sorted(p.name for p in runs.iterdir()) == sorted([default, variant])
    st = aepipe("status", "--artifacts", art, "--json", *TINY)
    assert {r["status"] for r in json.loads(st.stdout)["stages"]} == {"cached"}, st.stdout
    st = aepipe("status", "--artifacts", art, "--json", *TINY, *VARIANT)
    assert {r["status"] for r in json.loads(st.stdout)["stages"]} == {"cached"}, st.stdout


def test_runs_shows_how_each_run_differs_from_the_pipeline_file(copy, tmp_path):
    art, default, variant = copy
    rows = {r["run"]: r for r in json.loads(aepipe("runs", "--artifacts", art, "--json").stdout)["runs"]}
    d, v = rows[f"digits/{default}"], rows[f"digits/{variant}"]
    assert d["configuration"] != v["configuration"]
    assert "layers.1.units=26" in v["overrides"] and not any(o.startswith("layers.1.units") for o in d["overrides"])
    assert "finetune.epochs=3" in d["overrides"] and d["compared_with"] == "the built-in pipeline"
    text = aepipe("runs", "--artifacts", art).stdout.splitlines()
    assert text[0].split()[-1] == "configuration"
    assert "layers.1.units=26" in next(line for line in text if variant in line)
    # against a pipeline file: the file's own settings are no override
    pipeline = tmp_path / "tiny.toml"
    shutil.copy(Path(__file__).parents[1] / "pipelines" / "digits.toml", pipeline)
    text = pipeline.read_text()
    for old, new in (("epochs = 30", "epochs = 3"), ("epochs = 100", "epochs = 0"), ("epochs = 30", "epochs = 2"),
                     ("epochs = 40", "epochs = 3"), ('activation = "tanh"', 'activation = "relu"')):  # TINY's
        text = text.replace(f"{old}\n", f"{new}\n", 1)  # pretrain, unroll, head, finetune in file order
    pipeline.write_text(text)
    rows = {r["run"]: r for r in json.loads(aepipe("runs", pipeline, "--artifacts", art, "--json").stdout)["runs"]}
    assert rows[f"digits/{default}"]["overrides"] == ["evaluate.baseline=false", "evaluate.tsne=false"]
    assert rows[f"digits/{variant}"]["overrides"] == ["evaluate.baseline=false", "evaluate.tsne=false",
                                                      "layers.1.units=26"]


def _tree(art: Path) -> list[str]:
    return sorted(str(p.relative_to(art)) for p in art.rglob("*"))


def test_clean_refuses_when_a_run_record_cannot_be_read(copy):
    """The default run's run.json torn: it is the only record naming the default's
    stages (the pipeline record names the variant's), so clean refuses, names the
    file and removes nothing; --force cleans as if it named nothing."""
    art, default, _ = copy
    torn = art / "runs" / "digits" / default / "run.json"
    torn.write_text(torn.read_text()[:100])
    before = _tree(art)
    for args in ((), ("--keep-last", "1"), ("--dry-run",)):
        p = aepipe("clean", "--artifacts", art, *args)
        assert_one_line_error(p, 2, "cannot be read", str(torn), "--force", "nothing was removed")
        assert p.stdout == ""
        assert _tree(art) == before
    p = aepipe("clean", "--artifacts", art, "--force", "--json")
    assert p.returncode == 0, p.stderr
    assert any(Path(r).name.startswith("pretrain-") for r in json.loads(p.stdout)["removed"])
    st = aepipe("status", "--artifacts", art, "--json", *TINY)
    assert {r["status"] for r in json.loads(st.stdout)["stages"]} != {"cached"}  # what --force means


def test_clean_refuses_when_a_pipeline_record_cannot_be_read(copy):
    art, default, _ = copy
    shutil.rmtree(art / "runs" / "digits" / default)  # the pipeline record alone names the variant's stages
    record = art / "pipelines" / "digits.json"
    record.write_text("{")
    before = _tree(art)
    assert_one_line_error(aepipe("clean", "--artifacts", art), 2, str(record))
    assert _tree(art) == before
