"""``aepipe report``: reprint a run's report.md, or its metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..engine import layout
from ..pipeline.history import resolve_run_dir
from .common import ARTIFACTS, local_artifacts


@click.command("report", short_help="Reprint a run's report (or its metrics as JSON).")
@click.argument("run", metavar="RUN_DIR")
@ARTIFACTS
@click.option("--json", "as_json", is_flag=True, help="Print the run's metrics.json instead.")
def report(run, artifacts, as_json):
    """Print RUN_DIR/report.md (re-rendered from run.json and spec.json if it
    is missing). RUN_DIR may also be ARTIFACTS/runs/<pipeline> or just the
    pipeline's name, meaning its newest run. With --json, print metrics.json
    (its keys are documented in aepipe.analysis.report)."""
    if (Path(run) / layout.RUN_REPORT).is_file() and not (Path(run) / layout.RUN_RECORD).is_file():
        run_dir = Path(run)  # a report without a run, as `aepipe tsne` writes
    else:
        run_dir = resolve_run_dir(run, local_artifacts(artifacts))
    if as_json:
        click.echo((run_dir / layout.RUN_METRICS).read_text())
        return
    md = run_dir / layout.RUN_REPORT
    if md.is_file():
        click.echo(md.read_text(), nl=False)
        return
    from ..analysis.report import render_report

    record = json.loads((run_dir / layout.RUN_RECORD).read_text())
    spec = json.loads((run_dir / layout.RUN_SPEC).read_text())
    click.echo(render_report(record, spec, sorted(p.name for p in run_dir.glob("*.png"))))
