"""MLflow tracking against real backends: SQLite, the file store and an `mlflow server`.

One tiny digits run trains (tracked to SQLite); every other test reruns it from
its cached stages (a second or two each), which logs the same history and
metrics from the stored files.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

mlflow = pytest.importorskip("mlflow", reason="tracking tests need mlflow (pip install 'aepipe[test]')")

from aepipe import config  # noqa: E402
from aepipe.engine.plan import Fingerprint, plan  # noqa: E402
from aepipe.tracking import TrackingTarget, resolve  # noqa: E402

EPOCHS = {"pretrain": 2, "head": 1, "finetune": 2}
TINY = ["--set", "pretrain.epochs=2", "--set", "head.epochs=1", "--set", "finetune.epochs=2",
        "--set", "evaluate.tsne=false", "--set", "unroll.epochs=0"]  # baseline stays on: the paired comparison is logged too
STAGES = ["pretrain-0", "pretrain-1", "head", "finetune", "baseline", "evaluate"]


def cli(*args, artifacts, expect=0):
    from aepipe.cli import main

    result = CliRunner().invoke(main, [*map(str, args), "--artifacts", str(artifacts)])
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_of(uri: str, experiment: str = "digits"):
    """(parent runs, {parent id: {stage name: nested run}}), newest parent first."""
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} at {uri}"
    every = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=500)
    parents = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    children = {p.info.run_id: {r.info.run_name: r for r in every
                                if r.data.tags.get("mlflow.parentRunId") == p.info.run_id} for p in parents}
    return parents, children


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny digits run that trains every stage, tracked to a SQLite database."""
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = cli("run", "--json", *TINY, "--mlflow", uri, artifacts=root / "artifacts")
    return root / "artifacts", uri, json.loads(result.stdout)


@pytest.fixture
def cached(trained, tmp_path):
    """A copy of the trained artifacts: reruns of it train nothing."""
    art = tmp_path / "artifacts"
    shutil.copytree(trained[0], art)
    return art


# ---------------------------------------------------------------- which URI wins (no mlflow needed)


def test_the_flag_wins_over_the_table_which_wins_over_the_environment():
    spec = config.loads('[tracking]\nuri = "sqlite:///table.db"\nexperiment = "exp"\n[[layers]]\nunits = 8')
    env = {"MLFLOW_TRACKING_URI": "http://env:5000"}
    assert resolve(spec, "http://flag:5000", env) == TrackingTarget("http://flag:5000", "exp", "--mlflow")
    assert resolve(spec, None, env) == TrackingTarget("sqlite:///table.db", "exp", "tracking.uri")
    bare = config.loads("[[layers]]\nunits = 8", default_name="p")
    assert resolve(bare, None, env) == TrackingTarget("http://env:5000", "p", "MLFLOW_TRACKING_URI")
    assert resolve(bare, None, {}) is None  # off unless asked
    assert resolve(spec, "off", env) is None  # --mlflow off beats everything


def test_tracking_fields_never_enter_a_stage_key():
    fp = Fingerprint("inputs", "labels")
    plain = plan(config.load(None), fp)
    tracked = plan(config.load(None, ["tracking.uri=sqlite:///x.db", "tracking.experiment=e"]), fp)
    assert [s.key for s in plain] == [s.key for s in tracked]


