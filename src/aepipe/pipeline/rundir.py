"""Run directories: ``runs/<pipeline>/<UTC time>/`` with spec, metrics, run record, plots, report.

Drawn from the stage files alone, so a fully cached rerun writes a complete
run directory without TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..engine import layout
from ..engine.atomic import atomic_write_json, atomic_write_text


def new_run_dir(runs: Path, pipeline: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (runs / pipeline).mkdir(parents=True, exist_ok=True)
    for n in range(1000):  # mkdir is the claim: two runs in the same second get two dirs
        run_dir = runs / pipeline / (f"{stamp}-{n}" if n else stamp)
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs of {pipeline} at {stamp}")


def collect_metrics(stages, published: dict) -> dict:
    """metrics.json: the evaluate stage's, each layer's reconstruction error, the
    t-SNE table and what every stage cost to build."""
    metrics = dict(published["evaluate"].manifest.get("metrics", {}))
    metrics["reconstruction_mse"] = {
        s.name: published[s.name].manifest.get("metrics", {}).get("reconstruction_mse")
        for s in stages if s.kind == "pretrain"}
    if "baseline" in published:  # timings live in the run's metrics, never in a stage's files
        metrics["baseline_seconds"] = round(published["baseline"].manifest.get("seconds", 0.0), 3)
    if "tsne" in published:
        metrics["tsne"] = published["tsne"].manifest.get("metrics", {}).get("tsne")
    metrics["stages"] = {s.name: round(published[s.name].manifest.get("seconds", 0.0), 3) for s in stages}
    return metrics


def write_run(run_dir: Path, result, spec, published: dict) -> Path:
    """spec.json, metrics.json, run.json, the PNGs and report.md."""
    from ..analysis.plots import write_run_plots
    from ..analysis.report import render_report

    result.run_dir = str(run_dir)
    atomic_write_json(run_dir / layout.RUN_SPEC, spec.to_dict())
    atomic_write_json(run_dir / layout.RUN_METRICS, result.metrics)
    atomic_write_json(run_dir / layout.RUN_RECORD, result.as_dict())
    plots = write_run_plots(run_dir, published, result.metrics)
    atomic_write_text(run_dir / layout.RUN_REPORT, render_report(result, spec, plots))
    return run_dir
