"""report.md and metrics.json of a run, ``aepipe report``, --tensorboard, few labels."""

import json

import numpy as np
import pytest

from aepipe.analysis.report import render_report
from conftest import stage_statuses

# Small, but with every part of a run turned on: baseline, t-SNE, few labels.
SMALL = ["--set", "pretrain.epochs=2", "--set", "head.epochs=2", "--set", "finetune.epochs=2",
         "--set", "evaluate.baseline=true", "--set", "evaluate.tsne=true",
         "--set", "evaluate.tsne_samples=90", "--set", "data.labels=300",
         "--set", "unroll.epochs=0"]
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
    assert set(metrics["stages"]) == {"pretrain-0", "pretrain-1", "head", "finetune", "baseline", "evaluate", "tsne"}
    c = metrics["comparison"]
    assert c["n"] == metrics["n_test"] == c["only_pretrained"] + c["only_baseline"] + c["both"] + c["neither"]
    assert c["accuracy_difference"] == pytest.approx(metrics["test_accuracy"] - metrics["baseline_test_accuracy"])
    assert c["ci95"][0] <= c["accuracy_difference"] <= c["ci95"][1] and 0 <= c["p_value"] <= 1
    assert c["verdict"] in ("helped", "hurt", "within noise")
    report = (d / "report.md").read_text()
    for png in PNGS:
        assert f"![{png}]({png})" in report
    assert "| AE-24 (top codes) |" in report and "| PCA-24 |" in report
    assert "random-init baseline (2 epochs" in report
    assert (f"Paired comparison with the random-init one, on the same {c['n']} test rows: {c['only_pretrained']} "
            f"only the pretrained net gets right, {c['only_baseline']} only the random-init one; exact McNemar p = "
            ) in report
    assert "95 % interval" in report and "Verdict for this pair of nets: **" in report
    assert "one pair of nets, not a finding about pretraining" in report  # one replicate
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
    for stage in ("pretrain-0", "pretrain-1", "head", "finetune", "baseline"):
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
    from aepipe.stages.context import labeled_indices

    y = np.repeat(np.arange(10), 100)
    idx = labeled_indices(y, 600, seed=0)
    assert len(idx) == 600 and np.bincount(y[idx]).tolist() == [60] * 10
    assert np.array_equal(idx, labeled_indices(y, 600, seed=0))
    assert len(labeled_indices(y, None, seed=0)) == 1000
    y_some = np.where(np.arange(1000) % 4 == 0, y, -1)  # -1: unlabeled (scikit-learn's convention)
    assert np.array_equal(labeled_indices(y_some, None, seed=0), np.arange(0, 1000, 4))
    idx = labeled_indices(y_some, 100, seed=0)
    assert len(idx) == 100 and (y_some[idx] >= 0).all() and np.bincount(y_some[idx]).tolist() == [10] * 10


def test_paired_comparison_counts_rows_only_one_net_gets_right():
    from scipy.stats import binomtest

    from aepipe.analysis.metrics import paired_comparison

    y = np.zeros(1000, int)
    a = np.where(np.arange(1000) < 900, 0, 1)  # pretrained: 900 right
    b = np.where((np.arange(1000) >= 40) & (np.arange(1000) < 880), 0, 1)  # baseline: 840 right
    c = paired_comparison(y, a, b)
    assert (c["only_pretrained"], c["only_baseline"], c["both"], c["neither"]) == (60, 0, 840, 100)
    assert c["p_value"] == pytest.approx(binomtest(60, 60, 0.5).pvalue) and c["verdict"] == "helped"
    assert c["accuracy_difference"] == pytest.approx(0.06) and c["ci95"][0] > 0
    assert paired_comparison(y, b, a)["verdict"] == "hurt"
    same = paired_comparison(y, a, a)
    assert same["verdict"] == "within noise" and same["p_value"] == 1.0 and same["ci95"] == [0.0, 0.0]
    close = paired_comparison(y, a, np.where(np.arange(1000) < 895, 0, 1))
    assert close["verdict"] == "within noise" and close["ci95"][0] < 0 < close["ci95"][1]


