"""report.md and metrics.json of a run, ``aepipe report``, --tensorboard, few labels."""

import json

import numpy as np
import pytest

from aepipe.report import render_report
from conftest import stage_statuses

# Small, but with every part of a run turned on: baseline, t-SNE, few labels.
SMALL = ["--set", "pretrain.epochs=2", "--set", "head.epochs=2", "--set", "finetune.epochs=2",
         "--set", "evaluate.baseline=true", "--set", "evaluate.tsne=true",
         "--set", "evaluate.tsne_samples=90", "--set", "data.labels=300"]
PNGS = {"curves.png", "confusion.png", "reconstructions.png", "filters.png", "tsne.png"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One digits run with --tensorboard, then a fully cached rerun."""
    from click.testing import CliRunner

    from aepipe.cli import main

    artifacts = tmp_path_factory.mktemp("report") / "artifacts"

    def invoke(*args):
        res = CliRunner().invoke(main, [*args, "--artifacts", str(artifacts)])
        assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
        return res

    first = invoke("run", *SMALL, "--tensorboard", "--json")
    again = invoke("run", *SMALL, "--json")
    return artifacts, first, again


def _run_dir(res):
    from pathlib import Path

    return Path(json.loads(res.stdout)["run_dir"])


def test_run_dir_has_report_metrics_and_every_plot(runs):
    _, first, _ = runs
    d = _run_dir(first)
    assert PNGS <= {p.name for p in d.glob("*.png")}
    metrics = json.loads((d / "metrics.json").read_text())
    for key in ("test_accuracy", "baseline_test_accuracy", "reconstruction_mse", "reconstruction_mse_input",
                "tsne", "stages"):
        assert key in metrics, key
    assert set(metrics["tsne"]) == {"raw", "pca", "ae"}
    assert set(metrics["tsne"]["ae"]) >= {"knn_accuracy", "trustworthiness", "seconds"}
    assert metrics["tsne"]["ae"]["points"] == 90 and metrics["tsne"]["pca"]["dims"] == 24
    assert set(metrics["reconstruction_mse"]) == set(metrics["reconstruction_mse_input"]) == {"pretrain-0",
                                                                                              "pretrain-1"}
    assert set(metrics["stages"]) == {"pretrain-0", "pretrain-1", "head", "finetune", "evaluate"}
    report = (d / "report.md").read_text()
    for png in PNGS:
        assert f"![{png}]({png})" in report
    assert "| AE-24 (top codes) |" in report and "| PCA-24 |" in report
    assert "random-init baseline (2 epochs" in report and "percentage points over random init" in report
    assert "Labels used for head and fine-tune: 300" in report
    assert '"labels": 300' in report  # the resolved spec


def test_cached_rerun_writes_a_complete_new_run_dir(runs):
    _, first, again = runs
    assert set(stage_statuses(again).values()) == {"cached"}
    d1, d2 = _run_dir(first), _run_dir(again)
    assert d1 != d2
    assert {p.name for p in d2.glob("*.png")} == {p.name for p in d1.glob("*.png")}
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (d1, d2))
    assert m1 == m2
    assert "| evaluate | " in (d2 / "report.md").read_text() and "| cached |" in (d2 / "report.md").read_text()


def test_tensorboard_logs_for_every_trained_stage(runs):
    _, first, again = runs
    tb = _run_dir(first) / "tensorboard"
    for stage in ("pretrain-0", "pretrain-1", "head", "finetune", "evaluate/baseline"):
        assert list((tb / stage).rglob("events.out.tfevents.*")), stage
    assert not (_run_dir(again) / "tensorboard").exists()  # not asked for, and nothing trained


def test_report_command_reprints_report_and_metrics(runs, aepipe):
    from click.testing import CliRunner

    from aepipe.cli import main

    artifacts, first, _ = runs
    d = _run_dir(first)
    assert aepipe("report", d).stdout == (d / "report.md").read_text()
    assert json.loads(aepipe("report", d, "--json").stdout) == json.loads((d / "metrics.json").read_text())
    newest = sorted((artifacts / "runs" / "digits").iterdir())[-1]
    assert aepipe("report", artifacts / "runs" / "digits").stdout == (newest / "report.md").read_text()
    named = CliRunner().invoke(main, ["report", "digits", "--artifacts", str(artifacts)])
    assert named.stdout == (newest / "report.md").read_text()


def test_report_command_renders_when_report_md_is_gone(runs, aepipe, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(_run_dir(runs[1]), copy)
    (copy / "report.md").unlink()
    text = aepipe("report", copy).stdout
    assert text.startswith("# aepipe run: digits") and "![tsne.png](tsne.png)" in text


def test_report_command_on_a_non_run_dir_fails_clearly(aepipe, tmp_path):
    res = aepipe("report", tmp_path, expect=1)
    assert "is not an aepipe run directory" in res.stderr


def test_few_labels_are_seeded_stratified_and_shared_with_the_baseline():
    from aepipe.stages import labeled_indices

    y = np.repeat(np.arange(10), 100)
    idx = labeled_indices(y, 600, seed=0)
    assert len(idx) == 600 and np.bincount(y[idx]).tolist() == [60] * 10
    assert np.array_equal(idx, labeled_indices(y, 600, seed=0))
    assert len(labeled_indices(y, None, seed=0)) == 1000


def test_render_report_from_plain_dicts():
    run = {"pipeline": "p", "run_dir": "/r", "stages": [
        {"name": "pretrain-0", "key": "a" * 64, "status": "cached", "seconds": 0.01}],
        "metrics": {"test_accuracy": 0.9, "baseline_test_accuracy": 0.92, "baseline_epochs": 5,
                    "baseline_seconds": 4.0,
                    "reconstruction_mse": {"pretrain-0": 0.01}, "stages": {"pretrain-0": 12.0},
                    "tsne": {"raw": {"knn_accuracy": 0.9, "trustworthiness": 0.97, "seconds": 3.0}}}}
    spec = {"layers": [{"units": 16, "epochs": 7}], "data": {"labels": None}, "finetune": {"epochs": 5},
            "head": {"epochs": 3},
            "evaluate": {"tsne_samples": 500}}
    text = render_report(run, spec, ["tsne.png"])
    assert "| test accuracy (pretrained; pretrain 7, head 3, fine-tune 5 epochs) | 90.00 % |" in text
    assert "Pretraining did not help: -2.00 percentage points" in text
    assert "took 12 s (pretrain, head, fine-tune); the random-init one 4 s." in text
    assert "| pretrain-0 | `aaaaaaaaaaaaaaaa` | cached | 0.0 | 12.0 |" in text
    assert "| raw inputs | 0.900 | 0.970 | 3.0 |" in text and "## t-SNE of 500 test points" in text
    assert "### t-SNE of the test set" in text


def test_finetune_input_dropout_is_a_stock_dropout_before_the_encoders():
    import keras

    from aepipe import spec as spec_mod
    from aepipe.blocks import build_classifier
    from aepipe.stages import stack_blocks

    spec = spec_mod.loads("[[layers]]\nunits = 8\n[finetune]\ninput_dropout = 0.2\ndropout = 0.5\n")
    blocks = stack_blocks(spec, (16,))
    model = build_classifier([b.encoder for b in blocks], (16,), 3, spec.finetune.dropout,
                             spec.finetune.input_dropout)
    first, _, after = model.layers[:3]
    assert isinstance(first, keras.layers.Dropout) and first.rate == 0.2 and first.name == "input_dropout"
    assert isinstance(after, keras.layers.Dropout) and after.rate == 0.5
    x = np.ones((4, 16), dtype=np.float32)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
