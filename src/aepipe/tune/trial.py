"""One trial: the pipeline with sampled fields, run to the end of fine-tuning.

A trial is a ``finetune``-phase run (pretrain, head, finetune; never evaluate)
against the shared artifacts directory, so stages two trials share are built
once, and the objective is read from the finetune stage's validation history.
Test data are never scored for a choice: evaluate runs once, for the best trial,
after the study.
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

METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}
OBJECTIVE_STAGE = "finetune"


class PruningObserver(RunObserver):
    """Reports the finetune's per-epoch validation metric to the trial, and ends
    the stage (raising ``TrialPruned`` inside ``fit``, its checkpoint kept) when
    the pruner says so. Records what every stage did, for the trial's row."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric
        self.stages: list[dict] = []

    def epoch_end(self, stage_name, epoch, logs):
        import optuna

        if stage_name != OBJECTIVE_STAGE or self.metric not in logs:
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


def trial_spec(pipeline, overrides: Sequence[str], base_name: str, params: dict):
    """The resolved spec of a trial with ``params``, and its ``--set`` items."""
    sets = overrides_for(params)
    point = dict(s.split("=", 1) for s in sets)
    name = variant_name(base_name, point)
    return config.load(pipeline, [*overrides, *sets, f"name={name}"]), sets


def final_metric(store, key: str, metric: str) -> tuple[float, list[float]]:
    """The finetune stage's last-epoch ``metric`` (its saved weights are that epoch's) and its history."""
    history = json.loads(store.load(OBJECTIVE_STAGE, key).file(layout.HISTORY).read_text())
    values = history.get(metric) or []
    if not values:
        raise RuntimeError(f"the finetune stage {key[:16]} recorded no {metric}")
    return values[-1], values


class Objective:
    """Picklable settings of a study's trials; called by ``study.optimize``."""

    def __init__(self, pipeline, overrides: Sequence[str], space: dict[str, Param], artifacts: str,
                 base_name: str, metric: str, log):
        self.pipeline, self.overrides, self.space = pipeline, list(overrides), space
        self.artifacts, self.base_name, self.metric, self.log = artifacts, base_name, metric, log

    def __call__(self, trial) -> float:
        import optuna

        from ..engine.store import Store
        from ..pipeline.runner import Runner

        params = {k: p.suggest(trial) for k, p in self.space.items()}
        spec, sets = trial_spec(self.pipeline, self.overrides, self.base_name, params)
        trial.set_user_attr("variant", spec.name)
        trial.set_user_attr("pid", os.getpid())
        observer = PruningObserver(trial, self.metric)
        store = Store(self.artifacts)
        t0 = time.perf_counter()
        try:
            result = Runner(spec, store, observer=observer).run("finetune")
        except optuna.TrialPruned:
            observer.unfinished("pruned")
            self._record(trial, observer, t0, "pruned")
            raise
        except KeyboardInterrupt:
            observer.unfinished("interrupted")
            trial.set_user_attr("interrupted", True)  # a rerun retries it with the same params
            self._record(trial, observer, t0, "interrupted")
            raise
        finetune = next(s for s in result.stages if s.name == OBJECTIVE_STAGE)
        value, history = final_metric(store, finetune.key, self.metric)
        reported = trial.storage.get_trial(trial._trial_id).intermediate_values
        for epoch, v in enumerate(history):  # a cached or resumed finetune: its epochs, for the pruner
            if epoch not in reported:
                trial.report(v, epoch)
        self._record(trial, observer, t0, f"{self.metric} " + (pct(value) if self.metric == "val_accuracy"
                                                                 else f"{value:.4f}"))
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
