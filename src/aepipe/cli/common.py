"""What the commands share: the PIPELINE argument and its options, the runner, result printing."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click



class ArtifactsParam(click.ParamType):
    """A directory (a ``Path``), or a remote store's URL kept as a string
    (``Path`` would fold ``s3://`` into ``s3:/``); ``engine.remote.open_store`` checks it."""

    name = "artifacts"

    def convert(self, value, param, ctx):
        return value if isinstance(value, str) and "://" in value else Path(value)


ARTIFACTS = click.option("--artifacts", type=ArtifactsParam(), default="artifacts",
                         envvar="AEPIPE_ARTIFACTS", show_default=True, metavar="DIR|s3://BUCKET/PREFIX",
                         help="Artifacts directory (stages, runs), or an S3-compatible bucket shared by "
                              "several machines, mirrored in a local cache (--cache).")
CACHE = click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
                     envvar="AEPIPE_CACHE", metavar="DIR",
                     help="This machine's cache of an s3:// --artifacts store [default: "
                          "~/.cache/aepipe/<hash of the URL>]; unused for a directory.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def local_artifacts(artifacts) -> Path:
    """Where run records are read: the directory, or a remote store's cache with
    every run in the bucket fetched into it (``runs``, ``diff``, ``report``, ``clean``)."""
    from ..engine.remote import is_remote, open_store

    if not is_remote(artifacts):
        return Path(artifacts)
    store = open_store(artifacts)
    store.pull_runs()
    return store.root


def _log_fn(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def _quiet_and_debug(ctx, quiet: bool, debug: bool) -> tuple[bool, bool]:
    """``-q`` and ``--debug`` given to the group (``aepipe -q run``) or to the command.
    ``ctx.meta`` is one dict shared by every context of an invocation, the group's
    included, so the group's error handler sees the command's ``--debug`` too."""
    meta = ctx.meta
    meta["aepipe.debug"] = debug = debug or meta.get("aepipe.debug", False)
    return quiet or meta.get("aepipe.quiet", False), debug


def pipeline_command(short_help: str, *, pipeline_option: bool = False):
    """The options every command that takes a pipeline shares; the command gets
    ``(spec, store, opts, **its_own_options)``. The pipeline is the optional
    PIPELINE argument, or with ``pipeline_option`` a ``-p/--pipeline`` option
    (for commands whose positional argument is something else)."""

    def decorate(fn):
        if pipeline_option:
            where = click.option("-p", "--pipeline", type=click.Path(path_type=Path), default=None,
                                 metavar="PIPELINE", help="Pipeline file [default: the built-in digits pipeline].")
        else:
            where = click.argument("pipeline", required=False, type=click.Path(path_type=Path),
                                   metavar="[PIPELINE]")

        @ARTIFACTS
        @CACHE
        @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override a pipeline field, e.g. --set layers.1.units=32 (repeatable).")
        @JSON
        @click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
        @click.option("--debug", is_flag=True, help="Show tracebacks.")
        @where
        @functools.wraps(fn)
        @click.pass_context
        def wrapper(ctx, pipeline, artifacts, cache, overrides, as_json, quiet, debug, **kw):
            quiet, debug = _quiet_and_debug(ctx, quiet, debug)
            from .. import config
            from ..engine.remote import open_store

            spec = config.load(pipeline, overrides)
            _one_line_warnings()
            opts = {"json": as_json, "quiet": quiet, "log": _log_fn(quiet)}
            if cache is not None:  # sweep and tune workers started from here inherit it
                os.environ["AEPIPE_CACHE"] = str(cache)
            return fn(spec, open_store(artifacts), opts, **kw)

        return click.command(fn.__name__.rstrip("_"), short_help=short_help, help=fn.__doc__)(wrapper)

    return decorate


def tracking_options(fn):
    """``--mlflow URI`` and ``--mlflow-required`` (read back by ``start_tracking``)."""

    def keep(ctx, param, value):
        ctx.meta[f"aepipe.{param.name}"] = value

    fn = click.option("--mlflow-required", is_flag=True, expose_value=False, callback=keep,
                      help="Fail (exit 1) before anything trains if the tracking backend cannot be reached; "
                           "without it an unreachable backend is a warning and the run goes untracked.")(fn)
    return click.option("--mlflow", metavar="URI", default=None, expose_value=False, callback=keep,
                        help="Log this run to MLflow at URI (sqlite:///mlflow.db, http://host:5000, ...); "
                             "wins over the pipeline's [tracking] uri and $MLFLOW_TRACKING_URI; 'off': "
                             "no tracking.")(fn)


def parallel_options(units: str):
    """``--jobs``, ``--backend`` and ``--scheduler`` of the commands that run many
    pipelines at once (sweep, tune); ``units``: what runs at once ("variants")."""

    def decorate(fn):
        fn = click.option("--scheduler", metavar="ADDRESS", default=None,
                          help="dask scheduler address, e.g. tcp://10.0.0.5:8786; without it, --backend dask "
                               "starts a LocalCluster of --jobs workers.")(fn)
        fn = click.option("--backend", type=click.Choice(["loky", "dask"]), default="loky", show_default=True,
                          help="joblib backend: loky (local processes) or dask (a dask.distributed cluster).")(fn)
        return click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                            help=f"{units.capitalize()} run at once (loky processes, or LocalCluster workers "
                                 "for dask).")(fn)

    return decorate


def _one_line_warnings() -> None:
    """aepipe's own warnings (a pseudo-label ramp that never starts, inputs on
    another scale) print as one ``warning:`` line on stderr, even with -q;
    other libraries' warnings keep Python's format."""
    import warnings

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("aepipe."):
            click.echo(f"warning: {message}", err=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def check_parallel(backend: str, scheduler: str | None) -> None:
    """The one combination of ``parallel_options`` click cannot refuse by itself."""
    from ..errors import BadArgument

    if scheduler and backend != "dask":
        raise BadArgument("--scheduler needs --backend dask")


def tracking_target(spec):
    """The MLflow target this invocation asks for (None: untracked), without importing mlflow."""
    from ..tracking import resolve

    meta = click.get_current_context().meta
    target = resolve(spec, meta.get("aepipe.mlflow"))
    if target is None and meta.get("aepipe.mlflow_required"):
        raise click.UsageError("--mlflow-required needs a tracking URI: --mlflow URI, [tracking] uri in the "
                               "pipeline, or $MLFLOW_TRACKING_URI")
    return target


def start_tracking(spec):
    """A connected tracker, or None (untracked). Runs before anything trains, so
    ``--mlflow-required`` fails fast; otherwise an unreachable backend is one warning."""
    target = tracking_target(spec)
    if target is None:
        return None
    from ..tracking import make_tracker

    params = click.get_current_context().params
    tracker = make_tracker(target, pipeline_file=params.get("pipeline"), warn=lambda m: click.echo(m, err=True))
    if click.get_current_context().meta.get("aepipe.mlflow_required"):
        tracker.connect()  # TrackingUnavailable: exit 1, one line
    elif not tracker.try_connect():
        return None
    return tracker


def make_runner(spec, store, opts, wait: bool = True, rebuild=(), observer=None):
    from ..pipeline.runner import Runner

    # Keras verbosity: a progress bar on a TTY, one line per epoch otherwise
    verbose = 0 if opts["quiet"] else (1 if sys.stderr.isatty() else 2)
    tensorboard = click.get_current_context().meta.get("aepipe.tensorboard", False)
    return Runner(spec, store, verbose=verbose, log=opts["log"], wait=wait, tensorboard=tensorboard,
                  rebuild=rebuild, observer=observer)


def clustering_summary(c: dict | None) -> list[str]:
    """One line per clustering the run scored: its test accuracy and NMI (through predict)."""
    from ..analysis.cluster_report import NAMES

    if not c:
        return []
    if not c.get("scores"):
        return [f"clusters (no labels): silhouette {c['unlabeled']['silhouette']}, sizes {c['unlabeled']['sizes']}"]
    return [f"{NAMES.get(name, name)}: test accuracy {100 * s['test']['accuracy']:.2f} %, NMI {s['test']['nmi']:.3f}"
            for name, s in c["scores"].items()]


def print_result(result, opts):
    from ..analysis.report import reconstruction_summary

    if opts["json"]:
        click.echo(json.dumps(result.as_dict(), indent=None, sort_keys=False))
        return
    for s in result.stages:
        click.echo(f"{s.name:<15} {s.status:<8} {s.seconds:8.1f}s  {s.key[:16]}")
    m = result.metrics
    if "test_accuracy" in m:
        click.echo(f"test accuracy: {100 * m['test_accuracy']:.2f} %")
    if "baseline_test_accuracy" in m:
        c = m.get("comparison") or {}
        verdict = f" (this pair: McNemar p = {c['p_value']:.3g}, {c['verdict']})" if c else ""
        click.echo(f"random-init baseline: {100 * m['baseline_test_accuracy']:.2f} %{verdict}")
    if "plain_baseline_test_accuracy" in m:
        c = m.get("plain_comparison") or {}
        verdict = f" (this pair, with unlabeled inputs: McNemar p = {c['p_value']:.3g}, {c['verdict']})" if c else ""
        click.echo(f"random init, labeled rows alone: {100 * m['plain_baseline_test_accuracy']:.2f} %{verdict}")
    for name, finding in ((m.get("replicates") or {}).items()):
        if name in ("classifier", "unroll"):
            what = "classifier" if name == "classifier" else "unrolled autoencoder"
            seeds = finding["seeds"]
            over = f"one pair (seed {seeds[0]})" if len(seeds) == 1 else f"over seeds {seeds[0]}-{seeds[-1]}"
            click.echo(f"{what}, {over}: {finding['sentence']}")
    if line := reconstruction_summary(m):
        click.echo(line)
    for line in clustering_summary(m.get("clustering")):
        click.echo(line)
    if result.run_dir:
        click.echo(f"run: {result.run_dir}")
