"""Nothing lost, nothing silently wrong: clean keeps what users still reach, names
are safe paths, diverged training is never cached, bad input fails before
anything trains. Each bad input: its exit code, one line, no traceback, and no
stage or run directory written."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import aepipe
from aepipe.cli import main
from conftest import FAST


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, code: int, *needles: str) -> str:
    err = result.stderr.strip()
    assert result.exit_code == code, (result.exit_code, err, result.exception)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def nothing_written(artifacts: Path) -> bool:
    return not any((artifacts / d).is_dir() and any((artifacts / d).iterdir()) for d in ("stages", "runs"))


def run_json(artifacts, *args) -> dict:
    r = invoke("run", "--json", "-q", *FAST, "--artifacts", artifacts, *args)
    assert r.exit_code == 0, (r.stderr, r.exception)
    return json.loads(r.stdout)


# ---------------------------------------------------------------- clean keeps what is reachable


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs of one pipeline name with different layer widths: the pipeline
    record names only the second's stages."""
    art = tmp_path_factory.mktemp("two-runs") / "art"
    first = run_json(art, "--set", "layers.1.units=16")
    second = run_json(art)
    return art, first, second


def test_clean_keeps_stages_a_surviving_run_directory_uses(two_runs, tmp_path):
    src, first, _ = two_runs
    art = tmp_path / "art"
    shutil.copytree(src, art)
    r = invoke("clean", "--artifacts", art, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["removed"] == []
    run_dir = art / Path(first["run_dir"]).relative_to(src)
    assert aepipe.load(run_dir).spec_.layers[1].units == 16  # the first run still loads


def test_keep_last_counts_only_run_directories(two_runs, tmp_path):
    src, first, second = two_runs
    art = tmp_path / "art"
    shutil.copytree(src, art)
    runs = art / "runs" / "digits"
    for stamp in ("tsne-20990101T000000Z", "tsne-20990102T000000Z"):  # `aepipe tsne` outputs sort last
        (runs / stamp).mkdir()
    r = invoke("clean", "--artifacts", art, "--keep-last", "1", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["removed"] == []  # two configurations (units 16 and 24), one run each
    r = invoke("clean", "--artifacts", art, "--keep-last", "0", "--json")
    assert r.exit_code == 0, r.stderr
    left = sorted(p.name for p in runs.iterdir())
    assert left == ["tsne-20990101T000000Z", "tsne-20990102T000000Z"]
    removed = {Path(p).name for p in json.loads(r.stdout)["removed"]}
    assert {Path(first["run_dir"]).name, Path(second["run_dir"]).name} <= removed
    first_only = {Path(s["path"]).name for s in first["stages"]} - {Path(s["path"]).name for s in second["stages"]}
    assert first_only and first_only <= removed  # its run is gone, so are the stages only it used
    # the pipeline record still names the second run's stages: they stay
    assert {Path(s["path"]).name for s in second["stages"]} <= {p.name for p in (art / "stages").iterdir()}


def test_clean_removes_lock_files_of_removed_stages(two_runs, tmp_path):
    src, _, _ = two_runs
    art = tmp_path / "art"
    shutil.copytree(src, art)
    (art / "locks" / "pretrain-0000000000000000.lock").write_text("{}")
    r = invoke("clean", "--artifacts", art, "--json")
    assert "pretrain-0000000000000000.lock" in {Path(p).name for p in json.loads(r.stdout)["removed"]}
    assert {p.stem for p in (art / "locks").iterdir()} <= {p.name for p in (art / "stages").iterdir()}


def test_clean_on_a_directory_that_is_not_an_artifacts_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    one_line_error(invoke("clean", "--artifacts", tmp_path), 2, "is not an aepipe artifacts directory")
    one_line_error(invoke("clean", "--artifacts", tmp_path / "typo"), 2, "is not an aepipe artifacts directory")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_load_reads_stages_from_the_runs_own_artifacts_directory(two_runs, tmp_path):
    src, _, second = two_runs
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    run_dir = copy / Path(second["run_dir"]).relative_to(src)
    finetune = next(Path(s["path"]).name for s in second["stages"] if s["name"] == "finetune")
    shutil.rmtree(copy / "stages" / finetune)  # the original still has it: it must not be read
    with pytest.raises(aepipe.errors.StoreError, match=f"needs stage {finetune}, which is not in"):
        aepipe.load(run_dir)


# ---------------------------------------------------------------- names


def test_a_pipeline_without_name_is_named_after_its_file(tmp_path):
    p = tmp_path / "my-recipe.toml"
    p.write_text("[[layers]]\nunits = 8\n")
    out = run_json(tmp_path / "art", p)
    assert Path(out["run_dir"]).parent.name == "my-recipe"
    assert (tmp_path / "art" / "pipelines" / "my-recipe.json").is_file()
    assert not (tmp_path / "art" / "pipelines" / "digits.json").exists()


@pytest.mark.parametrize("name", ["../../../somewhere", "", "a/b", "..", ".hidden", "white space"])
def test_unsafe_names_are_spec_errors(tmp_path, name):
    art = tmp_path / "deep" / "art"
    err = one_line_error(invoke("run", *FAST, "--set", f"name={json.dumps(name)}", "--artifacts", art), 2,
                         "name: must be one path component")
    assert not art.exists() and not (tmp_path / "somewhere").exists(), err


# ---------------------------------------------------------------- bad input before anything trains


@pytest.mark.parametrize("args, needles", [
    (["--set", "pretrain=0"], ["pretrain: is a table; got 0"]),
    (["--set", "pretrain=false"], ["pretrain: is a table; got False"]),
    (["--set", 'pretrain=""'], ["pretrain: is a table; got ''"]),
    (["--set", "finetune=3"], ["finetune: is a table"]),
    (["--set", "pretrain.units=8"], ["pretrain.units: is set per layer"]),
    (["--set", "data.labels=5000"], ["data.labels: asks for 5000 labeled examples", "has 1347"]),
    (["--set", "data.labels=5"], ["data.labels: 5 is fewer than the 10 classes"]),
    (["--set", "layers.0.filters=8"], ["layers.0.filters: has no effect here"]),
])
def test_bad_values_fail_before_anything_trains(tmp_path, args, needles):
    art = tmp_path / "art"
    one_line_error(invoke("run", *FAST, *args, "--artifacts", art), 2, *needles)
    assert nothing_written(art)


def test_none_and_null_both_reset_an_optional_field(tmp_path):
    from aepipe import config

    for text in ("none", "null", "None"):
        assert config.load(None, [f"finetune.learning_rate={text}"]).finetune.learning_rate is None


def test_a_diverged_training_fails_its_stage_and_publishes_nothing(tmp_path):
    art = tmp_path / "art"
    one_line_error(invoke("run", "-q", *FAST, "--set", "finetune.learning_rate=inf", "--artifacts", art), 1,
                   "stage finetune diverged: the loss became nan in epoch 1")
    names = [p.name for p in (art / "stages").iterdir()]
    assert not [n for n in names if n.startswith("finetune-") and not n.endswith(".partial")]
    assert not (art / "runs" / "digits").exists() or not any((art / "runs" / "digits").iterdir())


# ---------------------------------------------------------------- status of stages being built


def test_status_says_building_for_a_live_holder_and_resumable_for_a_dead_one(tmp_path):
    art = tmp_path / "art"
    rows = json.loads(invoke("status", *FAST, "--json", "--artifacts", art).stdout)["stages"]
    name = f"pretrain-{rows[0]['key']}"
    (art / "locks").mkdir(parents=True)
    (art / "stages" / f"{name}.partial").mkdir(parents=True)
    lock = art / "locks" / f"{name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": 4242, "command": "aepipe run"}).encode())
        row = json.loads(invoke("status", *FAST, "--json", "--artifacts", art).stdout)["stages"][0]
        assert (row["status"], row["reason"]) == ("building", "pid 4242 ('aepipe run')")
    finally:
        os.close(fd)
    row = json.loads(invoke("status", *FAST, "--json", "--artifacts", art).stdout)["stages"][0]
    assert row["status"] == "partial" and "starts it over" in row["reason"]
    ckpt = art / "stages" / f"{name}.partial" / "checkpoint"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"epoch": 3, "dir": "epoch-0003"}))
    row = json.loads(invoke("status", *FAST, "--json", "--artifacts", art).stdout)["stages"][0]
    assert (row["status"], row["reason"]) == ("partial", "resumable from epoch 3")