def test_render_report_from_plain_dicts():
    run = {"pipeline": "p", "run_dir": "/r", "stages": [
        {"name": "pretrain-0", "key": "a" * 64, "status": "cached", "seconds": 0.01}],
        "metrics": {"test_accuracy": 0.9, "baseline_test_accuracy": 0.92, "baseline_epochs": 5,
                    "baseline_seconds": 4.0,
                    "comparison": {"n": 100, "only_pretrained": 3, "only_baseline": 5, "both": 87, "neither": 5,
                                   "accuracy_difference": -0.02, "ci95": [-0.075, 0.035], "p_value": 0.727,
                                   "verdict": "within noise"},
                    "reconstruction_mse": {"pretrain-0": 0.01}, "stages": {"pretrain-0": 12.0},
                    "tsne": {"raw": {"knn_accuracy": 0.9, "trustworthiness": 0.97, "seconds": 3.0}}}}
    spec = {"layers": [{"units": 16, "epochs": 7}], "data": {"labels": None}, "finetune": {"epochs": 5},
            "head": {"epochs": 3},
            "evaluate": {"tsne_samples": 500}}
    text = render_report(run, spec, ["tsne.png"])
    assert "| test accuracy (pretrained; pretrain 7, head 3, fine-tune 5 epochs) | 90.00 % |" in text
    assert ("Paired comparison with the random-init one, on the same 100 test rows: 3 only the pretrained net "
            "gets right, 5 only the random-init one; exact McNemar p = 0.727; accuracy difference -2.00 points "
            "(95 % interval -7.50 to +3.50). Verdict for this pair of nets: **within noise**") in text
    plain = dict(run["metrics"]["comparison"], only_pretrained=9, only_baseline=1, p_value=0.021, verdict="helped")
    few = render_report({**run, "metrics": {**run["metrics"], "plain_comparison": plain}}, spec)
    assert ("Paired comparison with the random-init one fine-tuned on the labeled rows alone, on the same 100 "
            "test rows: 9 only the pretrained net gets right") in few
    assert "**the pretrained net is ahead**" in few
    assert "took 12 s (pretrain, head, fine-tune); the random-init one 4 s." in text
    assert "| pretrain-0 | `aaaaaaaaaaaaaaaa` | cached | 0.0 | 12.0 |" in text
    assert "| raw inputs | 0.900 | 0.970 | 3.0 |" in text and "## t-SNE of 500 test points" in text
    assert "### t-SNE of the test set" in text


def test_finetune_input_dropout_is_a_stock_dropout_before_the_encoders():
    import keras

    from aepipe import config as spec_mod
    from aepipe.nn.classifier import build_classifier
    from aepipe.nn.blocks import stack_blocks

    spec = spec_mod.loads("[[layers]]\nunits = 8\n[finetune]\ninput_dropout = 0.2\ndropout = 0.5\n")
    blocks = stack_blocks(spec.layers, (16,))
    model = build_classifier([b.encoder for b in blocks], (16,), 3, spec.finetune.dropout,
                             spec.finetune.input_dropout)
    first, _, after = model.layers[:3]
    assert isinstance(first, keras.layers.Dropout) and first.rate == 0.2 and first.name == "input_dropout"
    assert isinstance(after, keras.layers.Dropout) and after.rate == 0.5
    x = np.ones((4, 16), dtype=np.float32)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))


def test_metrics_json_holds_only_documented_keys(runs):
    """docs/reference/metrics.md is generated from METRICS_KEYS: a key a run writes must be there."""
    from aepipe.analysis.metrics_keys import METRICS_KEYS

    _, first, _ = runs
    metrics = json.loads((_run_dir(first) / "metrics.json").read_text())
    assert {"comparison", "tsne"} <= set(metrics)  # the baseline and t-SNE are on
    assert set(metrics) <= set(METRICS_KEYS), set(metrics) - set(METRICS_KEYS)
