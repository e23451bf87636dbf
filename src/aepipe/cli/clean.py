"""``aepipe clean``: remove partial, quarantined and unreferenced artifacts."""

from __future__ import annotations

import json

import click

from .common import ARTIFACTS, JSON, local_artifacts


@click.command(short_help="Remove partial, quarantined and unreferenced artifacts.")
@ARTIFACTS
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Also keep only the newest N run directories of each configuration (a pipeline's "
                   "runs with the same resolved spec: a --set variant is a configuration of its own).")
@click.option("--force", is_flag=True,
              help="Clean even when a run or pipeline record cannot be read (the stages only it names go too).")
@JSON
def clean(artifacts, dry_run, keep_last, force, as_json):
    """Remove interrupted (partial) stages, quarantined stages, stages no
    pipeline record or run refers to, and (with --keep-last) old run
    directories. Before removing anything it prints what goes, by
    configuration: each pipeline's runs grouped by resolved spec, named by how
    they differ from the pipeline file (their overrides). A run or pipeline
    record it cannot read might name stages to keep: it then removes nothing
    and lists those files (exit 2), unless --force."""
    from ..engine.clean import plan_clean, remove
    from ..engine.store import Store

    plan = plan_clean(Store(local_artifacts(artifacts)), keep_last=keep_last, force=force)
    removed = plan.removed
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "removed": [str(p) for p in removed],
                               "configurations": [g.as_dict() for g in plan.groups],
                               "other": [str(p) for p in plan.other]}))
    else:
        _print(plan, "would remove" if dry_run else "removing", keep_last)
    if not dry_run:
        remove(removed)
    if not as_json:
        click.echo(f"{'would remove' if dry_run else 'removed'} {len(removed)} paths", err=True)


def _print(plan, verb: str, keep_last) -> None:
    from ..engine.clean import describe

    for g in plan.groups:
        what = describe(g.overrides, g.reference)
        kept = len(g.runs) - len(g.removed_runs)
        click.echo(f"{g.pipeline} [{g.configuration}] {what}: {len(g.runs)} run{'s' * (len(g.runs) != 1)}, "
                   f"keeping {kept}" + ("" if keep_last is None else f" (--keep-last {keep_last})"))
        for p in g.removed_runs + g.removed_stages:
            click.echo(f"  {verb} {p}")
    if plan.other:
        click.echo("not from a run (partial, quarantined, unreferenced stages, stale locks):")
        for p in plan.other:
            click.echo(f"  {verb} {p}")

