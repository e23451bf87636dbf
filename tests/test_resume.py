"""kill -9 anywhere, rerun, and the result is bit-for-bit what an
uninterrupted run produces; Ctrl-C exits 130 and keeps the checkpoint."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from clirun import aepipe, file_tables, run_json, start, statuses

EPOCHS = 6
# batch 8 stretches an epoch to a few tenths of a second: time to pick the kill point.
# Masking noise and dropout: their RNGs must come back too, not only weights and shuffles.
PIPE = ("--set", f"pretrain.epochs={EPOCHS}", "--set", "pretrain.batch_size=8",
        "--set", "pretrain.noise.kind=masking", "--set", "finetune.dropout=0.2",
        "--set", "head.epochs=2", "--set", f"finetune.epochs={EPOCHS}", "--set", "finetune.batch_size=8",
        "--set", "evaluate.baseline=true", "--set", "evaluate.tsne=false")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run: its stage directories and every file's sha256."""
    art = tmp_path_factory.mktemp("reference")
    result = run_json(art, *PIPE)
    assert set(statuses(result).values()) == {"trained"}
    return {"dirs": {s["name"]: Path(s["path"]).name for s in result["stages"]},
            "files": file_tables(art)}


def _epoch(state: Path) -> int:
    try:
        return json.loads(state.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return -1  # not written yet (writes are atomic, so never half a file)


def kill_during(art: Path, stage_dir: str, epoch: int, sig=signal.SIGKILL, pipe=PIPE):
    """Start a run, signal it once ``stage_dir`` has checkpointed ``epoch``
    epochs (0: as soon as its partial directory exists); return the process
    and the epoch its checkpoint holds afterwards."""
    partial = art / "stages" / f"{stage_dir}.partial"
    state = partial / "checkpoint" / "state.json"
    proc = start("run", "--artifacts", art, *pipe)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if (epoch == 0 and partial.is_dir()) or (epoch > 0 and _epoch(state) >= epoch):
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=120)
    assert partial.is_dir(), f"the run ended without building {stage_dir}: {err[-2000:]}"
    return proc, out, err, _epoch(state)


def rerun_and_compare(art: Path, reference: dict, stage: str, reached: int, pipe=PIPE):
    p = aepipe("run", "--artifacts", art, "--json", *pipe)
    assert p.returncode == 0, p.stderr
    got = statuses(json.loads(p.stdout))
    if reached > 0:
        assert got[stage] == "resumed"
        assert f"resumed from epoch {reached}" in p.stderr
    else:  # killed before the first checkpoint: nothing to resume, trained afresh
        assert got[stage] == "trained"
    assert file_tables(art) == reference["files"]  # every weight, encoding, history: same bytes
    assert not list((art / "stages").glob("*.partial"))


@pytest.mark.parametrize("stage", ["pretrain-1", pytest.param("baseline", marks=pytest.mark.slow)])
def test_sigkill_mid_stage_resumes_bit_identically(tmp_path, reference, stage):
    proc, _, _, reached = kill_during(tmp_path, reference["dirs"][stage], 2)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= reached < EPOCHS or reached == EPOCHS  # killed mid-stage, not after it
    rerun_and_compare(tmp_path, reference, stage, reached)


@pytest.mark.slow
@pytest.mark.parametrize("stage,epoch", [("pretrain-1", 0), ("pretrain-1", 1), ("pretrain-1", 4),
                                         ("pretrain-1", EPOCHS), ("finetune", 0), ("finetune", 1),
                                         ("finetune", 3), ("finetune", EPOCHS), ("pretrain-0", 3),
                                         ("head", 1), ("baseline", 0), ("baseline", EPOCHS)])
def test_sigkill_matrix(tmp_path, reference, stage, epoch):
    """Kill points: before the first checkpoint, after epoch 1, mid-stage, and
    after the last epoch (while encodings and weights are being written)."""
    proc, _, _, reached = kill_during(tmp_path, reference["dirs"][stage], epoch)
    assert proc.returncode == -signal.SIGKILL
    rerun_and_compare(tmp_path, reference, stage, reached)


def test_ctrl_c_exits_130_keeps_checkpoint_and_resumes(tmp_path, reference):
    stage = reference["dirs"]["finetune"]
    proc, out, err, reached = kill_during(tmp_path, stage, 1, sig=signal.SIGINT)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "Traceback" not in err
    assert out == ""
    assert reached >= 1
    st = aepipe("status", "--artifacts", tmp_path, "--json", *PIPE)
    rows = {r["name"]: r for r in json.loads(st.stdout)["stages"]}
    assert rows["finetune"]["status"] == "partial"
    assert rows["head"]["status"] == "cached"
    rerun_and_compare(tmp_path, reference, "finetune", reached)


def test_unreadable_checkpoint_is_a_clear_error_and_rebuild_fixes_it(tmp_path):
    """A checkpoint torn by a power cut is never half-loaded: one line says which
    and what to do, `--rebuild STAGE` (not `aepipe clean`, which would also delete
    other pipelines' resumable partial stages); after it the stage trains from scratch."""
    from click.testing import CliRunner
    from clirun import TINY

    from aepipe.cli import main

    st = aepipe("status", "--artifacts", tmp_path, "--json", *TINY)
    first = json.loads(st.stdout)["stages"][0]
    ckpt = tmp_path / "stages" / f"pretrain-{first['key']}.partial" / "checkpoint"
    (ckpt / "epoch-0001").mkdir(parents=True)
    (ckpt / "epoch-0001" / "model.weights.h5").write_bytes(b"\0" * 100)
    (ckpt / "state.json").write_text(json.dumps({"epoch": 1, "dir": "epoch-0001", "history": {}}))
    other = tmp_path / "stages" / "pretrain-00000000000000aa.partial" / "checkpoint"  # another pipeline's
    other.mkdir(parents=True)
    r = CliRunner().invoke(main, ["run", "-q", "--artifacts", str(tmp_path), *TINY])
    assert r.exit_code == 1, (r.stderr, r.exception)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "cannot be resumed" in err and "--rebuild STAGE" in err, err
    assert "aepipe clean" not in err and f"pretrain stage `aepipe status` lists with key {first['key']}" in err, err
    assert str(ckpt) in err
    r = CliRunner().invoke(main, ["run", "-q", "--artifacts", str(tmp_path), "--json", *TINY,
                                  "--rebuild", first["name"]])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["stages"][0]["status"] == "trained"
    assert other.is_dir()
