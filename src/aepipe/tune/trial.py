"""One trial: the pipeline with sampled fields, run to the end of fine-tuning.

A trial is a ``finetune``-phase run (pretrain, head, finetune; never evaluate)
against the shared artifacts directory, so stages two trials share are built
once, and the objective is read from the finetune stage's validation history;
with ``val_reconstruction_loss`` it is a ``pretrain``-phase run scored by the
deepest reconstruction that phase trains: the ``unroll`` stage's validation loss
when the pipeline unrolls (``unroll.epochs > 0``; the phase's last stage), else
the top pretrain stage's. Test data never choose: evaluate runs once, for the
best trial, after the study.
"""

from __future__ import annotations

import json
import os
import time
from typing import Sequence

from .. import config
from ..analysis.report import pct
from ..engine import layout
from ..pipeline.observer import RunObserver
from ..pipeline.sweep import variant_name
from .space import Param, overrides_for

# metric -> (phase a trial runs, the history key of its objective stage, direction)
METRICS = {"val_accuracy": ("finetune", "val_accuracy", "maximize"),
           "val_loss": ("finetune", "val_loss", "minimize"),
           # autoencoders only: the unrolled autoencoder's reconstruction of the input when the
           # pipeline unrolls, else the top layer's of its own input (compare those trials only
           # where the lower layers agree; a different layer below changes what the top reconstructs)
           "val_reconstruction_loss": ("pretrain", "val_loss", "minimize")}


def objective_stage(stages) -> str:
    """The stage whose history scores a trial: the last one its phase runs
    (``finetune``; for ``pretrain``, ``unroll`` when the pipeline unrolls, which
    comes after every pretrain stage, else the top pretrain stage)."""
    return stages[-1].name


class PruningObserver(RunObserver):
    """Reports the objective stage's per-epoch validation metric (``key`` of its
    logs) to the trial, and ends the stage (raising ``TrialPruned`` inside ``fit``)
    when the pruner says so. Records what every stage did, for the trial's row."""

    def __init__(self, trial, metric: str, stage: str = "finetune"):
        self.trial, self.metric, self.stage = trial, metric, stage
        self.stages: list[dict] = []

    def run_started(self, spec, stages):
        self.stage = objective_stage(stages)

    def epoch_end(self, stage_name, epoch, logs):
        import optuna

        if stage_name != self.stage or self.metric not in logs:
            return
        self.trial.report(float(logs[self.metric]), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.metric} {logs[self.metric]:.4f} after epoch {epoch + 1}")

    def stage_started(self, plan):
        self._t0 = time.perf_counter()
        self._plan = plan

    def stage_finished(self, result, stage):
        self.stages.append({"name": result.name, "key": result.key, "status": result.status,
                            "seconds": round(result.seconds, 3)})

    def unfinished(self, status: str) -> None:
        """The stage that was running when the trial ended (pruned or interrupted)."""
        self.stages.append({"name": self._plan.name, "key": self._plan.key, "status": status,
                            "seconds": round(time.perf_counter() - self._t0, 3)})


def format_value(value, metric: str) -> str:
    return pct(value) if metric == "val_accuracy" else f"{value:.4f}"


def trial_spec(pipeline, overrides: Sequence[str], base_name: str, params: dict):
    """The resolved spec of a trial with ``params``, and its ``--set`` items."""
    sets = overrides_for(params)
    point = dict(s.split("=", 1) for s in sets)
    name = variant_name(base_name, point)
    return config.load(pipeline, [*overrides, *sets, f"name={name}"]), sets


def final_metric(store, kind: str, key: str, metric: str) -> tuple[float, list[float]]:
    """A stage's last-epoch ``metric`` (its saved weights are that epoch's) and its history."""
    history = json.loads(store.load(kind, key).file(layout.HISTORY).read_text())
    values = history.get(metric) or []
    if not values:
        raise RuntimeError(f"the {kind} stage {key[:16]} recorded no {metric}")
    return values[-1], values


class Objective:
    """Picklable settings of a study's trials; called by ``study.optimize``."""

    def __init__(self, pipeline, overrides: Sequence[str], space: dict[str, Param], artifacts: str,
                 base_name: str, metric: str, log):
        self.pipeline, self.overrides, self.space = pipeline, list(overrides), space
        self.artifacts, self.base_name, self.metric, self.log = artifacts, base_name, metric, log

    def __call__(self, trial) -> float:
        import optuna

        from ..engine.remote import open_store
        from ..pipeline.runner import Runner

        params = {k: p.suggest(trial) for k, p in self.space.items()}
        spec, sets = trial_spec(self.pipeline, self.overrides, self.base_name, params)
        trial.set_user_attr("variant", spec.name)
        trial.set_user_attr("pid", os.getpid())
        phase, key, _ = METRICS[self.metric]
        observer = PruningObserver(trial, key)
        store = open_store(self.artifacts)
        t0 = time.perf_counter()
        try:
            runner = Runner(spec, store, observer=observer)
            result = runner.run(phase)
        except optuna.TrialPruned:
            observer.unfinished("pruned")
            self._record(trial, observer, t0, "pruned")
            raise
        except KeyboardInterrupt:
            observer.unfinished("interrupted")
            trial.set_user_attr("interrupted", True)  # a rerun retries it with the same params
            self._record(trial, observer, t0, "interrupted")
            raise
        scored = next(p for p in runner.plan() if p.name == result.stages[-1].name)
        value, history = final_metric(store, scored.kind, scored.key, key)
        reported = trial.storage.get_trial(trial._trial_id).intermediate_values
        for epoch, v in enumerate(history):  # a cached or resumed finetune: its epochs, for the pruner
            if epoch not in reported:
                trial.report(v, epoch)
        self._record(trial, observer, t0, f"{self.metric} {format_value(value, self.metric)}")
        return value

    def _record(self, trial, observer, t0, outcome: str) -> None:
        trial.set_user_attr("stages", observer.stages)
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
        trained = sum(s["status"] in ("trained", "resumed") for s in observer.stages)
        cached = sum(s["status"] == "cached" for s in observer.stages)
        point = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        self.log(f"tune: trial {trial.number} ({point}): {outcome}, "
                 f"{trained} stages trained, {cached} cached, "
                 f"{time.perf_counter() - t0:.1f} s")
