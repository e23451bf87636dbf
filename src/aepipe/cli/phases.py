"""``aepipe run | pretrain | finetune | evaluate`` (one command per phase) and ``aepipe status``."""

from __future__ import annotations

import contextlib
import json

import click

from .common import make_runner, pipeline_command, print_result, start_tracking, tracking_options


def _want_tensorboard(ctx, param, value):
    import importlib.util

    if value and importlib.util.find_spec("tensorboard") is None:
        raise click.BadParameter("needs the tensorboard package: pip install 'aepipe[tensorboard]'")
    ctx.meta["aepipe.tensorboard"] = value


PHASES = {  # command -> (runner phase, short help, help)
    "run": ("evaluate", "Run every stage, skipping what is cached.",
            "Run every stage of PIPELINE (pretrain each layer, head, finetune, and the baseline, evaluate "
            "and tsne stages it enables), skipping cached stages and resuming interrupted ones."),
    "pretrain": ("pretrain", "Pretrain the autoencoder layers only.",
                 "Greedily pretrain every autoencoder layer of PIPELINE."),
    "finetune": ("finetune", "Train the head and fine-tune (pretraining first if needed).",
                 "Train the softmax head on the top codes, then fine-tune the whole stack."),
    "evaluate": ("evaluate", "Evaluate on the test split (building what it needs).",
                 "Evaluate the fine-tuned classifier of PIPELINE (and its random-init baseline) on the "
                 "test split and write a run report."),
    "cluster": ("cluster", "Cluster the codes (pretraining first if needed).",
                "Build the cluster stage of PIPELINE ([cluster] method) and its random-init twin, score them "
                "against k-means on the raw inputs and on PCA, and write a run report (no head or fine-tune)."),
}


def phase_command(name: str) -> click.Command:
    phase, short_help, help_text = PHASES[name]

    def command(spec, store, opts, no_wait, rebuild):
        tracker = start_tracking(spec)  # before anything trains
        with tracker or contextlib.nullcontext():
            result = make_runner(spec, store, opts, not no_wait, rebuild, observer=tracker).run(phase)
        if tracker is not None and tracker.active and tracker.run_id:
            opts["log"](f"mlflow: {tracker.describe()}")
        print_result(result, opts)

    command.__name__, command.__doc__ = name, help_text
    command = tracking_options(command)
    command = click.option("--tensorboard", is_flag=True, expose_value=False, callback=_want_tensorboard,
                           help="Write TensorBoard logs of every stage trained in this run under "
                                "RUN_DIR/tensorboard/.")(command)
    command = click.option("--rebuild", multiple=True, metavar="STAGE",
                           help="Retrain STAGE (e.g. pretrain-1, finetune, baseline) and every stage that "
                                "depends on it, even if cached; 'all' retrains everything (repeatable).")(command)
    command = click.option("--no-wait", is_flag=True,
                           help="Fail at once if another run holds a stage lock.")(command)
    return pipeline_command(short_help)(command)


run, pretrain, finetune, evaluate = (phase_command(n) for n in ("run", "pretrain", "finetune", "evaluate"))


@pipeline_command("Show each stage: cached, missing, stale, corrupt or partial.")
def status(spec, store, opts):
    """Show each stage of PIPELINE without training or importing TensorFlow."""
    from ..pipeline.runner import Runner

    store.fetch = False  # a remote store: its manifests are read, nothing is downloaded
    if not store.root.is_dir() and store.location == str(store.root):  # said, not created
        click.echo(f"no artifact store at {str(store.root)!r} (--artifacts): nothing is cached here; "
                   "`aepipe run` creates it", err=True)
    rows = Runner(spec, store, log=opts["log"]).status()
    if opts["json"]:
        click.echo(json.dumps({"pipeline": spec.name, "stages": rows}))
        return
    for r in rows:
        reason = f"  ({r['reason']})" if r["reason"] else ""
        click.echo(f"{r['name']:<15} {r['key']}  {r['status']}{reason}")
