"""The CLI end to end on digits: run, cache, --set, status, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FAST, stage_statuses

ALL = ["pretrain-0", "pretrain-1", "head", "finetune", "evaluate"]


def test_run_then_rerun_is_fully_cached(aepipe, artifacts):
    first = aepipe("run", *FAST, "--json")
    out = json.loads(first.stdout)
    assert [s["name"] for s in out["stages"]] == ALL
    assert set(stage_statuses(first).values()) == {"trained"}
    assert 0 <= out["metrics"]["test_accuracy"] <= 1
    run_dir = artifacts / "runs" / "digits"
    assert (next(run_dir.iterdir()) / "metrics.json").is_file()
    assert "[1/5] pretrain layer 0" in first.stderr  # progress goes to stderr

    again = aepipe("run", *FAST, "--json")
    assert set(stage_statuses(again).values()) == {"cached"}
    assert json.loads(again.stdout)["metrics"]["test_accuracy"] == out["metrics"]["test_accuracy"]


def test_set_layer_1_retrains_layer_1_and_downstream_not_layer_0(aepipe):
    aepipe("run", *FAST, "--json")
    changed = stage_statuses(aepipe("run", *FAST, "--set", "layers.1.units=32", "--json"))
    assert changed == {"pretrain-0": "cached", "pretrain-1": "trained", "head": "trained",
                       "finetune": "trained", "evaluate": "trained"}


def test_status_reports_cached_and_stale_with_reason(aepipe):
    aepipe("pretrain", *FAST, "--json")
    rows = json.loads(aepipe("status", *FAST, "--set", "layers.1.units=32", "--json").stdout)["stages"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["pretrain-0"]["status"] == "cached"
    assert by_name["pretrain-1"]["status"] == "stale"
    assert "units: 24 -> 32" in by_name["pretrain-1"]["reason"]
    assert by_name["head"]["status"] == "missing"


def test_phase_commands_build_what_they_need(aepipe):
    statuses = stage_statuses(aepipe("finetune", *FAST, "--json"))
    assert statuses == {"pretrain-0": "trained", "pretrain-1": "trained", "head": "trained",
                        "finetune": "trained"}
    statuses = stage_statuses(aepipe("evaluate", *FAST, "--json"))
    assert statuses["finetune"] == "cached" and statuses["evaluate"] == "trained"


@pytest.mark.slow
def test_default_pipeline_reaches_95_percent(aepipe):
    out = json.loads(aepipe("run", "--set", "evaluate.tsne=false", "--set", "evaluate.baseline=false",
                            "--json", "-q").stdout)
    assert out["metrics"]["test_accuracy"] >= 0.95


def test_help_and_status_do_not_import_tensorflow(tmp_path):
    code = ("import sys; from click.testing import CliRunner; from aepipe.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0; "
            f"r = CliRunner().invoke(main, ['status', '--artifacts', {str(tmp_path)!r}]); "
            "assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quiet_and_debug_work_on_the_group_too(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aepipe.cli import main
    from aepipe.pipeline.runner import Runner

    grouped = CliRunner().invoke(main, ["-q", "run", *FAST, "--artifacts", str(tmp_path / "a")])
    assert grouped.exit_code == 0 and grouped.stderr == ""  # no progress at all

    def broken(self, phase="evaluate"):
        raise RuntimeError("an internal error")

    monkeypatch.setattr(Runner, "run", broken)
    for args in (["--debug", "run"], ["run", "--debug"], ["run"]):
        r = CliRunner().invoke(main, [*args, "--artifacts", str(tmp_path / "b")])
        assert r.exit_code == 1 and "RuntimeError: an internal error" in r.stderr
        assert ("Traceback" in r.stderr) == ("--debug" in args), args


def test_every_command_has_help(aepipe):
    from click.testing import CliRunner

    from aepipe.cli import main

    for name in main.list_commands(None):
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output, name


# ------------------------------------------------------------------ bad input

def _no_stage_dirs(artifacts):
    stages = artifacts / "stages"
    return not stages.exists() or not any(stages.iterdir())


@pytest.mark.parametrize("content, code, message", [
    (None, 2, "pipeline file not found"),
    ("name = 'x'\n[data\n", 2, "TOML syntax error"),
    ("[[layers]]\nunitz = 3\n", 2, "unknown key; did you mean 'units'?"),
    ("[[layers]]\nunits = -3\n", 2, "layers.0.units: must be a positive number, got -3"),
])
def test_bad_pipeline_files(tmp_path, artifacts, aepipe, content, code, message):
    p = tmp_path / "p.toml"
    if content is not None:
        p.write_text(content)
    r = aepipe("run", p, expect=code)
    assert message in r.stderr and str(p) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert _no_stage_dirs(artifacts)


def test_nan_in_data_is_a_one_line_runtime_error(tmp_path, artifacts, aepipe):
    rng = np.random.default_rng(0)
    x = rng.random((40, 6)).astype(np.float32)
    x[7, 2] = np.nan
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=x, y_train=np.arange(40) % 2, x_test=x[:10] * 0, y_test=np.arange(10) % 2)
    r = aepipe("run", *FAST, "--set", f"data.source='npz:{npz}'", expect=1)
    assert "x_train row 7 contains NaN or inf" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert _no_stage_dirs(artifacts)


def test_mnist_missing_says_how_to_provide_it(aepipe, monkeypatch, tmp_path):
    monkeypatch.delenv("AEPIPE_MNIST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    r = aepipe("run", "--set", "data.source='mnist'", expect=1)
    assert "AEPIPE_MNIST" in r.stderr and "data.path" in r.stderr
