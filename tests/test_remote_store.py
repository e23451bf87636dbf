"""The artifact store on S3-compatible object storage (issue 33), against a real
S3 API: moto's server on 127.0.0.1, started here and stopped after.

Each "machine" is a process with its own local cache directory; they share
only the bucket."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import FAST

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (pip install 'aepipe[test]')")
pytest.importorskip("s3fs", reason="needs s3fs (pip install 'aepipe[s3]')")

BUCKET = "aepipe-test"
KEY_ID, SECRET = "AKIDREMOTESTORETEST", "s3cr3t-remote-store-value"
PRETRAIN = ["--set", "pretrain.epochs=2", "--set", "layers.1.units=8", "--set", "unroll.epochs=0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server with one bucket; the AWS variables point at it for this module only."""
    import logging

    import boto3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    server.stop()


def objects(client, prefix: str) -> dict[str, bytes]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k[len(prefix) + 1:]: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def cli(*args, cache, expect=0):
    """The CLI in this process, as one machine with its own ``cache``."""
    from click.testing import CliRunner

    from aepipe.cli import main

    result = CliRunner().invoke(main, list(map(str, args)), env={"AEPIPE_CACHE": str(cache)})
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def statuses(result) -> dict:
    return {s["name"]: s["status"] for s in json.loads(result.stdout)["stages"]}


@pytest.fixture(scope="module")
def published(s3, tmp_path_factory):
    """One tiny digits run published to s3://BUCKET/shared from machine A's cache."""
    root = tmp_path_factory.mktemp("remote")
    out = cli("run", *FAST, "--json", "--artifacts", f"s3://{BUCKET}/shared", cache=root / "a")
    return {"root": root, "run": json.loads(out.stdout), "url": f"s3://{BUCKET}/shared"}


def test_stages_are_published_whole_and_read_back_verified(s3, published):
    remote = objects(s3, "shared")
    names = {Path(s["path"]).name for s in published["run"]["stages"]}
    for name in names:
        manifest = json.loads(remote[f"stages/{name}/manifest.json"])
        for rel, meta in manifest["files"].items():
            assert hashlib.sha256(remote[f"stages/{name}/{rel}"]).hexdigest() == meta["sha256"]
    assert not any(k.startswith("leases/") for k in remote)  # released after each stage
    assert any(k.startswith("runs/digits/") and k.endswith("report.md") for k in remote)
    # machine B, empty cache: every stage comes from the bucket, byte for byte
    b = cli("run", *FAST, "--json", "--artifacts", published["url"], cache=published["root"] / "b")
    assert set(statuses(b).values()) == {"cached"}
    for name in names:
        a_files = published["root"] / "a" / "stages" / name
        b_files = published["root"] / "b" / "stages" / name
        assert (a_files / "manifest.json").read_bytes() == (b_files / "manifest.json").read_bytes()
    runs = cli("runs", "--json", "--artifacts", published["url"], cache=published["root"] / "c")
    assert len(json.loads(runs.stdout)["runs"]) == 2  # A's and B's runs, read on a third machine