# ---------------------------------------------------------------- smaller things users hit


def test_encode_refuses_other_output_suffixes_and_directories(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 64), np.float32))
    one_line_error(invoke("encode", x, "-o", tmp_path / "codes.txt", "--artifacts", tmp_path / "a"), 2,
                   "must end in .npy")
    one_line_error(invoke("encode", tmp_path, "-o", tmp_path / "c.npy", "--artifacts", tmp_path / "a"), 2,
                   "is a directory")
    assert not (tmp_path / "codes.txt").exists() and nothing_written(tmp_path / "a")


@pytest.mark.parametrize("grid, needles", [
    ("layers.9.units=8,16", ["--grid layers.9.units: no 'layers.9'"]),
    ("layers.0.units=8,8,16", ["--grid layers.0.units: '8' given twice"]),
])
def test_sweep_grid_errors_name_the_grid(tmp_path, grid, needles):
    err = one_line_error(invoke("sweep", *FAST, "--grid", grid, "--artifacts", tmp_path / "a"), 2, *needles)
    assert "--set" not in err and nothing_written(tmp_path / "a")


def test_debug_output_does_not_ask_for_debug(tmp_path, monkeypatch):
    from aepipe.pipeline.runner import Runner

    monkeypatch.setattr(Runner, "run", lambda self, phase="evaluate": 1 / 0)
    plain = invoke("run", "--artifacts", tmp_path)
    debug = invoke("--debug", "run", "--artifacts", tmp_path)
    assert "rerun with --debug" in plain.stderr and "rerun with --debug" not in debug.stderr