def test_untracked_runs_never_import_mlflow(tmp_path):
    code = ("import sys; from click.testing import CliRunner; from aepipe.cli import main; "
            f"r = CliRunner().invoke(main, ['status', '--artifacts', {str(tmp_path)!r}]); "
            "assert r.exit_code == 0, r.output; print('mlflow' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------- SQLite


def test_a_tracked_run_is_one_parent_run_with_a_nested_run_per_stage(trained):
    art, uri, result = trained
    parents, children = runs_of(uri)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "digits" and parent.info.status == "FINISHED"
    stages = children[parent.info.run_id]
    assert sorted(stages) == sorted(STAGES)
    assert {r.data.tags["aepipe.status"] for r in stages.values()} == {"trained"}
    assert {n: r.data.tags["aepipe.key"] for n, r in stages.items()} == {s["name"]: s["key"] for s in result["stages"]}

    # params: the resolved spec, flattened as --set keys
    params = parent.data.params
    assert params["layers.0.units"] == "48" and params["layers.1.units"] == "24"
    assert params["layers.0.epochs"] == "2" and params["pretrain.mode"] == "greedy" and params["evaluate.baseline"] == "true"
    assert not any(k.startswith("tracking.") for k in params)

    # metrics: the run's metrics.json, nested numbers flattened
    metrics = parent.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(result["metrics"]["test_accuracy"])
    assert metrics["comparison.p_value"] == pytest.approx(result["metrics"]["comparison"]["p_value"])
    assert "reconstruction_mse.pretrain-0" in metrics

    # tags: version, data fingerprint
    tags = parent.data.tags
    assert tags["aepipe.version"] == __import__("aepipe").__version__
    fingerprint = json.loads((Path(result["stages"][0]["path"]) / "manifest.json").read_text())["data"]
    assert tags["aepipe.data.inputs"] == fingerprint["inputs"]

    # per-epoch history on the stage runs: one point per epoch, step = epoch
    client = mlflow.MlflowClient(uri)
    loss = client.get_metric_history(stages["pretrain-0"].info.run_id, "loss")
    assert sorted(m.step for m in loss) == list(range(EPOCHS["pretrain"]))
    history = json.loads((Path(result["stages"][0]["path"]) / "history.json").read_text())
    assert [m.value for m in sorted(loss, key=lambda m: m.step)] == pytest.approx(history["loss"])
    val_acc = client.get_metric_history(stages["finetune"].info.run_id, "val_accuracy")
    assert len(val_acc) == EPOCHS["finetune"]

    # artifacts: the run directory's report, JSON and plots
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "metrics.json", "spec.json", "curves.png", "confusion.png"} <= names
    assert {p.name for p in Path(result["run_dir"]).glob("*.png")} <= names


def test_a_cached_rerun_adds_a_parent_run_whose_stage_runs_say_cached(trained, cached):
    _, uri, _ = trained
    before, _ = runs_of(uri)
    cli("run", *TINY, "--mlflow", uri, artifacts=cached)
    parents, children = runs_of(uri)
    assert len(parents) == len(before) + 1
    stages = children[parents[0].info.run_id]
    assert sorted(stages) == sorted(STAGES)
    assert {r.data.tags["aepipe.status"] for r in stages.values()} == {"cached"}
    loss = mlflow.MlflowClient(uri).get_metric_history(stages["pretrain-0"].info.run_id, "loss")
    assert len(loss) == EPOCHS["pretrain"]  # the stored history, logged without training


def test_sqlite_artifacts_go_beside_the_database_not_the_working_directory(trained):
    _, uri, _ = trained
    db = Path(uri.removeprefix("sqlite:///"))
    assert list((db.parent / "mlruns").glob("digits/*/artifacts/report.md"))


def test_the_pipeline_table_and_its_experiment(trained, cached, tmp_path):
    pipeline = tmp_path / "tracked.toml"
    uri = trained[1]  # one database for the module: each new one costs seconds of table migrations
    pipeline.write_text(f'{config.DEFAULT_PIPELINE_TOML}\n[tracking]\nuri = "{uri}"\nexperiment = "from-the-table"\n')
    result = cli("run", pipeline, *TINY, artifacts=cached)
    statuses = {line.split()[1] for line in result.stdout.splitlines()[:len(STAGES)]}
    assert statuses == {"cached"}  # the [tracking] table re-keyed nothing
    parents, _ = runs_of(uri, "from-the-table")
    assert len(parents) == 1
    assert parents[0].data.tags["aepipe.pipeline_file"] == str(pipeline.resolve())


# ---------------------------------------------------------------- file store


