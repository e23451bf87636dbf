"""Two runs on one artifacts directory: both finish, each stage is trained
once; --no-wait fails at once naming the holder; a dead holder blocks nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from clirun import TINY, aepipe, file_tables, start

SLOW_PRETRAIN = ("--set", "pretrain.epochs=20", "--set", "pretrain.batch_size=8")


@pytest.mark.slow
def test_two_runs_at_once_train_each_stage_once(tmp_path, tiny_run):
    a = start("run", "--artifacts", tmp_path, "--json", *TINY)
    b = start("run", "--artifacts", tmp_path, "--json", *TINY)
    (out_a, err_a), (out_b, err_b) = a.communicate(timeout=600), b.communicate(timeout=600)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    ra, rb = json.loads(out_a), json.loads(out_b)
    for sa, sb in zip(ra["stages"], rb["stages"]):
        assert sa["name"] == sb["name"] and sa["key"] == sb["key"]
        assert sorted([sa["status"], sb["status"]]) == ["cached", "trained"], (sa, sb)
    assert ra["metrics"]["test_accuracy"] == rb["metrics"]["test_accuracy"]
    assert ra["run_dir"] != rb["run_dir"]
    assert not list((tmp_path / "stages").glob("*.partial"))
    assert file_tables(tmp_path) == file_tables(tiny_run[0])  # what a lone run builds, byte for byte


def _poll(condition, seconds=240):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow
def test_no_wait_fails_at_once_a_waiter_waits_and_a_dead_holder_blocks_nothing(tmp_path):
    art = tmp_path / "art"
    holder = start("run", "--artifacts", art, "-q", *TINY, *SLOW_PRETRAIN)
    waiter = None
    try:
        _poll(lambda: list((art / "stages").glob("pretrain-*.partial")))
        # --no-wait: exit 1 at once, naming the holder
        p = aepipe("run", "--artifacts", art, "--no-wait", *TINY, *SLOW_PRETRAIN)
        assert holder.poll() is None  # answered while the holder was still training
        assert p.returncode == 1, p.stderr
        err = p.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"pid {holder.pid}" in err and "--no-wait" in err
        # without it: waits, saying for whom
        log = tmp_path / "waiter.err"
        with open(log, "w") as f:
            waiter = start("run", "--artifacts", art, "--json", *TINY, *SLOW_PRETRAIN, stderr=f)
        _poll(lambda: f"waiting for pid {holder.pid}" in log.read_text())
        # the holder dies holding the lock (kill -9): the kernel drops it, the waiter takes over
        state = next((art / "stages").glob("pretrain-*.partial")) / "checkpoint" / "state.json"
        _poll(state.is_file)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        out, _ = waiter.communicate(timeout=600)
        assert waiter.returncode == 0, log.read_text()
        first = json.loads(out)["stages"][0]
        assert first["status"] == "resumed"  # from the dead holder's checkpoint
        assert "resumed from epoch" in log.read_text()
    finally:
        for proc in (holder, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_a_lock_file_left_by_a_dead_process_blocks_nothing(tmp_path):
    """The lock file outlives its holder (its pid still inside); only a live
    holder's kernel lock counts, so the next run takes it at once."""
    from aepipe.engine.store import Store

    store = Store(tmp_path)
    store.ensure()
    lock = store.locks / "pretrain-0123456789abcdef.lock"
    code = ("import fcntl, json, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, json.dumps({'pid': os.getpid()}).encode()); "
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(lock)], check=True)
    dead_pid = json.loads(lock.read_text())["pid"]
    assert dead_pid != os.getpid()
    assert not store.is_locked("pretrain-0123456789abcdef")
    with store.stage_lock("pretrain-0123456789abcdef", wait=False):
        assert json.loads(lock.read_text())["pid"] == os.getpid()  # the new holder names itself
