"""The ``aepipe`` command line: a thin face over the runner.

Heavy imports (TensorFlow, scikit-learn) happen inside the commands that need
them, so ``aepipe --help`` and ``aepipe status`` start in a fraction of a second.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path

import click

from .errors import AepipeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's import notices off stderr


# Commands that live in their own module under aepipe/commands/, imported only
# when listed or invoked (click's LazyGroup pattern). name -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    "report": "aepipe.commands.report:report",
    "tsne": "aepipe.commands.tsne:tsne",
    "sweep": "aepipe.commands.sweep:sweep",
    "encode": "aepipe.commands.encode:encode",
    "export": "aepipe.commands.export:export",
}


class AepipeGroup(click.Group):
    """Lazy subcommands, and every failure as a one-line message with the design's exit codes."""

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume", err=True)
            ctx.exit(130)
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            if ctx.meta.get("aepipe.debug"):
                traceback.print_exc()
            if isinstance(e, OSError) and e.strerror:
                where = f": {e.filename}" if e.filename else ""
                raise AepipeError(f"{e.strerror}{where}") from None
            raise AepipeError(f"{type(e).__name__}: {e} (rerun with --debug for the traceback)") from None


@click.group(cls=AepipeGroup, context_settings={"auto_envvar_prefix": "AEPIPE",
                                                "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aepipe")
def main():
    """Greedy layer-wise autoencoder pretraining, as cached staged pipelines.

    Every stage (pretrain layer i, head, finetune, evaluate) is stored under
    ARTIFACTS by the hash of what it depends on; reruns skip what is cached and
    resume what was interrupted. Without PIPELINE, the built-in digits pipeline runs.
    """


def _log_fn(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def pipeline_command(short_help: str, *, register: bool = True, lone_argument: str | None = None):
    """The options every command that takes a PIPELINE shares; the command gets
    ``(spec, store, opts, **its_own_options)``. Lazy command modules pass
    ``register=False`` and are listed in ``LAZY_COMMANDS`` instead.

    ``lone_argument``: the command's own (optional) positional argument. Given
    one positional only, click binds it to PIPELINE; it goes to that argument
    instead, and the built-in pipeline is used (``aepipe encode x.npy -o c.npy``)."""

    def decorate(fn):
        @click.option("--artifacts", type=click.Path(file_okay=True, path_type=Path), default="artifacts",
                      envvar="AEPIPE_ARTIFACTS", show_default=True, metavar="DIR",
                      help="Artifacts directory (stages, runs).")
        @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override a pipeline field, e.g. --set layers.1.units=32 (repeatable).")
        @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
        @click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
        @click.option("--debug", is_flag=True, help="Show tracebacks.")
        @click.argument("pipeline", required=False, type=click.Path(path_type=Path), metavar="[PIPELINE]")
        @functools.wraps(fn)
        @click.pass_context
        def wrapper(ctx, pipeline, artifacts, overrides, as_json, quiet, debug, **kw):
            ctx.meta["aepipe.debug"] = debug
            if lone_argument and kw.get(lone_argument) is None:
                if pipeline is None or pipeline.suffix.lower() == ".toml":
                    param = next(p for p in ctx.command.params if p.name == lone_argument)
                    raise click.UsageError(f"Missing argument '{param.metavar or param.name.upper()}'.")
                pipeline, kw[lone_argument] = None, pipeline
            from . import spec as spec_mod
            from .store import Store

            spec = spec_mod.load(pipeline, overrides)
            store = Store(artifacts)
            opts = {"json": as_json, "quiet": quiet, "log": _log_fn(quiet)}
            return fn(spec, store, opts, **kw)

        cmd = click.command(fn.__name__, short_help=short_help, help=fn.__doc__)(wrapper)
        if register:
            main.add_command(cmd)
        return cmd

    return decorate


def _runner(spec, store, opts, wait=True):
    from .runner import Runner

    # Keras verbosity: a progress bar on a TTY, one line per epoch otherwise
    verbose = 0 if opts["quiet"] else (1 if sys.stderr.isatty() else 2)
    tensorboard = click.get_current_context().meta.get("aepipe.tensorboard", False)
    return Runner(spec, store, verbose=verbose, log=opts["log"], wait=wait, tensorboard=tensorboard)


def _print_result(result, opts):
    if opts["json"]:
        click.echo(json.dumps(result.as_dict(), indent=None, sort_keys=False))
        return
    for s in result.stages:
        click.echo(f"{s.name:<12} {s.status:<8} {s.seconds:8.1f}s  {s.key[:16]}")
    m = result.metrics
    if "test_accuracy" in m:
        click.echo(f"test accuracy: {100 * m['test_accuracy']:.2f} %")
    if "baseline_test_accuracy" in m:
        click.echo(f"random-init baseline: {100 * m['baseline_test_accuracy']:.2f} %")
    if result.run_dir:
        click.echo(f"run: {result.run_dir}")


_NO_WAIT = click.option("--no-wait", is_flag=True, help="Fail at once if another run holds a stage lock.")


def _want_tensorboard(ctx, param, value):
    import importlib.util

    if value and importlib.util.find_spec("tensorboard") is None:
        raise click.BadParameter("needs the tensorboard package: pip install 'aepipe[tensorboard]'")
    ctx.meta["aepipe.tensorboard"] = value


_TENSORBOARD = click.option(
    "--tensorboard", is_flag=True, expose_value=False, callback=_want_tensorboard,
    help="Write TensorBoard logs of every stage trained in this run under RUN_DIR/tensorboard/.")


@pipeline_command("Run every stage, skipping what is cached.")
@_NO_WAIT
@_TENSORBOARD
def run(spec, store, opts, no_wait):
    """Run every stage of PIPELINE (pretrain each layer, head, finetune,
    evaluate), skipping cached stages and resuming interrupted ones."""
    _print_result(_runner(spec, store, opts, not no_wait).run("evaluate"), opts)


@pipeline_command("Pretrain the autoencoder layers only.")
@_NO_WAIT
@_TENSORBOARD
def pretrain(spec, store, opts, no_wait):
    """Greedily pretrain every autoencoder layer of PIPELINE."""
    _print_result(_runner(spec, store, opts, not no_wait).run("pretrain"), opts)


@pipeline_command("Train the head and fine-tune (pretraining first if needed).")
@_NO_WAIT
@_TENSORBOARD
def finetune(spec, store, opts, no_wait):
    """Train the softmax head on the top codes, then fine-tune the whole stack."""
    _print_result(_runner(spec, store, opts, not no_wait).run("finetune"), opts)


@pipeline_command("Evaluate on the test split (building what it needs).")
@_NO_WAIT
@_TENSORBOARD
def evaluate(spec, store, opts, no_wait):
    """Evaluate the fine-tuned classifier of PIPELINE on the test split and write a run report."""
    _print_result(_runner(spec, store, opts, not no_wait).run("evaluate"), opts)


@pipeline_command("Show each stage: cached, missing, stale, corrupt or partial.")
def status(spec, store, opts):
    """Show each stage of PIPELINE without training or importing TensorFlow."""
    from .runner import Runner

    rows = Runner(spec, store, log=opts["log"]).status()
    if opts["json"]:
        click.echo(json.dumps({"pipeline": spec.name, "stages": rows}))
        return
    for r in rows:
        reason = f"  ({r['reason']})" if r["reason"] else ""
        click.echo(f"{r['name']:<12} {r['key']}  {r['status']}{reason}")


@main.command(short_help="Remove partial, quarantined and unreferenced artifacts.")
@click.option("--artifacts", type=click.Path(path_type=Path), default="artifacts", envvar="AEPIPE_ARTIFACTS",
              show_default=True, metavar="DIR", help="Artifacts directory.")
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Also keep only the newest N run directories of each pipeline.")
@click.option("--json", "as_json", is_flag=True, help="Print the removed paths as JSON.")
def clean(artifacts, dry_run, keep_last, as_json):
    """Remove interrupted (partial) stages, quarantined stages, stages no
    pipeline record refers to, and (with --keep-last) old run directories."""
    from .clean import clean as do_clean
    from .store import Store

    removed = do_clean(Store(artifacts), dry_run=dry_run, keep_last=keep_last)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "removed": [str(p) for p in removed]}))
        return
    verb = "would remove" if dry_run else "removed"
    for p in removed:
        click.echo(f"{verb} {p}")
    click.echo(f"{verb} {len(removed)} paths", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
