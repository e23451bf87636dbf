"""Cache guard: a spec default that changes without a version bump would let old
stages (keyed on non-default fields only) stand for the new meaning.

tests/golden/stage_defaults.json pins every field's default and every stage
kind's code version. A changed default fails here unless every stage kind that
reads the field has a higher version than the pinned one; then record the new
table with ``python tests/test_stage_versions.py --write`` (which refuses to
write an unbumped change).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aepipe.config.relevance import TRAINING_FIELDS

GOLDEN = Path(__file__).with_name("golden") / "stage_defaults.json"
TRAINING = ("pretrain", "unroll", "unroll_baseline", "head", "finetune", "baseline", "cluster", "cluster_baseline")
READERS = {  # field prefix -> the stage kinds whose results it can change
    "seed": TRAINING + ("tsne",), "name": (), "data.": TRAINING + ("evaluate", "tsne"),
    "pretrain.": ("pretrain",), "layers[].": ("pretrain", "baseline", "unroll", "unroll_baseline", "cluster_baseline"),
    # how a layer is pretrained (relevance.pretrain_fields) is read by its pretrain stage alone
    **{f"layers[].{name}": ("pretrain",) for name in (*TRAINING_FIELDS, "noise.")},
    "unroll.": ("unroll", "unroll_baseline"), "head.": ("head",),
    "finetune.": ("finetune", "baseline"), "evaluate.tsne_samples": ("tsne",),
    "evaluate.tsne_engine": ("tsne",), "evaluate.": ("evaluate",), "cluster.": ("cluster", "cluster_baseline"),
    "distribution.": TRAINING, "tracking.": (),  # where runs are logged decides nothing they produce
}


def readers(field: str) -> tuple[str, ...]:
    prefix = max((p for p in READERS if field == p or (p.endswith(".") and field.startswith(p))), key=len)
    return READERS[prefix]


def current() -> dict:
    from aepipe.config import field_table
    from aepipe.engine.plan import STAGE_VERSIONS

    return {"versions": dict(STAGE_VERSIONS), "defaults": {key: default for key, default, _ in field_table()}}


def problems(now: dict, pinned: dict) -> tuple[list[str], list[str]]:
    """(unbumped changes, changes to record)."""
    unbumped, record = [], []
    for field, default in now["defaults"].items():
        old = pinned["defaults"].get(field)
        if old is None:
            record.append(f"new field {field} (default {default})")
        elif old != default:
            stale = [k for k in readers(field) if now["versions"][k] <= pinned["versions"].get(k, 0)]
            line = f"default of {field} changed {old} -> {default}"
            if stale:
                unbumped.append(f"{line}: bump STAGE_VERSIONS[{stale[0]!r}]"
                                + "".join(f", [{k!r}]" for k in stale[1:]) + " in aepipe/engine/plan.py")
            else:
                record.append(line)
    for kind, v in now["versions"].items():
        if v != pinned["versions"].get(kind):
            record.append(f"version of {kind}: {pinned['versions'].get(kind)} -> {v}")
    return unbumped, record


def test_every_default_change_bumps_the_versions_of_its_readers():
    unbumped, record = problems(current(), json.loads(GOLDEN.read_text()))
    assert not unbumped, "a changed default would reuse stages built for the old one:\n" + "\n".join(unbumped)
    assert not record, ("record the new table with `python tests/test_stage_versions.py --write`:\n"
                        + "\n".join(record))


def test_the_guard_catches_an_unbumped_default_change():
    pinned = json.loads(GOLDEN.read_text())
    now = current()
    now["defaults"]["finetune.epochs"] = "199"
    unbumped, _ = problems(now, pinned)
    assert unbumped == ["default of finetune.epochs changed 200 -> 199: bump STAGE_VERSIONS['finetune'], "
                        "['baseline'] in aepipe/engine/plan.py"]
    now["versions"]["finetune"] += 1
    now["versions"]["baseline"] += 1
    assert problems(now, pinned)[0] == []


def test_a_layer_training_default_is_read_by_pretraining_alone():
    pinned = json.loads(GOLDEN.read_text())
    now = current()
    now["defaults"]["layers[].n_iter_no_change"] = "3"
    now["defaults"]["layers[].noise.kind"] = "\"masking\""
    assert problems(now, pinned)[0] == [
        "default of layers[].n_iter_no_change changed 10 -> 3: bump STAGE_VERSIONS['pretrain'] in aepipe/engine/plan.py",
        "default of layers[].noise.kind changed \"gaussian\" -> \"masking\": bump STAGE_VERSIONS['pretrain'] in "
        "aepipe/engine/plan.py"]
    now["versions"]["pretrain"] += 1  # no other kind: baseline, unroll and clusters read a layer's network only
    assert problems(now, pinned)[0] == []


def test_every_field_has_readers_and_every_reader_a_version():
    from aepipe.engine.plan import STAGE_VERSIONS

    for field in current()["defaults"]:
        assert set(readers(field)) <= set(STAGE_VERSIONS), field


if __name__ == "__main__" and "--write" in sys.argv:
    now = current()
    if GOLDEN.is_file():
        unbumped, _ = problems(now, json.loads(GOLDEN.read_text()))
        if unbumped:
            sys.exit("refusing to record unbumped default changes:\n" + "\n".join(unbumped))
    GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
