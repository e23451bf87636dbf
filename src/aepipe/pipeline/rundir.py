"""Run directories: ``runs/<pipeline>/<UTC time>/`` with spec, metrics, run record, plots, report.

Drawn from the stage files alone, so a fully cached rerun writes a complete
run directory without TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..config.redact import redact_values
from ..engine import layout
from ..engine.plan import base_name
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


def collect_metrics(stages, published: dict, spec, data=None) -> dict:
    """metrics.json: the evaluate stage's (replicate 0's), each layer's
    reconstruction error, the t-SNE table, what every stage cost to build, and
    the pairs of every replicate with the finding over seeds (``replicates``)."""
    from ..analysis.replicates import replicate_findings

    metrics = dict(published["evaluate"].manifest.get("metrics", {})) if "evaluate" in published else {}
    metrics["reconstruction_mse"] = {
        s.name: published[s.name].manifest.get("metrics", {}).get("reconstruction_mse")
        for s in stages if s.kind == "pretrain" and not s.replicate}
    pairs = []
    for s in stages:
        if s.kind == "evaluate":
            m = published[s.name].manifest.get("metrics", {})
            pairs.append({"replicate": s.replicate, "seed": spec.replicate(s.replicate).seed,
                          "test_accuracy": m.get("test_accuracy"),
                          "baseline_test_accuracy": m.get("baseline_test_accuracy"),
                          "comparison": m.get("comparison"), "reconstruction": m.get("reconstruction")})
    if pairs:
        metrics["replicates"] = replicate_findings(pairs)
    if "baseline" in published:  # timings live in the run's metrics, never in a stage's files
        metrics["baseline_seconds"] = round(published["baseline"].manifest.get("seconds", 0.0), 3)
    if "tsne" in published:
        metrics["tsne"] = published["tsne"].manifest.get("metrics", {}).get("tsne")
    if "cluster" in published:
        metrics["clustering"] = _clustering(published, data)
        pairs = [(spec.replicate(s.replicate).seed, published[s.name].path,
                  published[s.name.replace("cluster", "cluster-baseline", 1)].path)
                 for s in stages if s.kind == "cluster" and s.name.replace("cluster", "cluster-baseline", 1) in published]
        if len(pairs) > 1 and "scores" in metrics["clustering"]:  # replicates: the answer over seeds
            from ..analysis.clustering import over_seeds

            metrics["clustering"]["over_seeds"] = over_seeds(pairs, data.y_test)
    metrics["stages"] = {s.name: round(published[s.name].manifest.get("seconds", 0.0), 3) for s in stages}
    return metrics


def _clustering(published: dict, data) -> dict:
    """The cluster stage's own figures, and its scores against the labels (read only here)."""
    from ..analysis.clustering import run_scores

    stage = published["cluster"]
    out = dict(stage.manifest.get("metrics", {}))
    twin = published.get("cluster-baseline")
    if twin is not None:
        out["random_init_unlabeled"] = twin.manifest.get("metrics", {}).get("unlabeled")
    if data is not None and (np.asarray(data.y_train) >= 0).any():  # labels exist: score against them
        out.update(run_scores(stage.path, twin.path if twin else None, data.y_train, data.y_test))
    return out


def write_run(run_dir: Path, result, spec, published: dict) -> Path:
    """spec.json, metrics.json, run.json, the PNGs and report.md."""
    from ..analysis.plots import write_run_plots
    from ..analysis.report import render_report

    result.run_dir = str(run_dir)
    plain = redact_values(spec.to_dict())  # a tracking.uri's credentials are never written
    atomic_write_json(run_dir / layout.RUN_SPEC, plain)
    atomic_write_json(run_dir / layout.RUN_METRICS, result.metrics)
    atomic_write_json(run_dir / layout.RUN_RECORD, redact_values(result.as_dict()))
    plots = write_run_plots(run_dir, {k: v for k, v in published.items() if base_name(k) == k},  # replicate 0
                            result.metrics)
    atomic_write_text(run_dir / layout.RUN_REPORT, render_report(result, plain, plots))
    return run_dir
