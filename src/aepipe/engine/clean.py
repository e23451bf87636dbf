"""``aepipe clean``: what is safe to delete from an artifacts directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .store import Store


def referenced_stage_names(store: Store) -> set[str]:
    """Stages named by some pipeline's latest plan; the rest are unreferenced."""
    names = set()
    for record in (store.root / "pipelines").glob("*.json"):
        try:
            stages = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        names.update(store.name(s["kind"], s["key"]) for s in stages.values())
    return names


def clean(store: Store, dry_run: bool = False, keep_last: int | None = None) -> list[Path]:
    """Partial, quarantined and unreferenced stages (and, with ``keep_last``,
    all but the newest N runs of each pipeline); removed unless ``dry_run``.
    A stage another process is building right now is left alone."""
    doomed: list[Path] = []
    keep = referenced_stage_names(store)
    for d in store.stage_dirs():
        name = d.name.removesuffix(".partial")
        if (d.name.endswith(".partial") or name not in keep) and not store.is_locked(name):
            doomed.append(d)
    if store.quarantine_dir.is_dir():
        doomed.extend(sorted(store.quarantine_dir.iterdir()))
    if keep_last is not None and store.runs.is_dir():
        for pipeline_runs in sorted(p for p in store.runs.iterdir() if p.is_dir()):
            runs = sorted((p for p in pipeline_runs.iterdir() if p.is_dir()), key=_run_order)
            doomed.extend(runs[: max(0, len(runs) - keep_last)])
    if not dry_run:
        for p in doomed:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return doomed


def _run_order(run_dir: Path):
    """``<UTC stamp>`` then ``<stamp>-1``, ``<stamp>-2``... (``-10`` after ``-9``)."""
    stamp, _, n = run_dir.name.partition("-")
    return stamp, int(n) if n.isdigit() else 0
