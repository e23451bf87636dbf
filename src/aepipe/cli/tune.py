"""``aepipe tune``: an Optuna search over pipeline fields, on the shared stage cache."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import check_parallel, parallel_options, pipeline_command

BEST_TEST_LABEL = "test accuracy of the best trial (reported once, not used to choose)"


@pipeline_command("Search pipeline fields with Optuna; shared stages train once.")
@click.option("--space", "params", multiple=True, required=True, metavar="KEY=SPEC",
              help="A field and its range: KEY=int:LO:HI, KEY=int:LO:HI:log, KEY=float:LO:HI, "
                   "KEY=float:LO:HI:log or KEY=choice:A,B,C, e.g. --space layers.1.units=int:8:32. Repeatable.")
@click.option("-n", "--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Finished (complete or pruned) trials the study should hold in total; rerunning the "
                   "same command after an interruption tops it up to this.")
@click.option("--metric", type=click.Choice(["val_accuracy", "val_loss", "val_reconstruction_loss"]),
              default="val_accuracy", show_default=True,
              help="The objective: the fine-tune's last-epoch validation accuracy (maximized) or loss "
                   "(minimized), or, for autoencoders alone, the top pretrain stage's validation "
                   "reconstruction loss (trials then run the pretrain phase only).")
@click.option("--pruner", type=click.Choice(["median", "none"]), default="median", show_default=True,
              help="median: stop a trial whose scored stage (the fine-tune) is worse than the median of earlier "
                   "trials at the same epoch (after 4 trials and a quarter of the epochs); its finished stages "
                   "stay cached.")
@parallel_options("trials")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the TPE sampler.")
@click.option("--study", "study_name", metavar="NAME", default=None,
              help="Study name [default: the pipeline's name and a hash of the pipeline, space and metric].")
@click.option("--storage", metavar="URL", default=None,
              help="Optuna storage URL [default: sqlite:///ARTIFACTS/tune/STUDY.db].")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True, metavar="SECONDS",
              help="Trials send a heartbeat this often; one silent for 3 heartbeats (its process died) is "
                   "retried with the same params.")
@click.option("--write-best", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the best trial's pipeline as a TOML file that `aepipe run` accepts.")
def tune(spec, store, opts, params, trials, metric, pruner, jobs, backend, scheduler, seed, study_name,
         storage, heartbeat, write_best):
    """Search the --space ranges of PIPELINE with Optuna (TPE sampler), every
    trial a pipeline run to the end of fine-tuning against one artifacts
    directory, so stages that trials share are trained once. Trials are chosen
    by the fine-tune's validation metric; only after the study ends is the best
    trial evaluated on the test split, once. The same command after Ctrl-C or
    a kill continues the study."""
    from ..config import write
    from ..errors import BadArgument
    from ..engine.atomic import atomic_write_text
    from ..tune import report, study as tune_study
    from ..tune.trial import format_value

    check_parallel(backend, scheduler)
    ctx = click.get_current_context().params
    pipeline, overrides = ctx["pipeline"], ctx["overrides"]
    _check_targets(write_best, pipeline, storage)  # before hours of trials
    if metric != "val_reconstruction_loss":
        from ..config.ranking import warn_thin_ranking

        warn_thin_ranking([spec], "tune")
    study, base, space, url = tune_study.run_study(
        pipeline, overrides, params, store.location, trials=trials, jobs=jobs, backend=backend, scheduler=scheduler,
        metric=metric, prune=pruner, seed=seed, name=study_name, storage_url=storage, heartbeat=heartbeat,
        quiet=opts["quiet"], log=opts["log"])
    rows = report.trial_rows(study)
    best = tune_study.best_trial(study)
    best_spec, best_sets = tune_study.best_spec(pipeline, overrides, base, best)
    if write_best is not None:
        atomic_write_text(write_best, write.dumps(write.raw_with_overrides(
            pipeline, [*overrides, *best_sets, f"name={best_spec.name}"])))
    result = tune_study.evaluate_best(pipeline, overrides, base, best, store.location, opts["log"])
    test_accuracy = result.metrics.get("test_accuracy")
    if opts["json"]:
        click.echo(json.dumps({"study": study.study_name, "storage": url, "metric": metric,
                               "direction": study.direction.name.lower(), "trials": rows,
                               "best": {"number": best.number, "params": best.params, "value": best.value,
                                        "overrides": best_sets, "pipeline": best_spec.name},
                               "best_test_accuracy": test_accuracy, "best_run_dir": result.run_dir,
                               "best_pipeline_file": None if write_best is None else str(write_best)}))
        return
    click.echo(report.format_table(rows, list(space), metric, best.number))
    click.echo(f"best trial: {best.number} ({', '.join(best_sets)}): {metric} {format_value(best.value, metric)}")
    if test_accuracy is not None:
        click.echo(f"{BEST_TEST_LABEL}: {100 * test_accuracy:.2f} %")
    click.echo(f"study: {study.study_name} ({url})")
    if result.run_dir:
        click.echo(f"run: {result.run_dir}")
    if write_best is not None:
        click.echo(f"best pipeline: {write_best}")


def _check_targets(write_best: Path | None, pipeline, storage: str | None) -> None:
    """--write-best must not overwrite the pipeline searched (its name, values and
    comments) and needs an existing directory; --storage must open."""
    from ..config.redact import redact
    from ..errors import BadArgument
    from ..tune import study as tune_study

    if write_best is not None:
        if not write_best.resolve().parent.is_dir():
            raise BadArgument(f"--write-best {str(write_best)!r}: the directory {str(write_best.parent)!r} "
                              "does not exist")
        searched = Path(str(pipeline)) if pipeline is not None else None
        if searched is not None and searched.is_file() and searched.resolve() == write_best.resolve():
            raise BadArgument(f"--write-best {str(write_best)!r} is the pipeline being searched; write the best "
                              "trial's pipeline to another file")
    if storage is not None:
        try:
            tune_study.storage(storage, None)
        except Exception as e:  # SQLAlchemy's or a driver's: their text names neither option nor path
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise BadArgument(f"--storage {redact(storage)!r}: cannot open the database: {redact(reason)}") from None
