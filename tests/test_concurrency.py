"""Two runs on one artifacts directory: both finish, each stage is trained
once; --no-wait fails at once naming the holder; a dead holder blocks nothing."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

from clirun import TINY, aepipe, file_tables, run_json, start

SLOW_PRETRAIN = ("--set", "pretrain.epochs=6", "--set", "pretrain.batch_size=8")


def test_two_runs_at_once_train_each_stage_once(tmp_path):
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
    assert "waiting for pid" in err_a + err_b  # the second one said whom it waited for
    assert not list((tmp_path / "stages").glob("*.partial"))
    # and the result is the one a lone run produces
    alone = tmp_path / "alone"
    run_json(alone, *TINY)
    assert file_tables(alone) == file_tables(tmp_path)


def test_no_wait_exits_at_once_naming_the_holder(tmp_path):
    holder = start("run", "--artifacts", tmp_path, "-q", *TINY, *SLOW_PRETRAIN)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "stages").glob("pretrain-*.partial")) and time.monotonic() < deadline:
            time.sleep(0.01)
        p = aepipe("run", "--artifacts", tmp_path, "--no-wait", *TINY, *SLOW_PRETRAIN)
        assert holder.poll() is None  # answered while the holder was still training
        assert p.returncode == 1, p.stderr
        err = p.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"pid {holder.pid}" in err and "--no-wait" in err
    finally:
        holder.kill()
        holder.communicate()


def test_lock_of_a_dead_process_does_not_block(tmp_path):
    # a process that takes a stage lock and dies holding it
    st = aepipe("status", "--artifacts", tmp_path / "art", "--json", *TINY)
    name = "pretrain-" + json.loads(st.stdout)["stages"][0]["key"]
    lock = tmp_path / "art" / "locks" / f"{name}.lock"
    lock.parent.mkdir(parents=True)
    code = (f"import fcntl, os, time; fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'{\"pid\": %d}' % os.getpid()); "
            "print('locked', flush=True); time.sleep(600)")
    dead = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert dead.stdout.readline().strip() == "locked"
    fd = os.open(lock, os.O_RDWR)
    try:  # held while it lives
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the lock should be held")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    p = aepipe("run", "--artifacts", tmp_path / "art", "--no-wait", "--json", *TINY)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stages"][0]["status"] == "trained"
