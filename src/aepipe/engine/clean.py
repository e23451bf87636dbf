"""``aepipe clean``: what is safe to delete from an artifacts directory.

Nothing a user can still reach goes: a stage stays while a pipeline's latest
record or any surviving run directory names it, a run directory counts only if
it holds ``run.json`` (``tsne-*`` outputs and other folders beside the runs
are not runs), and a stage another process is building right now is left alone.

``--keep-last N`` keeps the newest N runs of each *configuration* (a run's
resolved spec less the fields that key nothing), not of each pipeline name:
exploring with ``--set`` never costs the pipeline file's own runs their stages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config.flatten import as_text, flatten
from ..errors import AepipeError, SpecError
from .layout import RUN_RECORD, RUN_SPEC, run_order
from .store import Store

UNKEYED = ("tracking.",)  # spec fields no stage key reads: runs differing only there share a configuration


def check_artifacts_dir(store: Store) -> None:
    """A typo (``--artifacts artfacts``) must not read as "nothing to clean"."""
    if not store.root.is_dir() or not any((store.root / d).is_dir() for d in ("stages", "runs", "pipelines")):
        raise SpecError(f"{str(store.root)!r} is not an aepipe artifacts directory (no stages/, runs/ or "
                        "pipelines/ in it); check --artifacts")


def run_dirs(store: Store) -> dict[Path, list[Path]]:
    """Each pipeline's run directories (those holding run.json), oldest first."""
    if not store.runs.is_dir():
        return {}
    return {pipeline_runs: runs_in(pipeline_runs)
            for pipeline_runs in sorted(p for p in store.runs.iterdir() if p.is_dir())}


def runs_in(pipeline_runs: Path) -> list[Path]:
    """The run directories (those holding run.json) in one pipeline's folder, oldest first."""
    if not pipeline_runs.is_dir():
        return []
    return sorted((p for p in pipeline_runs.iterdir() if (p / RUN_RECORD).is_file()), key=run_order)


# ---------------------------------------------------------------- configurations


def spec_fields(raw: dict, where: str = "<dict>") -> dict:
    """A spec dict as dotted fields with defaults filled in (a run written before a
    field existed reads as that field's default); one this version cannot read as it is."""
    from .. import config

    try:
        raw = config.from_dict(raw, where, strict=False).to_dict()
    except AepipeError:
        pass
    return flatten(raw)


def configuration(run_dir: Path) -> dict | None:
    """A run's configuration: its resolved spec (spec.json) as dotted fields, less
    the fields that key nothing (``tracking.*``); None when spec.json is unreadable."""
    try:
        raw = json.loads((run_dir / RUN_SPEC).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    return {k: v for k, v in spec_fields(raw, str(run_dir / RUN_SPEC)).items() if not k.startswith(UNKEYED)}


def configuration_id(fields: dict | None) -> str:
    """Eight hex digits naming a configuration; ``unknown`` for an unreadable spec."""
    if fields is None:
        return "unknown"
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:8]


def reference_fields(name: str, pipeline_file: str | Path | None = None) -> tuple[dict | None, str | None]:
    """What a pipeline's runs are told apart from: ``pipeline_file`` when given, else the
    built-in pipeline when ``name`` is its name; (None, None) when neither is known."""
    from .. import config

    if pipeline_file is None:
        default = config.load(None)
        if default.name != name:
            return None, None
        spec, where = default, "the built-in pipeline"
    else:
        spec, where = config.load(pipeline_file), str(pipeline_file)
    return ({k: v for k, v in flatten(spec.to_dict()).items() if not k.startswith(UNKEYED + ("name",))}, where)


def overrides(fields: dict | None, reference: dict | None, others: list[dict | None] = ()) -> list[str]:
    """How a configuration differs, as ``--set`` would write it: from ``reference``
    (its overrides), or with none known, in the fields where ``others`` (the pipeline's
    configurations) differ among themselves. A field every layer sets alike reads
    ``layers.*.epochs=3``; a different depth reads ``layers=3``."""
    if fields is None:
        return ["(spec.json unreadable)"]
    fields = {k: v for k, v in fields.items() if k != "name"}
    if reference is None:
        known = [o for o in others if o is not None]
        keys = {k for o in known for k in o if k != "name" and len({_json(p.get(k)) for p in known}) > 1}
        return [f"{k}={as_text(fields[k])}" for k in sorted(keys, key=natural) if k in fields]
    out = []
    depth, ref_depth = _depth(fields), _depth(reference)
    if depth != ref_depth:
        out.append(f"layers={depth}")
    changed = {k for k in fields if k in reference and fields[k] != reference[k]}
    changed |= {k for k in fields if k not in reference and not k.startswith("layers.")}
    for k in sorted(changed, key=natural):
        parts = k.split(".")
        if parts[0] == "layers" and len(parts) == 3:
            same = {_json(fields.get(f"layers.{i}.{parts[2]}")) for i in range(depth)}
            every = all(f"layers.{i}.{parts[2]}" in changed for i in range(min(depth, ref_depth)))
            if every and len(same) == 1 and depth > 1:
                item = f"layers.*.{parts[2]}={as_text(fields[k])}"
                out += [] if item in out else [item]
                continue
        out.append(f"{k}={as_text(fields[k])}")
    return out


def describe(changes: list[str], reference: str | None) -> str:
    """A configuration in words: its overrides, and what they are relative to."""
    if reference:
        return f"{' '.join(changes)} (vs {reference})" if changes else f"as {reference}"
    return " ".join(changes) if changes else "its only configuration"


def _depth(fields: dict) -> int:
    return len({k.split(".")[1] for k in fields if k.startswith("layers.")})