def test_status_reads_remote_manifests_without_tensorflow(published):
    code = ("import sys; from aepipe.cli import main; "
            f"main(['status', *{FAST!r}, '--json', '--artifacts', {published['url']!r}], standalone_mode=False); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    cache = published["root"] / "status"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "AEPIPE_CACHE": str(cache)}, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)["stages"]
    assert {r["status"] for r in rows} == {"cached"}
    assert all("remote" in r["reason"] for r in rows)
    assert not (cache / "stages").exists() or not any((cache / "stages").iterdir())  # nothing downloaded


def test_credentials_are_never_written(s3, published):
    written = [p.read_bytes() for p in published["root"].rglob("*") if p.is_file()]
    written += list(objects(s3, "shared").values())
    assert written
    for secret in (KEY_ID, SECRET):
        assert not any(secret.encode() in data for data in written), secret


def test_flipped_byte_in_a_remote_object_is_quarantined_and_rebuilt(s3, tmp_path):
    url = f"s3://{BUCKET}/flip"
    first = cli("pretrain", *PRETRAIN, "--json", "--artifacts", url, cache=tmp_path / "a")
    stage = Path(json.loads(first.stdout)["stages"][0]["path"]).name
    key = f"flip/stages/{stage}/encodings/train.npy"
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[-1] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    again = cli("pretrain", *PRETRAIN, "--json", "--artifacts", url, cache=tmp_path / "b")
    assert statuses(again) == {"pretrain-0": "trained", "pretrain-1": "cached"}
    assert "encodings/train.npy does not match its sha256" in again.stderr
    remote = objects(s3, "flip")
    assert any(k.startswith(f"quarantine/{stage}-") and k.endswith("encodings/train.npy") for k in remote)
    rebuilt = json.loads(remote[f"stages/{stage}/manifest.json"])
    assert hashlib.sha256(remote[f"stages/{stage}/encodings/train.npy"]).hexdigest() == \
        rebuilt["files"]["encodings/train.npy"]["sha256"]


def test_unreachable_endpoint_is_one_line_naming_it_and_loses_nothing(tmp_path, monkeypatch):
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://alice:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    cache = tmp_path / "cache"
    kept = cache / "stages" / "pretrain-0123456789abcdef" / "manifest.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    t0 = time.perf_counter()
    result = cli("run", *FAST, "--artifacts", f"s3://{BUCKET}/down", cache=cache, expect=1)
    assert time.perf_counter() - t0 < 60
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"s3://{BUCKET}/down" in lines[0] and f"http://***@127.0.0.1:{port}" in lines[0]
    assert SECRET not in result.output and KEY_ID not in result.output
    assert kept.read_text() == "{}"  # the local cache is untouched


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 epochs on purpose
def test_estimator_memory_on_the_bucket_fits_once_for_two_machines(s3, tmp_path, monkeypatch):
    import numpy as np
    from sklearn.datasets import load_digits

    from aepipe import AutoencoderTransformer

    X = load_digits().data[:300] / 16.0
    params = dict(layers=(4,), epochs=2, random_state=0, memory=f"s3://{BUCKET}/estimators")
    monkeypatch.setenv("AEPIPE_CACHE", str(tmp_path / "a"))
    codes = AutoencoderTransformer(**params).fit(X).transform(X)
    monkeypatch.setenv("AEPIPE_CACHE", str(tmp_path / "b"))  # another machine: fetched, not trained
    assert np.array_equal(AutoencoderTransformer(**params).fit(X).transform(X), codes)
    built = {p.name for p in (tmp_path / "a" / "stages").iterdir()}
    assert built == {p.name for p in (tmp_path / "b" / "stages").iterdir()}
    for name in built:  # a retrained stage would record its own build time
        assert (tmp_path / "a" / "stages" / name / "manifest.json").read_bytes() == \
            (tmp_path / "b" / "stages" / name / "manifest.json").read_bytes()
    assert all(f"stages/{n}/manifest.json" in objects(s3, "estimators") for n in built)


def test_a_missing_bucket_is_named(s3, tmp_path):
    result = cli("status", "--artifacts", "s3://no-such-bucket/x", cache=tmp_path, expect=1)
    assert result.stderr.strip() == (f"Error: artifact store s3://no-such-bucket/x (endpoint "
                                     f"{os.environ['AWS_ENDPOINT_URL']}): bucket 'no-such-bucket' does not "
                                     "exist; create it first")


# ------------------------------------------------------------------ machines racing (real processes)


def _start(url: str, cache: Path, *args, lease: str | None = None) -> subprocess.Popen:
    from clirun import AEPIPE, env

    extra = {"AEPIPE_CACHE": str(cache), **({"AEPIPE_LEASE_SECONDS": lease} if lease else {})}
    return subprocess.Popen([AEPIPE, "pretrain", *PRETRAIN, *args, "--json", "--artifacts", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env(), **extra})


@pytest.mark.slow  # two processes that import TensorFlow: about a minute on a loaded 2-core machine
def test_two_machines_racing_train_each_stage_once(s3, tmp_path):
    url = f"s3://{BUCKET}/race"
    procs = [_start(url, tmp_path / name) for name in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    seen = Counter((s["name"], s["status"]) for out, _ in outs for s in json.loads(out)["stages"])
    assert seen[("pretrain-0", "trained")] == 1 and seen[("pretrain-1", "trained")] == 1, seen
    assert seen[("pretrain-0", "cached")] == 1 and seen[("pretrain-1", "cached")] == 1, seen


@pytest.mark.slow
def test_a_killed_lease_holder_is_taken_over_after_expiry(s3, tmp_path):
    url = f"s3://{BUCKET}/takeover"
    slow = ["--set", "pretrain.epochs=4", "--set", "pretrain.batch_size=8"]  # epochs long enough to kill in
    holder = _start(url, tmp_path / "a", *slow, lease="2")
    try:
        deadline = time.time() + 120
        while not any(k.startswith("leases/") for k in objects(s3, "takeover")):
            assert time.time() < deadline and holder.poll() is None, holder.stderr.read() if holder.poll() else ""
            time.sleep(0.2)
        holder.send_signal(signal.SIGKILL)  # the machine dies holding the lease
        holder.wait()
    finally:
        holder.kill()
    taker = _start(url, tmp_path / "b", *slow, lease="2")
    out, err = taker.communicate(timeout=300)
    assert taker.returncode == 0, err
    assert "its lease in s3://aepipe-test/takeover expired; taking it over" in err
    assert statuses_of(out)["pretrain-0"] == "trained"  # from scratch: checkpoints stay on the dead machine


def statuses_of(stdout: str) -> dict:
    return {s["name"]: s["status"] for s in json.loads(stdout)["stages"]}


# ------------------------------------------------------------------ tune on dask, caches apart


@pytest.mark.slow
def test_two_dask_workers_with_own_caches_share_the_remote_store(s3, tmp_path):
    """Each dask worker has its own AEPIPE_CACHE (as on two machines); they share the
    bucket only: no stage key trains twice, and every trial's figure is what a third
    machine reads back from the bucket."""
    from dask.distributed import Client, LocalCluster

    from aepipe.engine.remote import open_store
    from aepipe.tune import report, study as tune_study
    from aepipe.tune.trial import final_metric

    sets = [v for v in FAST if v != "--set"] + ["finetune.epochs=2"]
    items = ["layers.1.units=int:8:16", "finetune.learning_rate=float:1e-4:1e-2:log"]
    base = str(tmp_path / "worker-caches")

    def own_cache(dask_worker):
        os.environ["AEPIPE_CACHE"] = f"{base}/{dask_worker.name}"

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(own_cache)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AEPIPE_CACHE", str(tmp_path / "main-cache"))
            study, *_ = tune_study.run_study(
                None, sets, items, f"s3://{BUCKET}/tune", trials=4, jobs=2, backend="dask",
                scheduler=cluster.scheduler_address, prune="none", heartbeat=2)
    rows = report.trial_rows(study)
    assert sum(r["state"] == "complete" for r in rows) == 4
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert set(report.trained_counts(rows).values()) <= {0, 1}
    assert len([d for d in Path(base).iterdir() if (d / "stages").is_dir()]) == 2  # two caches, both used
    fresh = open_store(f"s3://{BUCKET}/tune", tmp_path / "reader")  # a third machine reads the figures back
    for t in study.trials:
        key = next(s["key"] for s in t.user_attrs["stages"] if s["name"] == "finetune")
        assert final_metric(fresh, "finetune", key, "val_accuracy")[0] == t.value


@pytest.mark.slow
def test_a_study_on_the_bucket_has_the_figures_of_the_same_study_on_a_directory(s3, tmp_path):
    """One worker each (in this process): the same trials, the same figures, bit for bit.
    (Two trainings of one key in dask workers need not agree, whatever the store, so
    the 2-worker test compares with what the bucket holds instead.)"""
    from aepipe.tune import study as tune_study

    sets = [v for v in FAST if v != "--set"] + ["finetune.epochs=2"]
    items = ["layers.1.units=int:8:16", "finetune.learning_rate=float:1e-4:1e-2:log"]
    figures = []
    for artifacts in (str(tmp_path / "local"), f"s3://{BUCKET}/same-study"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AEPIPE_CACHE", str(tmp_path / "cache"))
            study, *_ = tune_study.run_study(None, sets, items, artifacts, trials=2, prune="none", heartbeat=None)
        figures.append([(t.params, t.value) for t in study.trials])
    assert figures[0] == figures[1] and len(figures[0]) == 2
