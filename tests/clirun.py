"""Run ``aepipe`` as a user would: a subprocess, with TensorFlow's notices off.

Shared by the reliability tests (resume, corrupt, concurrency, bad input),
which need real processes to kill, interrupt and race.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

AEPIPE = str(Path(sys.executable).with_name("aepipe"))

# A digits pipeline small enough for the default test run; batch 8 makes each
# epoch take long enough (~0.2 s) to kill a process in the middle of a stage.
# Greedy ReLU layers, as the default pipeline had before issue 30 (it is joint tanh now).
TINY = ("--set", "pretrain.epochs=3", "--set", "head.epochs=2", "--set", "finetune.epochs=3",
        "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false",
        "--set", "pretrain.mode=greedy", "--set", "pretrain.activation=relu", "--set", "unroll.epochs=0")


def env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def aepipe(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([AEPIPE, *map(str, args)], capture_output=True, text=True, env=env(),
                          timeout=timeout, **kw)


def _default_sigint():
    # a shell's background job inherits SIGINT ignored, and Python then never
    # raises KeyboardInterrupt; a user's terminal has the default, so give it that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, stderr=subprocess.PIPE, **kw) -> subprocess.Popen:
    return subprocess.Popen([AEPIPE, *map(str, args)], stdout=subprocess.PIPE, stderr=stderr,
                            text=True, env=env(), preexec_fn=_default_sigint, **kw)


def run_json(artifacts, *args) -> dict:
    """``aepipe run --json``; fails the test with stderr when the run fails."""
    p = aepipe("run", "--artifacts", artifacts, "--json", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def statuses(result: dict) -> dict:
    return {s["name"]: s["status"] for s in result["stages"]}


def file_tables(artifacts) -> dict:
    """Every published stage's ``{file: sha256}``, keyed by stage directory name."""
    out = {}
    for m in sorted(Path(artifacts, "stages").glob("*/manifest.json")):
        if m.parent.name.endswith(".partial"):
            continue  # not published
        files = json.loads(m.read_text())["files"]
        out[m.parent.name] = {k: v["sha256"] for k, v in files.items()}
    return out


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Exit ``code``, one line on stderr that contains every needle, no traceback."""
    err = p.stderr.strip()
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err
