"""Secrets stay secret (issue 31): the user-info of a tracking URI
(``http://alice:TOKEN@host/``) is never written or printed, wherever aepipe
writes or prints a URI: lock files, spec.json, report.md, run records,
``runs``, ``diff``, warnings and errors. Each place as a user hits it: real
``aepipe`` processes, an unreachable server (nothing listens on port 9)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from clirun import TINY, aepipe, assert_one_line_error, start

from aepipe.config import DEFAULT_PIPELINE_TOML
from aepipe.config.redact import redact

CLI_URI = "http://alice:CLITOKEN@127.0.0.1:9/"
FILE_URI = "http://bob:FILETOKEN@127.0.0.1:9/"
SECRETS = (b"CLITOKEN", b"FILETOKEN", b"SETTOKEN")


def _leaks(root: Path) -> list[str]:
    """Every file under ``root`` that holds a secret, byte for byte."""
    return [str(p) for p in root.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in SECRETS)]


def _clean(*texts: str) -> None:
    for t in texts:
        assert not any(s.decode() in t for s in SECRETS), t


@pytest.fixture(scope="module")
def tracked_runs(tmp_path_factory):
    """A run of a pipeline file with a credentialed ``tracking.uri``, overridden by a
    credentialed ``--mlflow`` (unreachable: the run warns and continues untracked),
    then the same pipeline again, cached, with a third credentialed URI by --set in
    the spec, logged to a SQLite MLflow store by --mlflow."""
    d = tmp_path_factory.mktemp("secrets")
    pipe = d / "tracked.toml"
    pipe.write_text(DEFAULT_PIPELINE_TOML + f'\n[tracking]\nuri = "{FILE_URI}"\n')
    art = d / "artifacts"
    a = aepipe("run", pipe, "--artifacts", art, "--json", *TINY, "--mlflow", CLI_URI)
    assert a.returncode == 0, a.stderr
    b = aepipe("run", pipe, "--artifacts", art, "--json", *TINY, "--mlflow", f"sqlite:///{d / 'mlflow.db'}",
               "--set", "tracking.uri='http://c:SETTOKEN@127.0.0.2:9/'")
    assert b.returncode == 0, b.stderr
    return art, a, b


def test_the_unavailable_backend_warning_masks_the_credentials(tracked_runs):
    _, a, b = tracked_runs
    assert "MLflow tracking at 'http://***@127.0.0.1:9/' (from --mlflow) is unavailable" in a.stderr, a.stderr
    _clean(a.stdout, a.stderr, b.stdout, b.stderr)


def test_mlflow_holds_no_secret(tracked_runs):
    """Run b went to a SQLite MLflow store: its params, tags and logged run files
    (spec.json, report.md) hold the spec's tracking.uri masked, if at all."""
    art, _, b = tracked_runs
    assert "mlflow: run " in b.stderr and (art.parent / "mlflow.db").is_file(), b.stderr
    assert list((art.parent / "mlruns").rglob("spec.json")), "the run files are logged"
    assert _leaks(art.parent) == [str(art.parent / "tracked.toml")]  # the user's own file, only


def test_no_file_under_the_artifacts_directory_holds_a_secret(tracked_runs):
    """Lock files (the command line), spec.json, report.md, run.json, manifests."""
    art, a, _ = tracked_runs
    locks = [json.loads(p.read_text()) for p in (art / "locks").glob("*.lock") if p.stat().st_size]
    assert locks and all("--mlflow http://***@127.0.0.1:9/" in lock["command"] for lock in locks), locks
    assert _leaks(art) == []
    run_dir = Path(json.loads(a.stdout)["run_dir"])
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["tracking"]["uri"] == "http://***@127.0.0.1:9/"
    assert "http://***@127.0.0.1:9/" in (run_dir / "report.md").read_text()


def test_runs_and_diff_show_no_secret(tracked_runs):
    art, a, b = tracked_runs
    runs = aepipe("runs", "--artifacts", art)
    assert runs.returncode == 0, runs.stderr
    diff = aepipe("diff", "--artifacts", art, json.loads(a.stdout)["run_dir"], json.loads(b.stdout)["run_dir"])
    assert diff.returncode == 0, diff.stderr
    assert "tracking.uri" in diff.stdout and "http://***@127.0.0.1:9/" in diff.stdout, diff.stdout
    _clean(runs.stdout, runs.stderr, diff.stdout, diff.stderr)


def test_an_error_naming_the_uri_masks_the_credentials(tmp_path):
    p = aepipe("run", "--artifacts", tmp_path, *TINY, "--mlflow", CLI_URI, "--mlflow-required")
    err = assert_one_line_error(p, 1, "http://***@127.0.0.1:9/", "unavailable")
    _clean(err, p.stdout)
    assert _leaks(tmp_path) == []


def test_a_run_that_finds_the_stage_locked_prints_the_holder_without_its_secret(tmp_path):
    art = tmp_path / "art"
    holder = start("run", "--artifacts", art, "-q", *TINY, "--set", "pretrain.epochs=20",
                   "--set", "pretrain.batch_size=8", "--mlflow", CLI_URI)
    try:
        deadline = time.monotonic() + 240
        while not list((art / "stages").glob("pretrain-*.partial")):
            assert time.monotonic() < deadline and holder.poll() is None, holder.stderr.read()
            time.sleep(0.01)
        # -q: on a busy machine the holder may finish layer 0 first; its "cached" line is progress, not the error
        p = aepipe("run", "--artifacts", art, "--no-wait", "-q", *TINY, "--set", "pretrain.epochs=20",
                   "--set", "pretrain.batch_size=8")
        assert holder.poll() is None  # answered while the holder was still training
        err = assert_one_line_error(p, 1, f"pid {holder.pid}", "--mlflow http://***@127.0.0.1:9/")
        _clean(err)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()


def test_a_driver_error_naming_the_storage_url_masks_the_credentials(tmp_path):
    """Any error the CLI prints: here SQLAlchemy's, quoting an Optuna --storage URL."""
    url = f"sqlite://SETTOKEN@/{tmp_path}/t.db"  # a token as the user: SQLAlchemy masks passwords only
    p = aepipe("tune", "--artifacts", tmp_path / "art", "--storage", url, "--space", "layers.0.units=int:8:16")
    assert p.returncode == 2 and "sqlite://***@/" in p.stderr, p.stderr
    _clean(p.stdout, p.stderr)


@pytest.mark.parametrize("text, shown", [
    ("http://alice:TOKEN@host:5000/x", "http://***@host:5000/x"),
    ("--mlflow https://TOKEN@h/ --set a=b", "--mlflow https://***@h/ --set a=b"),
    ("postgresql://u:p@ss@db/o", "postgresql://***@db/o"),  # an unencoded '@' in the password
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("http://host/?q=a@b", "http://host/?q=a@b"),
    ("mail alice@example.org", "mail alice@example.org"),
])
def test_redact_masks_only_user_info(text, shown):
    assert redact(text) == shown
