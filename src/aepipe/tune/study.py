"""A study: workers running trials against one Optuna storage and one artifacts directory.

The study lives in an RDB storage (by default SQLite under
``<artifacts>/tune/<study>.db``), so the same command after a kill or Ctrl-C
continues it: ``--trials N`` means N finished (complete or pruned) trials in
total. A trial left running by a dead process stops sending heartbeats and is
retried with the same params (its stages resume from their checkpoints); one
ended by Ctrl-C is marked failed and retried by the next start.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

from .. import config
from ..config.redact import redact
from ..engine.remote import is_remote, open_store
from ..errors import AepipeError, SpecError, TrainingDiverged
from ..pipeline.parallel import check_backend, on_dask
from .space import Param, check_space, parse_space
from .trial import METRICS, Objective, trial_spec

PRUNERS = ("median", "none")
FINISHED = ("COMPLETE", "PRUNED")


def study_name(base, space: dict[str, Param], metric: str) -> str:
    """Stable per (resolved pipeline, space, metric): the same command finds the same study."""
    text = config.canonical_json(base) + repr([(k, p.describe()) for k, p in space.items()]) + metric
    return f"{base.name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def storage(url: str, heartbeat: int | None):
    """RDB storage with a long SQLite lock timeout (several processes write it),
    and heartbeats so that a killed worker's trial is failed and retried."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if not heartbeat:
            return RDBStorage(url, engine_kwargs=kwargs)
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                              inherit_intermediate_values=True))


def pruner(kind: str, epochs: int):
    """median: stop a trial whose objective stage's validation metric is worse than the
    median of earlier trials at the same epoch, after 4 trials and a quarter of its epochs."""
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 4))