def test_the_file_store_works_when_mlflow_allows_it(cached, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    cli("run", *TINY, "--mlflow", store.as_uri(), artifacts=cached)
    parents, children = runs_of(store.as_uri())
    assert len(parents) == 1 and sorted(children[parents[0].info.run_id]) == sorted(STAGES)
    names = {a.path for a in mlflow.MlflowClient(store.as_uri()).list_artifacts(parents[0].info.run_id)}
    assert "report.md" in names


def test_mlflow_3_refusing_its_file_store_is_one_warning_and_the_run_completes(cached, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = cli("run", *TINY, "--mlflow", str(tmp_path / "mlruns"), artifacts=cached)
    warnings = [line for line in result.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and "MLFLOW_ALLOW_FILE_STORE=true" in warnings[0], result.stderr
    assert "test accuracy" in result.stdout


# ---------------------------------------------------------------- robustness


def test_an_unreachable_server_costs_seconds_and_one_warning(cached):
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    result = cli("run", *TINY, "--mlflow", url, artifacts=cached)
    seconds = time.perf_counter() - t0
    warnings = [line for line in result.stderr.splitlines() if "MLflow" in line]
    assert warnings == [f"warning: MLflow tracking at {url!r} (from --mlflow) is unavailable: connection refused; "
                        "the run continues untracked"]
    assert "test accuracy" in result.stdout and seconds < 15, seconds


def test_mlflow_required_and_unreachable_exits_1_before_anything_trains(tmp_path):
    art = tmp_path / "fresh"
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("run", *TINY, "--mlflow", url, "--mlflow-required", artifacts=art, expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unavailable: connection refused" in lines[0], result.stderr
    assert not (art / "stages").exists() or not any((art / "stages").iterdir())


def test_mlflow_required_without_any_uri_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = cli("run", *TINY, "--mlflow-required", artifacts=tmp_path, expect=2)
    assert "--mlflow-required needs a tracking URI" in result.stderr


def test_a_backend_error_mid_run_is_one_warning_never_a_lost_stage(trained, cached):
    """A real MLflow error after connecting (the experiment deleted under the run)."""
    from aepipe.engine.store import Store
    from aepipe.pipeline.runner import Runner
    from aepipe.tracking import make_tracker

    uri = trained[1]
    warnings = []
    tracker = make_tracker(TrackingTarget(uri, "doomed", "test"), warn=warnings.append).connect()
    mlflow.MlflowClient(uri).delete_experiment(tracker.experiment_id)
    spec = config.load(None, [a for a in TINY if a != "--set"])
    with tracker:
        result = Runner(spec, Store(cached), observer=tracker).run("evaluate")
    assert [s.status for s in result.stages] == ["cached"] * len(STAGES) and result.run_dir
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow tracking stopped (run_started:"), warnings


# ---------------------------------------------------------------- sweep


def test_a_sweep_logs_each_variant_as_its_own_parent_run_in_one_experiment(trained, cached):
    uri = trained[1]
    # tsne is off, so tsne_samples changes no stage: both variants are cached and train nothing
    cli("sweep", *TINY, "--set", "tracking.experiment=a-sweep", "--grid", "evaluate.tsne_samples=100,200",
        "--mlflow", uri, artifacts=cached)
    parents, children = runs_of(uri, "a-sweep")
    assert len(parents) == 2
    assert {p.data.tags["aepipe.sweep.evaluate.tsne_samples"] for p in parents} == {"100", "200"}
    assert {p.info.run_name for p in parents} == {p.data.tags["aepipe.sweep.variant"] for p in parents}
    assert all(sorted(children[p.info.run_id]) == sorted(STAGES) for p in parents)


# ---------------------------------------------------------------- a real tracking server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 (SQLite backend, artifacts proxied to a tmp dir), stopped after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
         f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow  # starting the server: ~6 s on an idle 2-core machine, 40 s on a busy one
def test_a_run_logged_to_an_mlflow_server(server, cached):
    url, root = server
    # retrain layer 1 and what reads it, so the server sees trained and cached stages
    result = cli("run", *TINY, "--mlflow", url, "--mlflow-required", "--rebuild", "pretrain-1", "--json",
                 artifacts=cached)
    assert result.stderr.count("MLflow") == 0 and f"{url}/#/experiments/" in result.stderr
    parents, children = runs_of(url)
    assert len(parents) == 1
    parent = parents[0]
    stages = children[parent.info.run_id]
    statuses = {n: r.data.tags["aepipe.status"] for n, r in stages.items()}
    assert statuses == {s["name"]: s["status"] for s in json.loads(result.stdout)["stages"]}
    assert statuses["pretrain-0"] == "cached" and statuses["pretrain-1"] == "trained"
    assert parent.data.params["layers.0.units"] == "48"
    client = mlflow.MlflowClient(url)
    for name in ("pretrain-0", "pretrain-1"):
        assert len(client.get_metric_history(stages[name].info.run_id, "loss")) == EPOCHS["pretrain"]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "curves.png"} <= names
    assert list((root / "artifacts").rglob("report.md"))  # uploaded through the server
