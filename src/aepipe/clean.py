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
    doomed: list[Path] = []
    keep = referenced_stage_names(store)
    for d in store.stage_dirs():
        if d.name.endswith(".partial") or d.name not in keep:
            doomed.append(d)
    if store.quarantine_dir.is_dir():
        doomed.extend(sorted(store.quarantine_dir.iterdir()))
    if keep_last is not None and store.runs.is_dir():
        for pipeline_runs in sorted(store.runs.iterdir()):
            runs = sorted(p for p in pipeline_runs.iterdir() if p.is_dir())
            doomed.extend(runs[: max(0, len(runs) - keep_last)])
    if not dry_run:
        for p in doomed:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return doomed
