"""A flipped byte, a truncated or missing file, bad JSON: ``status`` says
corrupt and names the file; ``run`` moves the stage to quarantine/ and
rebuilds it -- to the same bytes, since a stage is a pure function."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import TINY, aepipe, file_tables, run_json, statuses


@pytest.fixture(scope="module")
def built(tiny_run):
    art, result = tiny_run
    return art, {s["name"]: Path(s["path"]).name for s in result["stages"]}, file_tables(art)


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def remove(path: Path) -> None:
    path.unlink()


# (stage, file, damage, what the reason must say)
CASES = [
    ("pretrain-0", "encoder.weights.h5", flip, "encoder.weights.h5 does not match its sha256"),
    ("pretrain-1", "encodings/test.npy", flip, "encodings/test.npy does not match its sha256"),
    ("head", "history.json", flip, "history.json does not match its sha256"),
    ("finetune", "manifest.json", flip, "manifest.json"),
    ("evaluate", "metrics.json", truncate, "metrics.json has"),
    ("pretrain-1", "decoder.weights.h5", remove, "decoder.weights.h5 is missing"),
]


def _status(art) -> dict:
    p = aepipe("status", "--artifacts", art, "--json", *TINY)
    assert p.returncode == 0, p.stderr
    return {r["name"]: r for r in json.loads(p.stdout)["stages"]}


@pytest.mark.parametrize("stage,rel,damage,reason", CASES, ids=[f"{c[2].__name__}-{c[1]}" for c in CASES])
def test_status_names_the_damaged_file(tmp_path, built, stage, rel, damage, reason):
    src, dirs, _ = built
    art = tmp_path / "art"
    shutil.copytree(src, art)
    damage(art / "stages" / dirs[stage] / rel)
    rows = _status(art)
    assert rows[stage]["status"] == "corrupt"
    assert reason in rows[stage]["reason"]
    assert all(r["status"] == "cached" for name, r in rows.items() if name != stage)


def test_manifest_that_still_parses_is_caught_by_its_checksum(tmp_path, built):
    src, dirs, _ = built
    art = tmp_path / "art"
    shutil.copytree(src, art)
    m = art / "stages" / dirs["head"] / "manifest.json"
    doc = json.loads(m.read_text())
    doc["files"]["head.weights.h5"]["sha256"] = "0" * 64  # valid JSON, wrong content
    m.write_text(json.dumps(doc))
    assert _status(art)["head"]["reason"].endswith("manifest.json does not match its checksum")


@pytest.mark.slow
def test_run_quarantines_and_rebuilds_every_damaged_stage(tmp_path, built):
    src, dirs, files = built
    art = tmp_path / "art"
    shutil.copytree(src, art)
    for stage, rel, damage, _ in CASES[:5]:  # one damage per stage, each of a different kind
        damage(art / "stages" / dirs[stage] / rel)
    assert {r["status"] for r in _status(art).values()} == {"corrupt"}
    p = aepipe("run", "--artifacts", art, "--json", *TINY)
    assert p.returncode == 0, p.stderr
    assert set(statuses(json.loads(p.stdout)).values()) == {"trained"}
    assert p.stderr.count("corrupt (") == 5 and "moved to" in p.stderr
    quarantined = sorted(q.name for q in (art / "quarantine").iterdir())
    assert len(quarantined) == 5
    assert all(any(q.startswith(d + "-") for q in quarantined) for d in dirs.values())
    assert file_tables(art) == files  # rebuilt bit-for-bit
    assert {r["status"] for r in _status(art).values()} == {"cached"}


@pytest.mark.slow
def test_downstream_is_rebuilt_when_a_rebuilt_stage_differs(tmp_path, built):
    """A corrupt stage rebuilt to different bytes (another machine, another
    library version) must not keep feeding the stages built from its old output."""
    src, dirs, files = built
    art = tmp_path / "art"
    shutil.copytree(src, art)
    # simulate "rebuilt differently": the head's manifest records another digest of pretrain-1
    m = art / "stages" / dirs["head"] / "manifest.json"
    doc = json.loads(m.read_text())
    doc["upstream_digests"]["pretrain-1"] = "f" * 64
    from aepipe.engine.store import manifest_checksum

    doc["checksum"] = manifest_checksum(doc)
    m.write_text(json.dumps(doc))
    rows = _status(art)
    assert rows["head"]["status"] == "stale"
    assert rows["head"]["reason"] == "built from an earlier pretrain-1; a run rebuilds it"
    result = run_json(art, *TINY)
    assert statuses(result) == {"pretrain-0": "cached", "pretrain-1": "cached", "head": "trained",
                                "finetune": "cached", "evaluate": "cached"}
    assert file_tables(art) == files
