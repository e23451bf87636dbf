"""Plan the stage graph, skip what is cached, build the rest, write the run.

TensorFlow is imported only when a stage actually has to be built, so a
fully cached run, ``status`` and ``--help`` never pay for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..config.parse import resolve_layer0
from ..config.schedules import warn_unmet
from ..config.shapes import check_shapes
from ..config.spec import PipelineSpec
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan, as_record, downstream, plan, select
from ..engine.store import StageWriteError, Store
from ..errors import SpecError, TrainingDiverged
from . import rundir
from .inputs import PipelineData, check_data_dependent
from .observer import RunObserver
from .status import changed_upstream, stage_rows


@dataclass
class StageResult:
    name: str
    key: str
    status: str  # trained | cached | resumed
    seconds: float
    path: str

    def as_dict(self):
        return {"name": self.name, "key": self.key, "status": self.status,
                "seconds": round(self.seconds, 3), "path": self.path}


@dataclass
class RunResult:
    pipeline: str
    stages: list[StageResult] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    run_dir: str | None = None

    def as_dict(self):
        return {"pipeline": self.pipeline, "run_dir": self.run_dir,
                "stages": [s.as_dict() for s in self.stages], "metrics": self.metrics}


class Runner:
    """One pipeline against one artifacts directory."""

    def __init__(self, spec: PipelineSpec, store: Store, *, verbose: int = 0,
                 log: Callable[[str], None] = lambda m: None, wait: bool = True, data=None,
                 tensorboard: bool = False, rebuild: Iterable[str] = (), checkpoints: bool = True,
                 observer: RunObserver | None = None):
        self._spec, self.store, self.verbose, self.log, self.wait = spec, store, verbose, log, wait
        self.tensorboard = tensorboard  # TensorBoard logs of every trained stage under the run dir
        self.rebuild = tuple(rebuild)  # stage names (or "all") to retrain, with what depends on them
        self.checkpoints = checkpoints  # off: nothing to resume (a temporary store); saves the per-epoch writes
        self.observer = observer or RunObserver()  # trackers and searches watching this run
        # data: an in-memory data.Dataset (the estimators' arrays) instead of spec.data's source
        self.inputs = PipelineData(spec.data, store.root / "fingerprints.json", data)
        self._run_dir: Path | None = None

    @property
    def spec(self) -> PipelineSpec:
        """The pipeline as it runs: layer 0's "auto" decoder and loss settled by the data
        (``config.resolve_layer0``), whose range is read only when one of them was "auto"."""
        self._spec = resolve_layer0(self._spec, lambda: self.inputs.in_unit_range)
        return self._spec

    @property
    def data(self):
        return self.inputs.dataset

    @property
    def fingerprint(self):
        return self.inputs.fingerprint

    def plan(self) -> list[StagePlan]:
        return plan(self.spec, self.fingerprint)

    def status(self) -> list[dict]:
        """Each stage: cached / missing / stale (why) / corrupt (which file) / partial."""
        return stage_rows(self.plan(), self.store, self._read_record())

    # ------------------------------------------------------------ the pipeline's record

    def _record_path(self) -> Path:
        return self.store.root / "pipelines" / f"{self.spec.name}.json"

    def _read_record(self) -> dict:
        try:
            return json.loads(self._record_path().read_text())
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------ run

    def run(self, phase: str = "evaluate") -> RunResult:
        stages = select(self.plan(), phase)
        forced = self._forced(stages)
        labels = self.spec.data.labels is not None and phase != "pretrain"
        tsne = any(s.kind == "tsne" and not self.store.path(s.kind, s.key).is_dir() for s in stages)
        if labels or tsne:  # before anything trains or is recorded
            check_data_dependent(self.spec, self.data, labels, tsne)
        if any(s.kind == "finetune" for s in stages):
            warn_unmet(self.spec)  # a pseudo-label ramp the budget never reaches
        if not self.spec.data.labeled and phase in ("evaluate", "finetune"):
            self.log("data.labeled = false: no labels, so head, fine-tune and evaluate are skipped; "
                     "clusters are scored without labels (silhouette, sizes), t-SNE by trustworthiness")
        self.store.ensure()
        self._record_path().parent.mkdir(parents=True, exist_ok=True)
        record = self._read_record()
        record.update(as_record(stages))
        atomic_write_json(self._record_path(), record)
        result = RunResult(self.spec.name)
        published = {}
        self._run_dir = rundir.new_run_dir(self.store.runs, self.spec.name) if self.tensorboard else None
        self.observer.run_started(self.spec, stages)
        for n, s in enumerate(stages, 1):
            self.observer.stage_started(s)
            res, stage = self._ensure_stage(s, published, f"[{n}/{len(stages)}]", s.name in forced)
            published[s.name] = stage
            result.stages.append(res)
            self.observer.stage_finished(res, stage)
        if phase in ("evaluate", "cluster"):
            result.metrics = rundir.collect_metrics(stages, published, self.spec, self.data)
            run_dir = self._run_dir or rundir.new_run_dir(self.store.runs, self.spec.name)
            rundir.write_run(run_dir, result, self.spec, published)
            self.store.share(run_dir)  # a remote store: the run is listed on every machine
        elif self._run_dir is not None:
            result.run_dir = str(self._run_dir)
        self.observer.run_finished(result)
        return result

    def _forced(self, stages: list[StagePlan]) -> set[str]:
        """``--rebuild``: the named stages and everything downstream of them."""
        if not self.rebuild:
            return set()
        names = {s.name for s in stages}
        if "all" in self.rebuild:
            return names
        unknown = [r for r in self.rebuild if r not in names]
        if unknown:
            raise SpecError(f"--rebuild {unknown[0]!r}: this run has no such stage; its stages are "
                            f"{', '.join(s.name for s in stages)} (or all)")
        return downstream(stages, set(self.rebuild))

    def _ensure_stage(self, s: StagePlan, published: dict, counter: str, force: bool):
        """Cached, resumed or trained; ``published`` is read under the names of the
        stage's own replicate, so its files never depend on which replicate built it."""
        t0 = time.perf_counter()
        local = s.local()
        published = {lu: published[u] for lu, u in zip(local.upstream, s.upstream)}
        name = self.store.name(s.kind, s.key)
        if not force:
            st, stage = self.store.lookup(s.kind, s.key)
            if st.status == "cached" and not changed_upstream(stage, published):
                self.log(f"{counter} {s.title}: cached ({name})")
                return StageResult(s.name, s.key, "cached", time.perf_counter() - t0, str(stage.path)), stage
        with self.store.stage_lock(name, wait=self.wait, log=self.log):
            if force:
                dest = self.store.rebuild(s.kind, s.key)
                self.log(f"{counter} {s.title}: rebuilding" + (f" (the old copy is in {dest})" if dest else ""))
            st, stage = self.store.lookup(s.kind, s.key)  # another process may have built it meanwhile
            if st.status == "cached":
                changed = changed_upstream(stage, published)
                if not changed:
                    self.log(f"{counter} {s.title}: cached (built by another run)")
                    return StageResult(s.name, s.key, "cached", time.perf_counter() - t0, str(stage.path)), stage
                dest = self.store.quarantine(stage.path)
                self.log(f"{counter} {s.title}: built from an earlier {', '.join(changed)}, which was rebuilt "
                         f"differently; moved to {dest}, rebuilding")
            if st.status == "corrupt":
                dest = self.store.quarantine(self.store.path(s.kind, s.key))
                self.log(f"{counter} {s.title}: corrupt ({st.reason}); moved to {dest}, rebuilding")
            status = "resumed" if st.status == "partial" else "trained"
            self.log(f"{counter} {s.title}")
            stage = self._build(s, local, published, f"{counter} {s.name}")
        return StageResult(s.name, s.key, status, time.perf_counter() - t0, str(stage.path)), stage

    def _build(self, s: StagePlan, local: StagePlan, inputs: dict, label: str):
        """Build stage ``s`` as ``local``, its replicate's own view (names, spec), from ``inputs``."""
        from .. import stages as stage_fns  # imports TensorFlow
        from ..nn import distribution

        data, spec = self.data, self.spec.replicate(s.replicate)
        check_shapes(spec, data.input_shape)  # a layer that cannot take its input leaves no stage dir
        workdir = self.store.begin(s.kind, s.key)
        ctx = stage_fns.StageContext(spec, data, inputs, workdir,
                                     self.verbose, self.log, label=label, checkpoints=self.checkpoints,
                                     on_epoch=lambda epoch, logs: self.observer.epoch_end(s.name, epoch, logs))
        if self._run_dir is not None:
            ctx.tensorboard = self._run_dir / "tensorboard" / s.name
        t0 = time.perf_counter()
        strategy = self.spec.distribution.strategy
        try:
            with distribution.scope(strategy):  # build, fit and encode on every device
                extra = stage_fns.RUNNERS[s.kind](local, ctx)
            if strategy != "none":
                extra["distribution"] = distribution.describe(strategy)
            manifest = {"name": local.name, "params": s.params, "seed": s.seed,
                        "upstream": {u: stage.manifest["key"] for u, stage in inputs.items()},
                        "upstream_digests": {u: stage.digest for u, stage in inputs.items()},
                        "data": self.fingerprint._asdict(), "seconds": time.perf_counter() - t0, **extra}
            return self.store.publish(s.kind, s.key, manifest)
        except BaseException as e:
            self.store.abandon(s.kind, s.key)  # keeps it only if a checkpoint can resume it
            if isinstance(e, OSError):  # disk full, permission denied, ...
                raise StageWriteError(self.store.name(s.kind, s.key), e) from None
            if isinstance(e, TrainingDiverged) and e.stage is None:
                raise TrainingDiverged(e.epoch, e.loss, s.name) from None
            raise
