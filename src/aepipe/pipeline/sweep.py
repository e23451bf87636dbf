"""Sweeps: a grid of pipeline variants fanned out with joblib.

Each variant is the base pipeline plus one ``--set`` per grid key. Variants
run as separate processes (joblib's ``loky`` locally, ``dask`` on a
dask.distributed cluster) against ONE artifacts directory: stages they share
have the same key, the per-stage lock lets one process build a stage while the
others wait, and the content-addressed store hands them the result, so a
shared prefix is trained once.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from .. import config
from ..analysis.report import pct
from ..analysis.table import fixed_width
from ..engine.remote import is_remote
from ..errors import SpecError
from .inputs import check_data_dependent
from .observer import ObserverFactory
from .parallel import check_backend, on_dask

def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["layers.0.units=256,512", ...]`` -> ``{"layers.0.units": ["256", "512"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        if key in grid:
            raise SpecError(f"--grid {key} is given twice; list all its values in one --grid")
        vals = [v.strip() for v in values.split(",")]
        if not all(vals):
            raise SpecError(f"--grid {key}: empty value in {values!r}")
        twice = sorted({v for v in vals if vals.count(v) > 1})
        if twice:
            raise SpecError(f"--grid {key}: {', '.join(map(repr, twice))} given twice "
                            "(the same variant would run twice)")
        grid[key] = vals
    if not grid:
        raise SpecError("a sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def expand(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, first key slowest."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def variant_name(base: str, point: dict[str, str]) -> str:
    """A stable name per grid point (its runs go to ``runs/<name>/``)."""
    digest = hashlib.sha256(repr(sorted(point.items())).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def variants(pipeline: Path | None, overrides: Sequence[str], grid: dict[str, list[str]]) -> list[dict]:
    """Each grid point as (name, overrides), every one validated before any runs; then one
    warning when few-label variants would rank on a handful of validation rows."""
    from ..config.ranking import warn_thin_ranking

    base = config.load(pipeline, overrides)
    out, datasets, specs = [], {}, []
    for point in expand(grid):
        sets = [*overrides, *(f"{k}={v}" for k, v in point.items())]
        try:
            variant = config.load(pipeline, sets)  # a bad value fails here, naming the key
        except SpecError as e:
            grid_key = next((k for k in point if e.message.startswith(f"--set {k}")), None)
            if grid_key is None:
                raise
            raise SpecError("--grid" + e.message.removeprefix("--set")) from None
        if variant.data.validation_split == 0:
            raise SpecError("a sweep ranks variants by validation accuracy, never by test accuracy, and "
                            f"data.validation_split is 0{' for ' + ', '.join(sets[len(overrides):]) if point else ''}; "
                            "set it (e.g. --set data.validation_split=0.1)")
        _check_with_data(variant, point, datasets)
        specs.append(variant)
        out.append({"name": variant_name(base.name, point), "grid": point, "overrides": sets})
    warn_thin_ranking(specs, "the sweep")
    return out


def _check_with_data(variant, point: dict[str, str], datasets: dict) -> None:
    """The labeled subset and the t-SNE sample against the data, before the first variant trains."""
    import dataclasses

    from ..data import sources

    if variant.data.labels is None and not variant.evaluate.tsne:
        return
    source = dataclasses.replace(variant.data, labels=None)  # one load per data set, not per grid value
    if source not in datasets:
        datasets[source] = sources.load(source)
    try:
        check_data_dependent(variant, datasets[source], tsne=variant.evaluate.tsne)
    except SpecError as e:
        raise SpecError(f"--grid {', '.join(f'{k}={v}' for k, v in point.items())}: {e.message}") from None


def run_variant(pipeline: str | None, overrides: Sequence[str], name: str, grid: dict,
                artifacts: str, observer: ObserverFactory | None = None) -> dict:
    """One variant, start to finish, in a worker process; returns a plain dict.
    ``observer``: makes the worker's own observer, tagged with the variant (a
    tracker: the variant becomes its own MLflow parent run in the sweep's experiment)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..engine.remote import open_store
    from .runner import Runner

    t0 = time.perf_counter()
    spec = config.load(pipeline, [*overrides, f"name={name}"])
    store = open_store(artifacts)
    tracker = None
    if observer is not None:
        tags = {"aepipe.sweep.variant": name, **{f"aepipe.sweep.{k}": v for k, v in grid.items()}}
        tracker = observer(pipeline_file=pipeline, tags=tags)
    with tracker if hasattr(tracker, "__enter__") else contextlib.nullcontext():
        result = Runner(spec, store, observer=tracker).run("evaluate")
    finetune = next(s for s in result.stages if s.name == "finetune")
    ft_metrics = store.load("finetune", finetune.key).manifest.get("metrics", {})
    return {"name": name, "grid": grid, "run_dir": result.run_dir,
            "val_accuracy": ft_metrics.get("val_accuracy"),
            "test_accuracy": result.metrics.get("test_accuracy"),
            "baseline_test_accuracy": result.metrics.get("baseline_test_accuracy"),
            "plain_baseline_test_accuracy": result.metrics.get("plain_baseline_test_accuracy"),
            "stages": [{"name": s.name, "key": s.key, "status": s.status, "seconds": round(s.seconds, 3)}
                       for s in result.stages],
            "seconds": round(time.perf_counter() - t0, 3), "pid": os.getpid()}


