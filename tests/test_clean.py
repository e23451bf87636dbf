"""``aepipe clean``: partial, quarantined and unreferenced stages go (unless
another process is building them); --dry-run only lists; --keep-last N keeps
the newest N runs of each pipeline; referenced stages always stay."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest
from clirun import TINY, aepipe


@pytest.fixture(scope="module")
def built(tiny_run):
    art, result = tiny_run
    return art, [Path(s["path"]).name for s in result["stages"]], Path(result["run_dir"])


@pytest.fixture
def cluttered(tmp_path, built):
    """A copy of a full run plus one of each kind of litter and four runs."""
    src, stages, run_dir = built
    art = tmp_path / "art"
    shutil.copytree(src, art)
    s = art / "stages"
    shutil.copytree(s / stages[0], s / "pretrain-00000000000000aa")  # unreferenced
    (s / "pretrain-00000000000000bb.partial" / "checkpoint").mkdir(parents=True)  # interrupted
    (art / "quarantine").mkdir()
    shutil.copytree(s / stages[2], art / "quarantine" / f"{stages[2]}-20260101T000000-abcdef")
    runs = art / "runs" / "digits"
    for name in ("20250101T000000Z", "20250101T000000Z-2", "20250101T000000Z-10"):
        shutil.copytree(runs / run_dir.name, runs / name)
    return art, stages, run_dir.name


def _clean(art, *args):
    p = aepipe("clean", "--artifacts", art, "--json", *args)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return sorted(str(Path(x).relative_to(art)) for x in out["removed"]), out


def test_dry_run_lists_and_removes_nothing(cluttered):
    art, stages, _ = cluttered
    before = sorted(str(p) for p in art.rglob("*"))
    removed, out = _clean(art, "--dry-run")
    assert out["dry_run"] is True
    assert removed == [f"quarantine/{stages[2]}-20260101T000000-abcdef",
                       "stages/pretrain-00000000000000aa", "stages/pretrain-00000000000000bb.partial"]
    assert sorted(str(p) for p in art.rglob("*")) == before


def test_clean_keeps_every_referenced_stage(cluttered):
    art, stages, _ = cluttered
    removed, _ = _clean(art)
    assert len(removed) == 3
    assert sorted(p.name for p in (art / "stages").iterdir()) == sorted(stages)
    assert not list((art / "quarantine").iterdir())
    st = aepipe("status", "--artifacts", art, "--json", *TINY)
    assert {r["status"] for r in json.loads(st.stdout)["stages"]} == {"cached"}
    assert _clean(art)[0] == []  # nothing left to do


def test_keep_last_keeps_the_newest_runs(cluttered):
    art, _, newest = cluttered
    removed, _ = _clean(art, "--keep-last", "2", "--dry-run")
    runs = [r for r in removed if r.startswith("runs/")]
    # oldest first: the stamp, then -2, then -10 (numerically, not as text)
    assert runs == ["runs/digits/20250101T000000Z", "runs/digits/20250101T000000Z-2"]
    _clean(art, "--keep-last", "2")
    assert sorted(p.name for p in (art / "runs" / "digits").iterdir()) == sorted(
        ["20250101T000000Z-10", newest])


def test_a_stage_being_built_is_left_alone(cluttered):
    art, _, _ = cluttered
    lock = art / "locks" / "pretrain-00000000000000bb.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running build holds it
        removed, _ = _clean(art)
        assert "stages/pretrain-00000000000000bb.partial" not in removed
        assert (art / "stages" / "pretrain-00000000000000bb.partial").is_dir()
    finally:
        os.close(fd)
    assert "stages/pretrain-00000000000000bb.partial" in _clean(art)[0]