def _states(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def retry_interrupted(study) -> list[int]:
    """Trials a Ctrl-C marked failed, not yet retried: queued again with their params
    (and reported epochs), as Optuna's heartbeat retry does for killed ones."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    out = []
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)(study, t)
            out.append(t.number)
    return out


def work(settings: dict, worker: int) -> int:
    """One worker: run trials until the study holds ``trials`` finished ones. Runs in
    a loky or dask process (or in this one, for one job); returns trials run here."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = settings
    store_ = storage(s["storage"], s["heartbeat"])
    n_before = len(optuna.load_study(study_name=s["study"], storage=store_).trials)
    # a restarted worker must not replay the sampler's first draws: the seed moves with the study
    sampler = optuna.samplers.TPESampler(seed=s["seed"] + 7919 * worker + 104729 * n_before)
    study = optuna.load_study(study_name=s["study"], storage=store_, sampler=sampler,
                              pruner=pruner(s["pruner"], s["epochs"]))
    objective = Objective(s["pipeline"], s["overrides"], s["space"], s["artifacts"], s["base_name"],
                          s["metric"], _logger(s["quiet"]))
    ran = 0
    while True:
        states = _states(study)
        finished = sum(states.get(k, 0) for k in FINISHED)
        if finished >= s["trials"]:
            return ran
        if states.get("FAIL", 0) - _retried_failures(study) >= max(3, s["trials"]):
            raise AepipeError(f"study {s['study']}: {states['FAIL']} trials failed; see "
                              f"`optuna trials --study-name {s['study']} --storage {s['storage']}`")
        if finished + states.get("RUNNING", 0) >= s["trials"] and not states.get("WAITING"):
            if not s["heartbeat"]:  # without heartbeats a dead process's trial cannot be told from a live one
                return ran
            # the last trials run elsewhere; if their process died, the heartbeat check retries them
            time.sleep(min(5, s["heartbeat"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optuna.storages.fail_stale_trials(study)
            continue
        study.optimize(objective, n_trials=1, catch=(TrainingDiverged,))
        ran += 1


def _retried_failures(study) -> int:
    return len({n for t in study.get_trials(deepcopy=False) for n in t.system_attrs.get("retry_history", [])})


def _logger(quiet: bool) -> Callable[[str], None]:
    import sys

    return (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))


def run_study(pipeline: Path | None, overrides: Sequence[str], items: Sequence[str], artifacts: Path, *,
              trials: int, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
              metric: str = "val_accuracy", prune: str = "median", seed: int = 0, name: str | None = None,
              storage_url: str | None = None, heartbeat: int | None = 10, quiet: bool = False,
              log: Callable[[str], None] = lambda m: None):
    """Check the space, create or continue the study, run its workers; returns the study.
    Nothing is written before the space and the pipeline are checked."""
    if metric not in METRICS:
        raise SpecError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if prune not in PRUNERS:
        raise SpecError(f"--pruner must be one of {', '.join(PRUNERS)}, got {prune!r}")
    if name is not None and not config.spec.is_path_component(name):
        raise SpecError(f"--study {name!r}: must be {config.spec.NAME_RULE}")
    check_backend(backend)
    base, space = check_space(pipeline, overrides, parse_space(items))
    try:
        import optuna
    except ImportError:
        raise AepipeError("aepipe tune needs Optuna: pip install 'aepipe[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    local = open_store(artifacts).root.resolve()  # a remote store: its cache on this machine
    artifacts = artifacts if is_remote(artifacts) else str(local)
    name = name or study_name(base, space, metric)
    if storage_url is None:
        (local / "tune").mkdir(parents=True, exist_ok=True)
        storage_url = f"sqlite:///{local / 'tune' / name}.db"
    direction = METRICS[metric][2]
    study = optuna.create_study(study_name=name, storage=storage(storage_url, heartbeat),
                                direction=direction, load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise SpecError(f"study {name!r} {study.direction.name.lower()}s its objective; --metric {metric} "
                        f"would {direction} it (choose another --study)")
    retried = retry_interrupted(study)
    states = _states(study)
    log(f"tune: study {name} ({redact(storage_url)}): {sum(states.get(k, 0) for k in FINISHED)} of {trials} trials "
        f"finished" + (f", retrying interrupted trial(s) {', '.join(map(str, retried))}" if retried else "")
        + f"; backend {backend}, " + (f"scheduler {scheduler}" if scheduler else f"{jobs} jobs"))
    settings = {"pipeline": None if pipeline is None else str(Path(pipeline).resolve()),
                "overrides": list(overrides), "space": space, "artifacts": artifacts, "base_name": base.name,
                "metric": metric, "pruner": prune, "seed": seed, "study": name, "storage": storage_url,
                "heartbeat": heartbeat, "trials": trials, "quiet": quiet,
                "epochs": base.layers[-1].epochs if METRICS[metric][0] == "pretrain" else base.finetune.epochs}
    _fan_out(settings, jobs, backend, scheduler)
    return optuna.load_study(study_name=name, storage=storage(storage_url, None)), base, space, redact(storage_url)


def _fan_out(settings: dict, jobs: int, backend: str, scheduler: str | None) -> None:
    from joblib import Parallel, delayed

    tasks = [delayed(work)(settings, i) for i in range(jobs)]
    if backend == "dask":
        on_dask(tasks, jobs, scheduler, list)
    else:
        Parallel(n_jobs=jobs, backend="loky")(tasks)


def best_trial(study):
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise AepipeError(f"study {study.study_name}: no trial completed (all pruned or failed)")
    return study.best_trial


def best_spec(pipeline, overrides, base, best):
    """The best trial's resolved spec and its ``--set`` items."""
    return trial_spec(pipeline, overrides, base.name, best.params)


def evaluate_best(pipeline, overrides, base, best, artifacts, log):
    """The one test-set score of the study: the best trial, after every trial ended."""
    from ..pipeline.runner import Runner

    spec, _ = best_spec(pipeline, overrides, base, best)
    return Runner(spec, open_store(artifacts), log=log).run("evaluate")
