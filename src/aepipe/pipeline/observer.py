"""What a run tells the tools that watch it (experiment trackers, searches).

The runner calls these at fixed points; a watcher subclasses ``RunObserver``
and overrides what it needs. ``epoch_end`` is called only for stages that
train in this process (a cached stage has its history in ``history.json``),
from inside Keras' ``fit``: an exception raised there (a pruned search trial)
ends the stage the way Ctrl-C does, its checkpoint kept for a later resume.
"""

from __future__ import annotations

from typing import Protocol


class RunObserver:
    def run_started(self, spec, stages) -> None:
        """``stages``: the ``StagePlan`` list this run will ensure, in order."""

    def stage_started(self, plan) -> None:
        """Before a stage is looked up (cached) or built."""

    def epoch_end(self, stage_name: str, epoch: int, logs: dict) -> None:
        """After each epoch of a stage that trains now; ``epoch`` counts from 0."""

    def stage_finished(self, result, stage) -> None:
        """``result``: the ``StageResult`` (status trained / resumed / cached); ``stage``: the published stage."""

    def run_finished(self, result) -> None:
        """``result``: the ``RunResult``; its ``run_dir`` is set for a complete (evaluate) run."""


class ObserverFactory(Protocol):
    """Makes a worker process's own observer (a sweep's variant): picklable, e.g. a
    ``functools.partial`` of a tracker's maker; the runs above pass one down, so
    ``pipeline`` never imports what watches it. What it returns is entered as a
    context manager around the run when it is one (a tracker closes its run there)."""

    def __call__(self, *, pipeline_file: str | None, tags: dict) -> RunObserver: ...
