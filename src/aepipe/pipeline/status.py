"""``aepipe status``: each stage of a pipeline, cached / missing / stale (why) / corrupt / partial.

Reads manifests and the pipeline's last record only: no TensorFlow, no training.
"""

from __future__ import annotations

from ..engine.plan import StagePlan, diff_params


def stage_rows(stages: list[StagePlan], store, record: dict) -> list[dict]:
    rows, cached = [], {}
    for s in stages:
        st, stage = store.lookup(s.kind, s.key)  # verified once, manifest included
        status, reason = st.status, st.reason
        holder = store.holder(store.name(s.kind, s.key)) if stage is None else None
        if holder is not None:
            status, reason = "building", holder
        elif status == "partial":
            epoch = store.checkpoint_epoch(s.kind, s.key)
            reason = f"resumable from epoch {epoch}" if epoch is not None else reason
        elif status == "missing" and store.partial_path(s.kind, s.key).is_dir():
            status, reason = "partial", "interrupted before its first epoch ended; a rerun starts it over"
        if status == "missing" and s.name in record and record[s.name].get("key") != s.key:
            status, reason = "stale", _stale_reason(s, stages, record)
        if stage is not None:
            cached[s.name] = stage
            changed = changed_upstream(stage, cached)
            if changed:
                status, reason = "stale", f"built from an earlier {', '.join(changed)}; a run rebuilds it"
        rows.append({"name": s.name, "kind": s.kind, "key": s.key[:16], "status": status, "reason": reason})
    return rows


def _stale_reason(s: StagePlan, stages: list[StagePlan], record: dict) -> str:
    old = record[s.name]
    changed = diff_params(old.get("params", {}), s.params)
    if changed:
        return "; ".join(changed)
    keys = {p.name: p.key for p in stages}
    ups = [u for u in s.upstream if u in record and record[u].get("key") != keys.get(u)]
    if ups:
        return f"upstream {', '.join(ups)} changed"
    return "data or stage code changed"


def changed_upstream(stage, published: dict) -> list[str]:
    """Upstream stages whose files differ from those ``stage`` was built from
    (a corrupt upstream rebuilt on another machine or library version)."""
    recorded = stage.manifest.get("upstream_digests") or {}
    return [u for u, digest in recorded.items() if u in published and published[u].digest != digest]