def _json(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def natural(key: str) -> list:
    """``layers.2`` before ``layers.10``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split(".")]


# ---------------------------------------------------------------- what goes


@dataclass
class Group:
    """One configuration of one pipeline: its runs (oldest first), which of them go,
    and the stages that go with them (no surviving run or pipeline record names them)."""

    pipeline: str
    configuration: str
    fields: dict | None
    runs: list[Path]
    removed_runs: list[Path] = field(default_factory=list)
    removed_stages: list[Path] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    reference: str | None = None

    def as_dict(self) -> dict:
        return {"pipeline": self.pipeline, "configuration": self.configuration, "overrides": self.overrides,
                "compared_with": self.reference, "runs": len(self.runs),
                "removed": [str(p) for p in self.removed_runs + self.removed_stages]}


@dataclass
class Cleaning:
    """What ``clean`` removes: by configuration, and what no run used (partial,
    quarantined and unreferenced stages, stale lock files)."""

    groups: list[Group]
    other: list[Path]

    @property
    def removed(self) -> list[Path]:
        return [p for g in self.groups for p in g.removed_runs + g.removed_stages] + self.other


def _names_in_run(run_dir: Path) -> set[str] | None:
    """The stage directories a run's record names; None when run.json is unreadable."""
    try:
        record = json.loads((run_dir / RUN_RECORD).read_text())
        return {Path(s["path"]).name for s in record.get("stages", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _names_in_record(store: Store, record: Path) -> set[str] | None:
    """The stage directories a pipeline's latest record names; None when it is unreadable."""
    try:
        stages = json.loads(record.read_text())
        return {store.name(s["kind"], s["key"]) for s in stages.values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def referenced_stage_names(store: Store, surviving_runs=(), unreadable: list[Path] | None = None) -> set[str]:
    """Stages named by some pipeline's latest plan or by a surviving run directory;
    the records that cannot be read are added to ``unreadable``."""
    names: set[str] = set()
    for record, found in [*((r, _names_in_record(store, r)) for r in sorted((store.root / "pipelines").glob("*.json"))),
                          *((r / RUN_RECORD, _names_in_run(r)) for r in surviving_runs)]:
        if found is None and unreadable is not None:
            unreadable.append(record)
        names |= found or set()
    return names


def _groups(store: Store, keep_last: int | None) -> list[Group]:
    groups: list[Group] = []
    for folder, runs in run_dirs(store).items():
        by_config: dict[str, Group] = {}
        for r in runs:
            fields = configuration(r)
            cid = configuration_id(fields)
            by_config.setdefault(cid, Group(folder.name, cid, fields, [])).runs.append(r)
        mine = list(by_config.values())
        reference, where = reference_fields(folder.name)
        for g in mine:
            g.overrides, g.reference = overrides(g.fields, reference, [o.fields for o in mine]), where
            if keep_last is not None:
                g.removed_runs = g.runs[:max(0, len(g.runs) - keep_last)]
        groups += sorted(mine, key=lambda g: run_order(g.runs[-1]))
    return groups


def plan_clean(store: Store, keep_last: int | None = None, force: bool = False) -> Cleaning:
    """Partial, quarantined and unreferenced stages, their stale lock files, and
    (with ``keep_last``) all but the newest N runs of each configuration. A record
    that cannot be read (a run's run.json, or its spec.json with ``keep_last``; a
    pipeline's latest record) may name stages to keep: refused unless ``force``."""
    check_artifacts_dir(store)
    groups = _groups(store, keep_last)
    surviving = [r for g in groups for r in g.runs if r not in g.removed_runs]
    unreadable: list[Path] = []
    keep = referenced_stage_names(store, surviving, unreadable)
    owner = {name: g for g in groups for r in g.removed_runs for name in _names_in_run(r) or ()}
    unreadable += [r / RUN_RECORD for g in groups for r in g.removed_runs if _names_in_run(r) is None]
    if keep_last is not None:
        unreadable += [r / RUN_SPEC for g in groups if g.fields is None for r in g.runs]
    if unreadable and not force:
        raise SpecError(f"refusing to clean: {len(unreadable)} record{'s' * (len(unreadable) != 1)} cannot be read "
                        f"and may name stages that must stay: {', '.join(map(str, sorted(unreadable)))}; repair or "
                        "remove them, or rerun with --force to clean as if they named nothing (nothing was removed)")
    other: list[Path] = []
    doomed_stages = []
    for d in store.stage_dirs():
        name = d.name.removesuffix(".partial")
        if (d.name.endswith(".partial") or name not in keep) and not store.is_locked(name):
            doomed_stages.append(d)
            g = owner.get(d.name)
            (g.removed_stages if g is not None else other).append(d)
    if store.quarantine_dir.is_dir():
        other.extend(sorted(store.quarantine_dir.iterdir()))
    if store.locks.is_dir():  # a lock file whose stage is gone (or going) and that nobody holds
        alive = {d.name for d in store.stage_dirs() if d not in doomed_stages}
        alive |= {n.removesuffix(".partial") for n in alive}
        other.extend(lock for lock in sorted(store.locks.glob("*.lock"))
                     if lock.stem not in alive and not store.is_locked(lock.stem))
    return Cleaning(groups, other)


def remove(paths: list[Path]) -> None:
    for p in paths:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def clean(store: Store, dry_run: bool = False, keep_last: int | None = None, force: bool = False) -> list[Path]:
    """``plan_clean``'s paths, removed unless ``dry_run``."""
    doomed = plan_clean(store, keep_last, force).removed
    if not dry_run:
        remove(doomed)
    return doomed