def run_sweep(pipeline: Path | None, overrides: Sequence[str], grid: dict[str, list[str]], artifacts: Path,
              *, jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
              log: Callable[[str], None] = lambda m: None, observer: ObserverFactory | None = None) -> list[dict]:
    """Run every variant; results sorted by validation accuracy, best first.
    ``observer``: what watches every variant (see ``run_variant``)."""
    from joblib import Parallel, delayed

    check_backend(backend)
    items = variants(pipeline, overrides, grid)
    log(f"sweep: {len(items)} variants, backend {backend}, "
        + (f"scheduler {scheduler}" if scheduler else f"{jobs} jobs"))
    path = None if pipeline is None else str(Path(pipeline).resolve())
    artifacts = artifacts if is_remote(artifacts) else str(Path(artifacts).resolve())
    tasks = [delayed(run_variant)(path, v["overrides"], v["name"], v["grid"], artifacts, observer) for v in items]
    if backend == "dask":
        results = on_dask(tasks, jobs, scheduler, lambda rows: _reported(rows, len(tasks), log))
    else:
        results = _reported(Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")(tasks),
                            len(tasks), log)
    return sorted(results, key=_rank)


def sweep_dir(artifacts: Path, pipeline: str, results: list[dict] | None = None) -> Path:
    """Where a sweep's own outputs go (the label curve): under its base pipeline's
    folder (variants' runs are under runs/, this belongs to none of them), one
    folder per sweep, named from its grid and a hash of its variants' resolved specs
    (``labels=100,300-1a2b3c4d``), so a sweep with other settings never overwrites it."""
    folder = Path(artifacts) / "sweeps" / pipeline
    if not results:
        return folder
    grid: dict[str, list[str]] = {}
    for row in results:
        for k, v in row["grid"].items():
            values = grid.setdefault(k, [])
            values += [] if v in values else [v]
    digest = hashlib.sha256(" ".join(sorted(map(_variant_config, results))).encode()).hexdigest()[:8]
    words = "+".join(f"{k.rsplit('.', 1)[-1]}={','.join(sorted(vs, key=_natural_value))}" for k, vs in grid.items())
    return folder / f"{words[:80]}-{digest}"


def _variant_config(row: dict) -> str:
    """A variant's resolved spec (less its name) as a configuration id; its grid point
    when its run directory cannot tell."""
    from ..engine.clean import configuration, configuration_id

    fields = configuration(Path(row["run_dir"])) if row.get("run_dir") else None
    if fields is None:
        return repr(sorted(row["grid"].items()))
    return configuration_id({k: v for k, v in fields.items() if k != "name"})


def _natural_value(v: str):
    return (0, float(v), "") if v.replace(".", "", 1).lstrip("-").isdigit() else (1, 0.0, v)


def write_label_curve(results: list[dict], artifacts: Path, pipeline: str, source: str,
                      log: Callable[[str], None] = lambda m: None) -> list[dict] | None:
    """The label curve of a sweep over data.labels (and data.label_seed),
    written to the sweep's own folder as labels.json and labels.png; None, said in
    the log when it is a label sweep, when the grid makes no curve. The published
    rows go beside it only when ``source`` is the data they were measured on."""
    from ..analysis.label_curve import label_curve, published_for, why_no_curve, write_curve

    reason = why_no_curve(results)
    if reason:
        log(f"sweep: {reason}")
    curve = label_curve(results)
    if curve is None:
        return None
    png = write_curve(curve, sweep_dir(artifacts, pipeline, results), pipeline, published_for(source))
    log(f"sweep: label curve: {png} (and {png.with_suffix('.json').name})")
    return curve


def _reported(rows, n: int, log) -> list[dict]:
    """Collect variants as they finish, saying so: a sweep of hours is not silent."""
    out = []
    for done, row in enumerate(rows, 1):
        point = ", ".join(f"{k}={v}" for k, v in row["grid"].items())
        trained = sum(s["status"] != "cached" for s in row["stages"])
        log(f"sweep: {done}/{n} done: {row['name']} ({point}): validation accuracy {pct(row['val_accuracy'])}, "
            f"{trained} stages trained, {row['seconds']:.1f} s")
        out.append(row)
    return out


def _rank(row: dict):
    """Best validation accuracy first; test accuracy never decides (ties keep name order)."""
    val = row.get("val_accuracy")
    return (val is None, -(val or 0.0), row["name"])


def trained_counts(results: list[dict]) -> dict[str, int]:
    """How many variants (or trials: rows with ``stages``) trained or resumed each
    distinct stage key (1 everywhere: nothing trained twice)."""
    counts: dict[str, int] = {}
    for row in results:
        for s in row["stages"]:
            counts.setdefault(s["key"], 0)
            counts[s["key"]] += s["status"] in ("trained", "resumed")
    return counts


def format_table(results: list[dict]) -> str:
    """A fixed-width table: grid values, accuracies, what each variant trained."""
    keys = list(results[0]["grid"]) if results else []
    head = ["rank", "name", *keys, "val_acc", "test_acc", "trained", "cached", "seconds"]
    rows = [head]
    for rank, r in enumerate(results, 1):
        statuses = [s["status"] for s in r["stages"]]
        rows.append([str(rank), r["name"], *(r["grid"][k] for k in keys), pct(r["val_accuracy"], ""),
                     pct(r["test_accuracy"], ""), str(sum(s != "cached" for s in statuses)),
                     str(statuses.count("cached")), f"{r['seconds']:.1f}"])
    return fixed_width(rows)
