"""``aepipe sweep``: run a grid of pipeline variants and compare them."""

from __future__ import annotations

import json

import click

from .common import check_parallel, parallel_options, pipeline_command, start_tracking, tracking_options


@pipeline_command("Run a grid of pipeline variants; shared stages train once.")
@tracking_options
@click.option("--grid", "grid_items", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="A field and the values to try, e.g. --grid layers.0.units=256,512 (repeatable; "
                   "every combination runs).")
@parallel_options("variants")
def sweep(spec, store, opts, grid_items, jobs, backend, scheduler):
    """Run every combination of the --grid values of PIPELINE, in parallel,
    against one artifacts directory: stages that variants share (same fields,
    same upstream) are trained once and reused. Prints the variants sorted by
    validation accuracy, best first (never by test accuracy: a pipeline
    without a validation split is refused). A grid over data.labels (and
    data.label_seed, for draws of the labeled subset) also prints the label
    curve's table and writes labels.png and labels.json under
    ARTIFACTS/sweeps/<pipeline name>/. A grid over seed, with evaluate.baseline,
    also prints whether pretraining helped over those seeds, as
    evaluate.replicates does."""
    from ..analysis.label_curve import format_label_table, published_for
    from ..analysis.replicates import sweep_findings
    from ..pipeline.sweep import format_table, parse_grid, run_sweep, write_label_curve

    check_parallel(backend, scheduler)
    params = click.get_current_context().params
    grid = parse_grid(grid_items)  # run_sweep checks every value, then warns of thin validation, before training
    results = run_sweep(params["pipeline"], params["overrides"], grid, store.location, jobs=jobs, backend=backend,
                        scheduler=scheduler, log=opts["log"], observer=_tracking(spec))
    curve = write_label_curve(results, store.root, spec.name, spec.data.source, log=opts["log"])
    over_seeds = sweep_findings(results)  # a grid over seed: did pretraining help, over those seeds
    if opts["json"]:
        click.echo(json.dumps({"pipeline": spec.name, "variants": results,
                               **({"label_curve": curve} if curve else {}),
                               **({"over_seeds": over_seeds} if over_seeds else {})}))
        return
    click.echo(format_table(results))
    for f in over_seeds:
        point = ", ".join(f"{k}={v}" for k, v in f["point"].items())
        click.echo(f"over seeds {', '.join(map(str, f['seeds']))}{f' ({point})' if point else ''}: {f['sentence']}")
    if curve:
        click.echo("\n" + format_label_table(curve, published_for(spec.data.source)))


def _tracking(spec):
    """The backend is probed once, here, before any variant trains; the workers
    get a maker of trackers for the target only if it answered (no warning per worker)."""
    import functools

    from ..tracking import make_tracker

    tracker = start_tracking(spec)
    return None if tracker is None else functools.partial(make_tracker, tracker.target)
