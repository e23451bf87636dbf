"""Plan the stage graph, skip what is cached, build the rest, write the run.

TensorFlow is imported only when a stage actually has to be built, so a
fully cached run, ``status`` and ``--help`` never pay for it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import data as data_mod
from . import distribution
from .plan import StagePlan, as_record, diff_params, plan, select
from .shapes import check_shapes
from .spec import PipelineSpec
from .store import StageWriteError, Store, atomic_write_json, atomic_write_text


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
                 tensorboard: bool = False):
        self.spec, self.store, self.verbose, self.log, self.wait = spec, store, verbose, log, wait
        self.tensorboard = tensorboard  # TensorBoard logs of every trained stage under the run dir
        self._run_dir: Path | None = None
        # data: an in-memory data.Dataset (the estimators' arrays) instead of spec.data's source
        self._data = data
        self._fingerprint = None if data is None else data.fingerprint

    # data is loaded once, and only if a fingerprint or a stage needs it
    @property
    def fingerprint_file(self) -> Path:
        return self.store.root / "fingerprints.json"

    @property
    def data(self):
        if self._data is None:
            self._data = data_mod.load(self.spec.data)
            if self._fingerprint is not None and self._fingerprint != self._data.fingerprint:
                raise RuntimeError("data changed while running; rerun")
            data_mod.remember_fingerprint(self.spec.data, self.fingerprint_file, self._data.fingerprint)
        return self._data

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = (data_mod.cached_fingerprint(self.spec.data, self.fingerprint_file)
                                 or self.data.fingerprint)
        return self._fingerprint

    def plan(self) -> list[StagePlan]:
        return plan(self.spec, self.fingerprint)

    # ------------------------------------------------------------ status

    def status(self) -> list[dict]:
        """Each stage: cached / missing / stale (why) / corrupt (which file) / partial."""
        stages = self.plan()
        record = self._read_record()
        rows, cached = [], {}
        for s in stages:
            st, stage = self.store.lookup(s.kind, s.key)  # verified once, manifest included
            status, reason = st.status, st.reason
            if status == "missing" and s.name in record and record[s.name]["key"] != s.key:
                status, reason = "stale", self._stale_reason(s, record)
            if stage is not None:
                cached[s.name] = stage
                changed = _changed_upstream(stage, cached)
                if changed:
                    status, reason = "stale", f"built from an earlier {', '.join(changed)}; a run rebuilds it"
            rows.append({"name": s.name, "key": s.key[:16], "status": status, "reason": reason})
        return rows

    def _stale_reason(self, s: StagePlan, record: dict) -> str:
        old = record[s.name]
        changed = diff_params(old["params"], s.params)
        if changed:
            return "; ".join(changed)
        ups = [u for u in s.upstream if u in record and record[u]["key"] != self._key_of(u)]
        if ups:
            return f"upstream {', '.join(ups)} changed"
        return "data changed"

    def _key_of(self, name: str) -> str:
        return next(s.key for s in self.plan() if s.name == name)

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
        self.store.ensure()
        self._record_path().parent.mkdir(parents=True, exist_ok=True)
        record = self._read_record()
        record.update(as_record(stages))
        atomic_write_json(self._record_path(), record)
        result = RunResult(self.spec.name)
        published = {}
        self._run_dir = self._new_run_dir() if self.tensorboard else None
        for n, s in enumerate(stages, 1):
            res, stage = self._ensure_stage(s, published, f"[{n}/{len(stages)}]")
            published[s.name] = stage
            result.stages.append(res)
        if phase == "evaluate":
            result.metrics = self._collect_metrics(stages, published)
            result.run_dir = str(self._write_run(result, published))
        elif self._run_dir is not None:
            result.run_dir = str(self._run_dir)
        return result

    def _ensure_stage(self, s: StagePlan, published: dict, counter: str):
        t0 = time.perf_counter()
        st, stage = self.store.lookup(s.kind, s.key)
        if st.status == "cached":
            if not _changed_upstream(stage, published):
                self.log(f"{counter} {s.title}: cached ({self.store.name(s.kind, s.key)})")
                return StageResult(s.name, s.key, "cached", time.perf_counter() - t0, str(stage.path)), stage
        name = self.store.name(s.kind, s.key)
        with self.store.stage_lock(name, wait=self.wait, log=self.log):
            st, stage = self.store.lookup(s.kind, s.key)  # another process may have built it meanwhile
            if st.status == "cached":
                changed = _changed_upstream(stage, published)
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
            stage = self._build(s, published)
        seconds = time.perf_counter() - t0
        return StageResult(s.name, s.key, status, seconds, str(stage.path)), stage

    def _build(self, s: StagePlan, published: dict):
        from . import stages as stage_fns  # imports TensorFlow

        data = self.data
        check_shapes(self.spec, data.input_shape)  # a layer that cannot take its input leaves no stage dir
        workdir = self.store.begin(s.kind, s.key)
        ctx = stage_fns.StageContext(self.spec, data, {u: published[u] for u in s.upstream}, workdir,
                                     self.verbose, self.log)
        if self._run_dir is not None:
            ctx.tensorboard = self._run_dir / "tensorboard" / s.name
        t0 = time.perf_counter()
        strategy = self.spec.distribution.strategy
        try:
            with distribution.scope(strategy):  # build, fit and encode on every device
                extra = stage_fns.RUNNERS[s.kind](s, ctx)
            if strategy != "none":
                extra["distribution"] = distribution.describe(strategy)
            manifest = {"name": s.name, "params": s.params, "upstream": {u: published[u].manifest["key"]
                                                                            for u in s.upstream},
                        "upstream_digests": {u: published[u].digest for u in s.upstream},
                        "data": self.fingerprint, "seconds": time.perf_counter() - t0, **extra}
            return self.store.publish(s.kind, s.key, manifest)
        except BaseException as e:
            self.store.abandon(s.kind, s.key)  # keeps it only if a checkpoint can resume it
            if isinstance(e, OSError):  # disk full, permission denied, ...
                raise StageWriteError(self.store.name(s.kind, s.key), e) from None
            raise

    def _collect_metrics(self, stages, published) -> dict:
        ev = published["evaluate"].manifest.get("metrics", {})
        metrics = {k: v for k, v in ev.items()}
        metrics["reconstruction_mse"] = {
            s.name: published[s.name].manifest.get("metrics", {}).get("reconstruction_mse")
            for s in stages if s.kind == "pretrain"}
        metrics["stages"] = {s.name: round(published[s.name].manifest.get("seconds", 0.0), 3) for s in stages}
        return metrics

    def _new_run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        (self.store.runs / self.spec.name).mkdir(parents=True, exist_ok=True)
        for n in range(1000):  # mkdir is the claim: two runs in the same second get two dirs
            run_dir = self.store.runs / self.spec.name / (f"{stamp}-{n}" if n else stamp)
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
        raise FileExistsError(f"too many runs of {self.spec.name} at {stamp}")

    def _write_run(self, result: RunResult, published: dict) -> Path:
        """spec, metrics, run record, PNGs and report.md; drawn from the stage
        files alone, so a fully cached rerun writes a complete run dir without TensorFlow."""
        from .plots import write_run_plots
        from .report import render_report

        run_dir = self._run_dir or self._new_run_dir()
        result.run_dir = str(run_dir)
        atomic_write_json(run_dir / "spec.json", self.spec.to_dict())
        atomic_write_json(run_dir / "metrics.json", result.metrics)
        atomic_write_json(run_dir / "run.json", result.as_dict())
        plots = write_run_plots(run_dir, published, result.metrics)
        atomic_write_text(run_dir / "report.md", render_report(result, self.spec, plots))
        return run_dir


def _changed_upstream(stage, published: dict) -> list[str]:
    """Upstream stages whose files differ from those ``stage`` was built from
    (a corrupt upstream rebuilt on another machine or library version)."""
    recorded = stage.manifest.get("upstream_digests") or {}
    return [u for u, digest in recorded.items() if u in published and published[u].digest != digest]
