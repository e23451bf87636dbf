"""``aepipe clean``: what is safe to delete from an artifacts directory.

Nothing a user can still reach goes: a stage stays while a pipeline's latest
record or any surviving run directory names it, a run directory counts only if
it holds ``run.json`` (``tsne-*`` outputs and other folders beside the runs
are not runs), and a stage another process is building right now is left alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import SpecError
from .layout import RUN_RECORD, run_order
from .store import Store


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


def _names_in_run(run_dir: Path) -> set[str]:
    try:
        record = json.loads((run_dir / RUN_RECORD).read_text())
        return {Path(s["path"]).name for s in record.get("stages", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def referenced_stage_names(store: Store, surviving_runs=()) -> set[str]:
    """Stages named by some pipeline's latest plan or by a surviving run directory."""
    names = set()
    for record in (store.root / "pipelines").glob("*.json"):
        try:
            stages = json.loads(record.read_text())
            names.update(store.name(s["kind"], s["key"]) for s in stages.values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    for run_dir in surviving_runs:
        names |= _names_in_run(run_dir)
    return names


def clean(store: Store, dry_run: bool = False, keep_last: int | None = None) -> list[Path]:
    """Partial, quarantined and unreferenced stages, their stale lock files, and
    (with ``keep_last``) all but the newest N runs of each pipeline; removed unless ``dry_run``."""
    check_artifacts_dir(store)
    doomed: list[Path] = []
    surviving = []
    for runs in run_dirs(store).values():
        cut = len(runs) - keep_last if keep_last is not None else 0
        doomed.extend(runs[:max(0, cut)])
        surviving.extend(runs[max(0, cut):])
    keep = referenced_stage_names(store, surviving)
    for d in store.stage_dirs():
        name = d.name.removesuffix(".partial")
        if (d.name.endswith(".partial") or name not in keep) and not store.is_locked(name):
            doomed.append(d)
    if store.quarantine_dir.is_dir():
        doomed.extend(sorted(store.quarantine_dir.iterdir()))
    if store.locks.is_dir():  # a lock file whose stage is gone (or going) and that nobody holds
        alive = {d.name for d in store.stage_dirs() if d not in doomed}
        alive |= {n.removesuffix(".partial") for n in alive}
        doomed.extend(lock for lock in sorted(store.locks.glob("*.lock"))
                      if lock.stem not in alive and not store.is_locked(lock.stem))
    if not dry_run:
        for p in doomed:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return doomed
