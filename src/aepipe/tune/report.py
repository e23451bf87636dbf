"""What a study shows: one row per trial, the table, and what no stage key was trained twice means."""

from __future__ import annotations

from ..analysis.report import pct
from ..analysis.table import fixed_width
from ..pipeline.sweep import trained_counts  # noqa: F401  (one count for sweeps and studies)


def trial_rows(study) -> list[dict]:
    """Every trial in number order: params, objective, state, what its stages did."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        stages = t.user_attrs.get("stages", [])
        value = t.value if t.values else None
        if value is None and t.intermediate_values:  # pruned: the last epoch it reached
            value = t.intermediate_values[max(t.intermediate_values)]
        rows.append({"number": t.number, "params": dict(t.params), "value": value, "state": t.state.name.lower(),
                     "retry_of": t.system_attrs.get("failed_trial"), "variant": t.user_attrs.get("variant"),
                     "stages": stages, "seconds": t.user_attrs.get("seconds"),
                     "trained": sum(s["status"] in ("trained", "resumed") for s in stages),
                     "cached": sum(s["status"] == "cached" for s in stages)})
    return rows


def _fmt(value, metric: str) -> str:
    if value is None:
        return ""
    return pct(value, "") if metric == "val_accuracy" else f"{value:.4f}"


def _param(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_table(rows: list[dict], keys: list[str], metric: str, best: int | None) -> str:
    head = ["trial", *keys, metric, "state", "trained", "cached", "seconds"]
    table = [head]
    for r in rows:
        state = r["state"] + (f" (retry of {r['retry_of']})" if r["retry_of"] is not None else "")
        table.append([f"{r['number']}{' *' if r['number'] == best else ''}",
                      *(_param(r["params"][k]) if k in r["params"] else "" for k in keys),
                      _fmt(r["value"], metric), state, str(r["trained"]), str(r["cached"]),
                      "" if r["seconds"] is None else f"{r['seconds']:.1f}"])
    return fixed_width(table)