def test_progress_is_one_updating_line_on_a_terminal_and_one_line_per_epoch_elsewhere():
    import io

    from aepipe.nn.progress import EpochProgress

    for live in (True, False):
        out = io.StringIO()
        p = EpochProgress("[4/7] finetune", 2, live=live, stream=out)
        for epoch in range(2):
            p.on_epoch_begin(epoch)
            p.on_train_batch_end(0, {"loss": 0.5})
            p.on_epoch_end(epoch, {"loss": 0.4, "val_accuracy": 0.9})
        text = out.getvalue()
        if live:
            assert text.count("\n") == 1 and text.endswith("\n") and "\r[4/7] finetune  epoch 2/2" in text
        else:
            assert text.splitlines() == [f"[4/7] finetune  epoch {e}/2  loss 0.4000  val_accuracy 0.9000  "
                                         + text.splitlines()[e - 1].rsplit("  ", 1)[1] for e in (1, 2)]


def test_short_runs_get_markers_and_whole_epoch_ticks_and_classes_get_a_legend():
    from aepipe.analysis.latent_plots import scatter_figure
    from aepipe.analysis.plots import curves_figure
    from aepipe.analysis.report import plot_title

    fig = curves_figure({"head": {"loss": [1.0], "accuracy": [0.5]}})
    line = fig.axes[0].lines[0]
    assert line.get_marker() == "o"
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())
    scatter = scatter_figure(np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3)
    assert [t.get_text() for t in scatter.axes[0].get_legend().get_texts()] == ["0", "1", "2"]
    assert len(scatter.axes) == 1  # no continuous colour bar
    assert plot_title("pretrain-0-latent_scatter.png") == "Layer 0: latent means of the test set by class"
    assert plot_title("curves.png") == "Training curves"
