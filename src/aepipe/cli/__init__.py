"""The ``aepipe`` command line: a thin face over the runner.

Heavy imports (TensorFlow, scikit-learn) happen inside the commands that need
them, so ``aepipe --help`` and ``aepipe status`` start in a fraction of a second.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from ..config.redact import redact
from ..errors import AepipeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's import notices off stderr


# Every command lives in a module of this package, imported only when invoked
# (click's LazyGroup pattern). name -> "module:attribute".
LAZY_COMMANDS: dict[str, str] = {
    **{name: f"aepipe.cli.phases:{name}" for name in ("run", "pretrain", "finetune", "evaluate", "status")},
    "clean": "aepipe.cli.clean:clean",
    "report": "aepipe.cli.report:report",
    "runs": "aepipe.cli.runs:runs",
    "diff": "aepipe.cli.runs:diff",
    "tsne": "aepipe.cli.tsne:tsne",
    "cluster": "aepipe.cli.cluster:cluster",
    "sweep": "aepipe.cli.sweep:sweep",
    "tune": "aepipe.cli.tune:tune",
    "encode": "aepipe.cli.encode:encode",
    "export": "aepipe.cli.export:export",
    "data": "aepipe.cli.data:data",
}


class AepipeGroup(click.Group):
    """Lazy subcommands, and every failure as a one-line message with the design's exit codes."""

    def list_commands(self, ctx):
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            e.message = redact(e.message)  # a URI's credentials are never printed
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # the reader went away (`aepipe status | head -c 0`): silent, as other Unix tools are;
            # the Python docs' recipe, and 141 (128 + SIGPIPE) as a tool killed by SIGPIPE exits
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume", err=True)
            ctx.exit(130)
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            debug = ctx.meta.get("aepipe.debug")
            if debug:
                traceback.print_exc()
            if isinstance(e, OSError) and e.strerror:
                where = f": {e.filename}" if e.filename else ""
                raise AepipeError(redact(f"{e.strerror}{where}")) from None
            hint = "" if debug else " (rerun with --debug for the traceback)"
            raise AepipeError(redact(f"{type(e).__name__}: {e}{hint}")) from None


@click.group(cls=AepipeGroup, context_settings={"auto_envvar_prefix": "AEPIPE",
                                                "help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aepipe")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (for every command).")
@click.option("--debug", is_flag=True, help="Show tracebacks (for every command).")
@click.pass_context
def main(ctx, quiet, debug):
    """Greedy layer-wise autoencoder pretraining, as cached staged pipelines.

    Every stage (pretrain layer i, head, finetune, baseline, evaluate, tsne)
    is stored under ARTIFACTS by the hash of what it depends on; reruns skip
    what is cached and resume what was interrupted. Without PIPELINE, the
    built-in digits pipeline runs.
    """
    ctx.meta["aepipe.quiet"], ctx.meta["aepipe.debug"] = quiet, debug


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
