"""``aepipe clean``: remove partial, quarantined and unreferenced artifacts."""

from __future__ import annotations

import json

import click

from .common import ARTIFACTS, JSON


@click.command(short_help="Remove partial, quarantined and unreferenced artifacts.")
@ARTIFACTS
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Also keep only the newest N run directories of each pipeline.")
@JSON
def clean(artifacts, dry_run, keep_last, as_json):
    """Remove interrupted (partial) stages, quarantined stages, stages no
    pipeline record refers to, and (with --keep-last) old run directories."""
    from ..engine.clean import clean as do_clean
    from ..engine.store import Store

    removed = do_clean(Store(artifacts), dry_run=dry_run, keep_last=keep_last)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "removed": [str(p) for p in removed]}))
        return
    verb = "would remove" if dry_run else "removed"
    for p in removed:
        click.echo(f"{verb} {p}")
    click.echo(f"{verb} {len(removed)} paths", err=True)
