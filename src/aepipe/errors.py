"""One exception family, so the CLI turns every failure into a one-line message.

Exit codes follow click: 2 for a bad pipeline or bad usage, 1 for a failure
while running (bad data, I/O, training).
"""

from __future__ import annotations

import click


class AepipeError(click.ClickException):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1


class SpecError(AepipeError):
    """The pipeline spec or an override is invalid (exit code 2)."""

    exit_code = 2

    def __init__(self, message: str, where: str | None = None):
        # `where` is "file::dotted.key" inside the spec parser
        super().__init__(f"{where.replace('::', ': ')}: {message}" if where else message)


class BadArgument(AepipeError):
    """An argument or option value a command cannot use (exit code 2, one line:
    click's own BadParameter adds the usage text)."""

    exit_code = 2


class DataError(AepipeError):
    """The data set cannot be used as it is (exit code 1)."""

    def __init__(self, message: str, source: str | None = None):
        super().__init__(f"data {source!r}: {message}" if source else message)


class StoreError(AepipeError):
    """The artifact store cannot be read or written (exit code 1)."""


class LockBusy(AepipeError):
    """Another aepipe process holds the artifacts lock (exit code 1)."""


class TrainingDiverged(AepipeError):
    """The training loss became NaN or infinite (exit code 1); the stage is not published."""

    def __init__(self, epoch: int, loss: float, stage: str | None = None):
        self.epoch, self.loss, self.stage = epoch, loss, stage
        where = f"stage {stage}" if stage else "training"
        super().__init__(f"{where} diverged: the loss became {loss} in epoch {epoch}; nothing was published "
                         "(lower the learning rate, or check the data)")
