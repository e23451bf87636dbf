"""Issue 31's remaining items, as a user hits them: inputs on another scale,
schedules that never start, few-label validation, tune's bad targets, and what
the plots and the summary say."""

from __future__ import annotations

import shutil
from pathlib import Path
import warnings

import numpy as np
import pytest
from clirun import TINY, aepipe, assert_one_line_error
from sklearn.datasets import load_digits

import aepipe as ae


@pytest.fixture(scope="module")
def raw_digits():
    return load_digits().data  # pixels 0..16; the digits source divides them by 16


# ---------------------------------------------------------------- inputs on another scale


def test_encode_warns_once_when_inputs_are_on_another_scale(tiny_run, tmp_path, raw_digits):
    art, _ = tiny_run
    np.save(tmp_path / "raw.npy", raw_digits)
    p = aepipe("encode", "--artifacts", art, *TINY, tmp_path / "raw.npy", "-o", tmp_path / "raw-codes.npy")
    assert p.returncode == 0, p.stderr
    warned = [line for line in p.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, p.stderr
    assert "raw.npy" in warned[0] and "inputs lie in [0, 16], the training data in [0, 1]" in warned[0]
    assert (tmp_path / "raw-codes.npy").is_file()  # a warning, not a refusal


def test_a_loaded_run_warns_on_inputs_of_another_scale(tiny_run, raw_digits):
    _, result = tiny_run
    clf = ae.load(result["run_dir"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ae.InputRangeWarning)
        clf.predict(raw_digits[:50] / 16)  # the training scale: silent
    for method in (clf.predict, clf.predict_proba):
        with pytest.warns(ae.InputRangeWarning, match=r"StackedAutoencoderClassifier: inputs lie in \[0, 16\]"):
            method(raw_digits[:50])


def test_the_transformer_warns_on_inputs_of_another_scale(raw_digits):
    X = raw_digits[:300] / 16
    est = ae.AutoencoderTransformer(layers=(8,), epochs=1, random_state=0).fit(X)
    assert est.data_min_.shape == est.data_max_.shape == (64,)
    np.testing.assert_array_equal(est.data_max_, X.max(axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ae.InputRangeWarning)
        est.transform(raw_digits[300:600] / 16)  # other rows of the same scale
    with pytest.warns(ae.InputRangeWarning, match="times its width beyond it") as caught:
        est.transform(raw_digits[300:600])
    assert len(caught) == 1
    with pytest.warns(ae.InputRangeWarning):  # standardised (centred) inputs are another scale too
        est.transform((raw_digits[300:600] - 8) * 3)


# ---------------------------------------------------------------- schedules the budget never reaches


@pytest.mark.slow  # trains; test_a_rows_probabilities_do_not_depend_on_its_neighbours checks the warning by default
def test_a_pseudo_label_ramp_that_never_starts_is_a_warning(tmp_path):
    p = aepipe("finetune", "--artifacts", tmp_path, "-q", "--set", "pretrain.epochs=1", "--set", "head.epochs=1",
               "--set", "finetune.epochs=3", "--set", "finetune.pseudo_labels=3", "--set", "data.labels=100")
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [
        "warning: finetune.pseudo_labels ramps in from epoch 100 (pseudo_labels_start) to 600 (pseudo_labels_end), "
        "but fine-tuning runs 3 epochs: the pseudo-label loss never switches on; set pseudo_labels_start and "
        "pseudo_labels_end below finetune.epochs"]


@pytest.mark.parametrize("start, end, epochs, says", [
    (100, 600, 50, "never switches on"), (49, 49, 50, None), (50, 50, 50, "never switches on"),
    (0, 100, 51, "reaches 1.5 of 3"), (0, 10, 50, None)])
def test_which_ramps_the_budget_misses(start, end, epochs, says):
    from aepipe.config import from_dict
    from aepipe.config.schedules import unmet_schedules

    spec = from_dict({"layers": [{"units": 8}], "finetune": {
        "epochs": epochs, "pseudo_labels": 3.0, "pseudo_labels_start": start, "pseudo_labels_end": end}}, "test")
    found = unmet_schedules(spec)
    assert (found == []) if says is None else (says in found[0]), found


# ---------------------------------------------------------------- tune's targets, checked before any trial

SPACE = ("--space", "layers.0.units=int:8:16", "-n", "1")


def test_tune_storage_that_cannot_be_opened_names_the_option_and_path(tmp_path):
    url = f"sqlite:///{tmp_path}/no/such/dir/study.db"
    p = aepipe("tune", "--artifacts", tmp_path / "art", *SPACE, "--storage", url)
    assert_one_line_error(p, 2, "--storage", url, "cannot open the database")
    assert not (tmp_path / "art").exists()


def test_tune_write_best_never_overwrites_the_pipeline_searched(tmp_path, monkeypatch):
    pipeline = tmp_path / "p.toml"
    shutil.copy("pipelines/digits-tied.toml", pipeline)
    before = pipeline.read_bytes()
    monkeypatch.chdir(tmp_path)  # the same file by another spelling
    p = aepipe("tune", "p.toml", "--artifacts", "art", *SPACE, "--write-best", "./sub/../p.toml")
    assert_one_line_error(p, 2, "--write-best", "is the pipeline being searched")
    assert pipeline.read_bytes() == before and not (tmp_path / "art").exists()


# ---------------------------------------------------------------- the summary says what it compares


def test_the_reconstruction_line_says_what_it_compares():
    from aepipe.analysis.report import reconstruction_summary

    r = {"greedy": 1.333, "pca": 0.371, "pca_components": 24, "code_size": 24}
    assert reconstruction_summary({"reconstruction": r}) == (
        "test reconstruction error, squared error per example (lower is better): "
        "greedy stack (no unroll) 1.333, PCA-24 (same code width) 0.371")
    line = reconstruction_summary({"reconstruction": {**r, "unroll": 0.9}})
    assert "greedy stack 1.333, unrolled 0.900, PCA-24 (same code width) 0.371" in line


# ---------------------------------------------------------------- what the pictures say


def test_curves_name_each_layers_loss_on_the_y_axis():
    from aepipe.analysis import plots

    h = {"loss": [2, 1], "val_loss": [2, 1.5]}
    fig = plots.curves_figure({"pretrain-0": h, "pretrain-1": h}, None,
                              {"pretrain-0": "binary cross-entropy (reconstruction)",
                               "pretrain-1": "mean squared error (reconstruction)"})
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_visible() and ax.lines] == [
        "binary cross-entropy (reconstruction)", "mean squared error (reconstruction)"]


def test_filters_have_a_colour_bar_and_a_caption():
    from aepipe.analysis import plots

    fig = plots.filters_figure(np.random.default_rng(0).normal(size=(10, 64)), side=8)
    bars = [ax for ax in fig.axes if "largest |weight|" in ax.get_ylabel()]
    assert len(bars) == 1
    assert "one unit's weights" in fig._supxlabel.get_text()


def test_confusion_says_which_net_it_shows():
    from aepipe.analysis import plots

    fig = plots.confusion_figure([[3, 1], [0, 4]], ["a", "b"])
    assert fig.axes[0].get_title() == "confusion matrix of the fine-tuned pretrained net (test set)"


def test_a_runs_curves_name_the_losses_from_its_stages(tiny_run):
    import json

    from aepipe.analysis.plots import _loss_name
    from aepipe.engine.store import Stage

    art, result = tiny_run
    stages = {s["name"]: Stage(art / "stages" / s["path"].split("/")[-1],
                               json.loads((art / "stages" / s["path"].split("/")[-1] / "manifest.json").read_text()))
              for s in json.loads((Path(result["run_dir"]) / "run.json").read_text())["stages"]}
    assert _loss_name("pretrain-0", stages) == "binary cross-entropy (reconstruction)"
    assert _loss_name("pretrain-1", stages) == "mean squared error (reconstruction)"
    assert _loss_name("finetune", stages) == "cross-entropy"


# ---------------------------------------------------------------- a row's result is its own


def test_a_rows_probabilities_do_not_depend_on_its_neighbours(raw_digits):
    """One fit for two items: a ramp the budget never reaches warns, and a row's result is its own
    (scikit-learn's check_methods_sample_order_invariance runs in the slow suite)."""
    from aepipe.config.schedules import ScheduleWarning

    y = load_digits().target[:300].copy()
    y[200:] = -1  # unlabeled rows, for the pseudo-labels
    clf = ae.StackedAutoencoderClassifier(layers=(16,), epochs=1, pseudo_labels=3.0, random_state=0)
    with pytest.warns(ScheduleWarning, match="never switches on"):
        clf.fit(raw_digits[:300] / 16, y)
    x = raw_digits[300:900] / 16  # more rows than one inference block
    order = np.random.default_rng(0).permutation(len(x))
    np.testing.assert_array_equal(clf.predict_proba(x)[order], clf.predict_proba(x[order]))
    np.testing.assert_array_equal(clf.predict_proba(x[:7]), clf.predict_proba(x)[:7])  # nor on how many came


# ---------------------------------------------------------------- rankings on a handful of rows

THIN = "ranks by validation accuracy on 10 rows (data.labels = 100, data.validation_split = 0.1), fewer than 50"


def test_a_sweep_ranked_on_few_validation_rows_says_so_before_training(tmp_path):
    # every grid value is checked first (a bad one is a one-line error, test_bad_input_round3), then
    # the warning, then the first variant trains: the warning is stderr's first line
    p = aepipe("sweep", "--artifacts", tmp_path, *TINY, "--grid", "data.labels=100")
    assert p.returncode == 0 and p.stderr.startswith(f"warning: the sweep {THIN}"), p.stderr
    assert "sweep: 1/1 done" in p.stderr.split("\n", 1)[1]  # the variant trained after it


def test_tune_ranked_on_few_validation_rows_says_so_before_any_trial(tmp_path):
    p = aepipe("tune", "--artifacts", tmp_path, "--set", "data.labels=100", "--space", "layers.0.units=int:16:8")
    assert p.returncode == 2 and p.stderr.startswith(f"warning: tune {THIN}"), p.stderr


def test_how_many_rows_validate():
    from aepipe.config.ranking import validation_rows

    assert [validation_rows(n, 0.1) for n in (100, 500, 600)] == [10, 50, 60]
    assert validation_rows(100, 0.0) == 0


# ---------------------------------------------------------------- few-label validation on extra labeled rows


def test_extra_validation_rows_come_from_outside_the_labeled_subset():
    from types import SimpleNamespace

    from aepipe import config
    from aepipe.stages.context import labeled_indices, plan_validation_indices
    from aepipe.stages.supervised import unlabeled_indices

    y = np.repeat(np.arange(10), 60)
    spec = config.from_dict({"layers": [{"units": 8}], "data": {"labels": 50, "validation_labels": 40}}, "test")
    ctx = SimpleNamespace(data=SimpleNamespace(y_train=y), spec=spec)
    plan = SimpleNamespace(params={"labels": 50, "validation_labels": 40})
    idx = labeled_indices(y, 50, spec.seed)
    val = plan_validation_indices(plan, ctx, idx)
    assert len(val) == 40 and not set(val) & set(idx)
    assert np.bincount(y[val]).tolist() == [4] * 10  # stratified
    pool = unlabeled_indices(y, np.concatenate([idx, val]))
    assert len(pool) == 600 - 90 and not set(pool) & set(val)
    assert plan_validation_indices(SimpleNamespace(params={"labels": 50}), ctx, idx) is None


@pytest.mark.parametrize("sets, says", [
    (["data.validation_labels=10"], "needs few-label mode (data.labels)"),
    (["data.labels=20", "data.validation_labels=30"], "more than the 20 training labels"),
    (["data.labels=20", "data.validation_labels=0"], "data.validation_labels")])
def test_validation_labels_that_cannot_hold(tmp_path, sets, says):
    p = aepipe("status", "--artifacts", tmp_path, *(a for s in sets for a in ("--set", s)))
    assert_one_line_error(p, 2, "data.validation_labels", says)


def test_validation_labels_beyond_the_data_fail_before_training(tmp_path):
    p = aepipe("run", "--artifacts", tmp_path, "--set", "data.labels=1000", "--set", "data.validation_labels=1000")
    assert_one_line_error(p, 2, "data.validation_labels", "1000 more to validate on", "has 1347")
    assert not (tmp_path / "stages").exists() or not any((tmp_path / "stages").iterdir())


@pytest.mark.slow
def test_a_few_label_run_validates_on_its_extra_rows(tmp_path):
    import json

    run = aepipe("run", "--artifacts", tmp_path, "--json", "-q", *TINY, "--set", "data.labels=100",
                 "--set", "data.validation_labels=100")
    assert run.returncode == 0, run.stderr
    manifest = json.loads(next((tmp_path / "stages").glob("finetune-*/manifest.json")).read_text())
    assert (manifest["labeled_rows"], manifest["validation_rows"]) == (100, 100)
    assert round(manifest["metrics"]["val_accuracy"] * 100, 4) % 1 == 0  # a share of 100 rows, not of 10


# ---------------------------------------------------------------- near relatives: output paths, t-SNE's folder


@pytest.mark.parametrize("command", [
    ("export", "-o", "{missing}/model.keras"), ("tsne", "-o", "{missing}/tsne"),
    ("encode", "{x}", "-o", "{missing}/codes.npy"),
    ("tune", "--space", "layers.0.units=int:8:16", "--write-best", "{missing}/best.toml")],
    ids=lambda c: c[0])
def test_every_output_path_refuses_a_missing_parent(tmp_path, command):
    np.save(tmp_path / "x.npy", np.zeros((3, 64), np.float32))
    missing = tmp_path / "no" / "such"
    args = [a.format(missing=missing, x=tmp_path / "x.npy") for a in command]
    p = aepipe(args[0], "--artifacts", tmp_path / "art", *args[1:])
    assert_one_line_error(p, 2, str(missing), "does not exist")
    assert not (tmp_path / "no").exists() and not (tmp_path / "art" / "stages").exists()


def test_tsne_writes_a_folder_aepipe_report_reads(tiny_run, tmp_path):
    import json

    art, _ = tiny_run
    out = tmp_path / "tsne"
    p = aepipe("tsne", "--artifacts", art, *TINY, "--features", "raw,ae", "--n", "100", "-o", out, "-q")
    assert p.returncode == 0, p.stderr
    shown = aepipe("report", out)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# t-SNE of digits") and "| ae |" in shown.stdout
    as_json = aepipe("report", out, "--json")
    assert set(json.loads(as_json.stdout)["tsne"]) == {"raw", "ae"}


def test_every_pipeline_name_stays_inside_the_artifacts_directory(tmp_path):
    (tmp_path / "outside" / "20261201T000000Z").mkdir(parents=True)  # a run-like folder out of the store
    for args in (("runs", "../outside"), ("status", "--set", "name=../outside"),
                 ("tune", "--study", "../outside", "--space", "layers.0.units=int:8:16")):
        p = aepipe(args[0], "--artifacts", tmp_path / "art", *args[1:])
        assert_one_line_error(p, 2, "'../outside'", "one path component")
    assert not (tmp_path / "art").exists()
