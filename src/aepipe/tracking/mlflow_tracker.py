"""Log a run to MLflow: one parent run per pipeline run, one nested run per stage.

Why an observer: the runner stays ignorant of MLflow; this class only listens.
Why MlflowClient and explicit run ids (not ``mlflow.start_run``): several
pipelines may run in one process, and the fluent API keeps one global active
run. Why every hook is guarded: tracking must never cost a stage. The first
MLflow failure after ``connect`` prints one warning and turns the tracker off
for the rest of the run (a dead server would otherwise make every later call
wait out its retries).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..config.flatten import as_text, flatten, numbers
from ..config.redact import redact
from ..engine.layout import HISTORY, RUN_FILES
from ..errors import AepipeError
from ..pipeline.observer import RunObserver
from .resolve import TrackingTarget

# The reachability probe answers in seconds: no retries, a short timeout.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# Later calls: a few quick retries (MLflow's own default waits out ~4 minutes per call),
# and no "View run at" lines on stdout (aepipe's stdout is results), unless the user set these.
RUN_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
BATCH_TAGS_PARAMS, BATCH_METRICS = 100, 1000  # MLflow's per-request limits for log_batch


class TrackingUnavailable(AepipeError):
    """The tracking backend cannot be used (exit 1 with --mlflow-required)."""

    def __init__(self, target: TrackingTarget, reason: str):
        super().__init__(redact(f"MLflow tracking at {target.uri!r} (from {target.source}) is unavailable: {reason}"))


def _reason(e: BaseException) -> str:
    """One short line for an MLflow failure (its messages run to paragraphs)."""
    text = str(e)
    if isinstance(e, ImportError):
        return "mlflow is not installed (pip install 'aepipe[mlflow]')"
    if "maintenance mode" in text:
        return ("MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE=true; "
                "use a database, e.g. sqlite:///mlflow.db")
    for needle, short in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                          ("Name or service not known", "unknown host"), ("Max retries exceeded", "no answer")):
        if needle in text:
            return short
    line = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _guarded(hook):
    """Run an observer hook; an exception turns tracking off with one warning."""

    @functools.wraps(hook)
    def wrapper(self, *args, **kw):
        if not self.active:
            return None
        try:
            return hook(self, *args, **kw)
        except Exception as e:  # noqa: BLE001 - tracking never breaks a run
            self._stop(f"{hook.__name__}: {_reason(e)}")
            return None

    return wrapper


class _Env:
    """Set environment variables for a block, then restore them."""

    def __init__(self, values: dict):
        self.values, self.saved = values, {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class MlflowTracker(RunObserver):
    """Parent run: the resolved spec as dotted params, the run's metrics.json
    (numbers only), report/metrics/spec/run JSON and the PNGs as artifacts, and
    tags (aepipe version, data fingerprint, git commit of the pipeline file).
    Nested run per stage: status (trained / resumed / cached), key, the
    per-epoch history (step = epoch, from ``history.json``, so a cached stage
    logs the same curves as a trained one) and its manifest's other metrics.

    Use as a context manager around ``Runner.run`` so a failed or interrupted
    run is marked FAILED / KILLED instead of staying RUNNING."""

    def __init__(self, target: TrackingTarget, *, pipeline_file: Path | None = None, tags: dict | None = None,
                 warn: Callable[[str], None] | None = None):
        self.target, self.pipeline_file, self.extra_tags = target, pipeline_file, dict(tags or {})
        show = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.warn = lambda msg: show(redact(msg))  # a URI's credentials are never printed
        self.client = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None  # the open parent run
        self.run_id: str | None = None  # the last parent run, open or finished
        self.children: dict[str, str] = {}  # stage name -> open nested run id
        self.active = True
        self._tagged_data = False

    # ------------------------------------------------------------ connecting

    def connect(self) -> "MlflowTracker":
        """Reach the backend and find or create the experiment; raises
        ``TrackingUnavailable`` (one line) instead of any MLflow error."""
        # MLflow 3's usage telemetry costs a training run seconds of CPU (measured: +4 s on a
        # 15 s digits run); aepipe turns it off for its own runs unless the user chose
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        try:
            import mlflow
        except ImportError as e:
            raise TrackingUnavailable(self.target, _reason(e)) from None
        for name in ("mlflow", "alembic"):  # table migrations and run URLs are not aepipe's progress
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            with _Env(PROBE_ENV):
                self.client = mlflow.MlflowClient(tracking_uri=self.target.uri)
                self.client.search_experiments(max_results=1)
                self.experiment_id = self._experiment()
        except Exception as e:  # noqa: BLE001 - any backend failure is one line
            self.client = None
            raise TrackingUnavailable(self.target, _reason(e)) from None
        for k, v in RUN_ENV.items():
            os.environ.setdefault(k, v)
        return self

    def try_connect(self) -> bool:
        """``connect``, or one warning and an untracked run."""
        try:
            self.connect()
            return True
        except TrackingUnavailable as e:
            self.active = False
            self.warn(f"warning: {e.message}; the run continues untracked")
            return False

    def _experiment(self) -> str:
        name = self.target.experiment
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                return self.client.create_experiment(name, artifact_location=self._artifact_location(name))
            except Exception:  # another process (a sweep worker) created it meanwhile
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage != "active":
            raise RuntimeError(f"experiment {name!r} is deleted; restore it or set tracking.experiment")
        return exp.experiment_id

    def _artifact_location(self, name: str) -> str | None:
        """Beside a SQLite database, not in whatever directory the run starts from
        (MLflow's default for a database backend is ``./mlruns``)."""
        uri = self.target.uri
        if not uri.startswith("sqlite:///"):
            return None  # a server decides; a file store keeps artifacts under its root
        db = Path(uri[len("sqlite:///"):]).resolve()
        return (db.parent / "mlruns" / re.sub(r"[^A-Za-z0-9._-]", "_", name)).as_uri()

    def describe(self) -> str:
        """Where the last parent run went, for the user (with its page on a server)."""
        where = f"run {self.run_id} in experiment {self.target.experiment!r} at {self.target.uri}"
        if self.target.uri.startswith(("http://", "https://")):
            where += f" ({self.target.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id})"
        return redact(where)

    def _stop(self, why: str) -> None:
        self.active = False
        self.warn(f"warning: MLflow tracking stopped ({why}); the run continues untracked")

    # ------------------------------------------------------------ as a context manager

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.active and self.client is not None:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            try:
                for run_id in [*self.children.values(), *([self.parent_id] if self.parent_id else [])]:
                    self.client.set_terminated(run_id, status)
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                pass
        return False

    # ------------------------------------------------------------ the runner's events

    @_guarded
    def run_started(self, spec, stages) -> None:
        if self.client is None and not self.try_connect():
            return
        from .. import __version__

        tags = {"aepipe.version": __version__, "aepipe.pipeline": spec.name, **self.extra_tags}
        tags.update(_git_tags(self.pipeline_file))
        run = self.client.create_run(self.experiment_id, run_name=spec.name, tags=tags)
        self.parent_id = self.run_id = run.info.run_id
        plain = spec.to_dict()
        plain.pop("tracking", None)  # where the run is logged is not a parameter of it (and may hold a token)
        self._log(self.parent_id, params={k: as_text(v) for k, v in flatten(plain).items()})

    @_guarded
    def stage_started(self, plan) -> None:
        if self.parent_id is None:
            return
        run = self.client.create_run(self.experiment_id, run_name=plan.name, tags={
            "mlflow.parentRunId": self.parent_id, "aepipe.stage": plan.name, "aepipe.kind": plan.kind,
            "aepipe.key": plan.key})
        self.children[plan.name] = run.info.run_id

    @_guarded
    def stage_finished(self, result, stage) -> None:
        run_id = self.children.get(result.name)
        if run_id is None:
            return
        manifest = stage.manifest
        now = int(time.time() * 1000)
        history = _history(Path(result.path))
        metrics = [(k, v, step) for k, values in history.items() for step, v in enumerate(values)]
        summary = numbers(manifest.get("metrics", {}))
        metrics += [(k, v, 0) for k, v in summary.items() if k not in history]  # a series already holds it
        metrics += [("seconds", float(result.seconds), 0), ("build_seconds", float(manifest.get("seconds", 0.0)), 0)]
        self._log(run_id, metrics=metrics, timestamp=now,
                  tags={"aepipe.status": result.status, "aepipe.stage_dir": result.path})
        if not self._tagged_data and isinstance(manifest.get("data"), dict):
            self._log(self.parent_id, tags={f"aepipe.data.{k}": str(v) for k, v in manifest["data"].items()})
            self._tagged_data = True
        self.client.set_terminated(run_id, "FINISHED")
        del self.children[result.name]

    @_guarded
    def run_finished(self, result) -> None:
        if self.parent_id is None:
            return
        statuses = [s.status for s in result.stages]
        tags = {"aepipe.stages.trained": str(len(statuses) - statuses.count("cached")),
                "aepipe.stages.cached": str(statuses.count("cached"))}
        if result.run_dir:
            tags["aepipe.run_dir"] = result.run_dir
        self._log(self.parent_id, metrics=[(k, v, 0) for k, v in numbers(result.metrics).items()],
                  timestamp=int(time.time() * 1000), tags=tags)
        if result.run_dir:
            run_dir = Path(result.run_dir)
            files = [run_dir / n for n in RUN_FILES] + sorted(run_dir.glob("*.png"))
            for f in files:
                if f.is_file():
                    self.client.log_artifact(self.parent_id, str(f))
        self.client.set_terminated(self.parent_id, "FINISHED")
        self.parent_id = None

    # ------------------------------------------------------------ batching

    def _log(self, run_id: str, *, params: dict | None = None, metrics: list | None = None,
             tags: dict | None = None, timestamp: int | None = None) -> None:
        """Everything in as few ``log_batch`` requests as MLflow's limits allow."""
        from mlflow.entities import Metric, Param, RunTag

        ts = timestamp or int(time.time() * 1000)
        p = [Param(k, v) for k, v in (params or {}).items()]
        t = [RunTag(k, v) for k, v in (tags or {}).items()]
        m = [Metric(_metric_key(k), v, ts, step) for k, v, step in (metrics or [])]
        while p or t or m:
            bp, p = p[:BATCH_TAGS_PARAMS], p[BATCH_TAGS_PARAMS:]
            bt, t = t[:BATCH_TAGS_PARAMS - len(bp)], t[BATCH_TAGS_PARAMS - len(bp):]
            room = BATCH_METRICS - len(bp) - len(bt)
            bm, m = m[:room], m[room:]
            self.client.log_batch(run_id, metrics=bm, params=bp, tags=bt)


def _metric_key(key: str) -> str:
    """MLflow keys take letters, digits, ``_ - . / `` and spaces (``macro avg`` stays)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)


def _history(stage_dir: Path) -> dict[str, list[float]]:
    """The stage's per-epoch history (numeric series only); {} for stages that do not train."""
    try:
        raw = json.loads((stage_dir / HISTORY).read_text())
    except (OSError, ValueError):
        return {}
    return {k: [float(x) for x in v] for k, v in raw.items()
            if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)}


def _git_tags(pipeline_file: Path | None) -> dict:
    """The commit of the repository holding the pipeline file, if it is in one."""
    if pipeline_file is None:
        return {}
    path = Path(pipeline_file).resolve()
    tags = {"aepipe.pipeline_file": str(path)}
    try:
        out = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return tags
    if out.returncode == 0 and out.stdout.strip():
        tags["mlflow.source.git.commit"] = out.stdout.strip()
    return tags
