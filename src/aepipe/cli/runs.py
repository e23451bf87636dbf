"""``aepipe runs`` (the run history) and ``aepipe diff`` (two runs side by side).

Both read run directories only: no TensorFlow, no MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..analysis.table import fixed_width
from .common import ARTIFACTS, JSON, local_artifacts


def _pipeline_file(pipeline: str | None) -> str | None:
    return pipeline if pipeline and pipeline.endswith(".toml") and Path(pipeline).is_file() else None


def _pipeline_name(pipeline: str | None) -> str | None:
    """A pipeline file stands for its name; anything else is the name, one path
    component as pipeline names are (never a way out of ARTIFACTS/runs)."""
    from .. import config

    if _pipeline_file(pipeline):
        return config.load(pipeline).name
    if pipeline is not None and not config.spec.is_path_component(pipeline):
        from ..errors import BadArgument

        raise BadArgument(f"PIPELINE {pipeline!r}: a pipeline file (.toml) or a pipeline name, "
                          f"{config.spec.NAME_RULE}")
    return pipeline


@click.command("runs", short_help="List past runs, newest first.")
@click.argument("pipeline", required=False, metavar="[PIPELINE]")
@ARTIFACTS
@JSON
def runs(pipeline, artifacts, as_json):
    """One row per run directory under ARTIFACTS/runs (of PIPELINE, a pipeline
    name or file, if given), newest first: time, run, test accuracy, the
    random-init baseline and the paired verdict, seconds, and how many stages
    trained and how many were cached, and its configuration: an id shared by
    runs of the same resolved spec, and how it differs from the pipeline file
    (its overrides: from PIPELINE when that is a file, else from the built-in
    pipeline of that name). RUN names a run for ``aepipe diff`` and
    ``aepipe report``."""
    from ..analysis.report import pct
    from ..engine.clean import describe
    from ..pipeline.history import list_runs

    artifacts = local_artifacts(artifacts)
    name = _pipeline_name(pipeline)  # a bad name is refused even where there are no runs yet
    rows = list_runs(Path(artifacts) / "runs", name, _pipeline_file(pipeline)) \
        if (Path(artifacts) / "runs").is_dir() else []
    if as_json:
        click.echo(json.dumps({"runs": rows}))
        return
    if not rows:
        click.echo(f"no runs under {str(Path(artifacts) / 'runs')!r}", err=True)
        return
    table = [["time", "run", "test %", "baseline %", "verdict", "seconds", "trained", "cached", "configuration"]]
    for r in rows:
        table.append([r["time"] or "", r["run"], pct(r["test_accuracy"], ""), pct(r["baseline_test_accuracy"], "")
                      if r["baseline_test_accuracy"] is not None else "-", r["verdict"] or "-",
                      f"{r['seconds']:.1f}", str(r["trained"]), str(r["cached"]),
                      f"[{r['configuration']}] {describe(r['overrides'], r['compared_with'])}"])
    click.echo(fixed_width(table))


def _num(v) -> str:
    return "-" if v is None else v if isinstance(v, str) else f"{v:.6g}"


@click.command("diff", short_help="Compare two runs: spec fields, stage keys, metrics.")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@ARTIFACTS
@JSON
@click.option("--all", "all_metrics", is_flag=True, help="Also list the per-class classification report.")
def diff(run_a, run_b, artifacts, as_json, all_metrics):
    """Show what differs between two runs: the spec fields (as --set keys), the
    stages whose keys differ (what one run trained that the other could not
    reuse), and every numeric metric side by side with B - A. A run is a run
    directory, PIPELINE/STAMP under ARTIFACTS/runs (as ``aepipe runs`` prints
    it), or a pipeline name (its newest run)."""
    from ..pipeline.history import diff_runs, resolve_run_dir

    artifacts = local_artifacts(artifacts)
    d = diff_runs(resolve_run_dir(run_a, artifacts), resolve_run_dir(run_b, artifacts), all_metrics=all_metrics)
    if as_json:
        click.echo(json.dumps(d))
        return
    click.echo(f"A: {d['a']}\nB: {d['b']}")
    click.echo("\nspec:" + ("" if d["spec"] else " identical"))
    if d["spec"]:
        click.echo(fixed_width([["field", "A", "B"]] + [[s["field"], str(s["a"]), str(s["b"])] for s in d["spec"]]))
    click.echo("\nstages:" + ("" if d["stages"] else " same keys"))
    if d["stages"]:
        click.echo(fixed_width([["stage", "A", "B"]] + [
            [s["stage"], f"{(s['a'] or '-')[:16]} {s['a_status'] or ''}".strip(),
             f"{(s['b'] or '-')[:16]} {s['b_status'] or ''}".strip()] for s in d["stages"]]))
    click.echo("\nmetrics:" + ("" if d["metrics"] else " none"))
    if d["metrics"]:
        click.echo(fixed_width([["metric", "A", "B", "B - A"]] + [
            [m["metric"], _num(m["a"]), _num(m["b"]), "-" if m["delta"] is None else f"{m['delta']:+.4g}"]
            for m in d["metrics"]]))
