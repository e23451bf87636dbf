"""report.md for a run: what ran, what it cost, what it scored."""

from __future__ import annotations

import json


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.2f} %"


def render_report(result, spec) -> str:
    m = result.metrics
    lines = [f"# aepipe run: {result.pipeline}", "", f"Run directory: `{result.run_dir}`", "",
             "## Results", "", "| metric | value |", "|---|---|",
             f"| test accuracy | {_pct(m.get('test_accuracy'))} |"]
    if "baseline_test_accuracy" in m:
        lines.append(f"| random-init baseline ({m.get('baseline_epochs')} epochs) | "
                     f"{_pct(m['baseline_test_accuracy'])} |")
    for name, mse in (m.get("reconstruction_mse") or {}).items():
        lines.append(f"| reconstruction MSE, {name} | {mse:.5f} |" if mse is not None else "")
    lines += ["", "## Stages", "", "| stage | key | status | seconds |", "|---|---|---|---|"]
    for s in result.stages:
        lines.append(f"| {s.name} | `{s.key[:16]}` | {s.status} | {s.seconds:.1f} |")
    lines += ["", "## Pipeline", "", "```json", json.dumps(spec.to_dict(), indent=2), "```", ""]
    return "\n".join(line for line in lines if line is not None)
