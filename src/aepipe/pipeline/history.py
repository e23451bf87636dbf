"""Past runs, read from their run directories: listing them and diffing two.

Why from the files: ``artifacts/runs/`` already holds every run (run.json,
spec.json, metrics.json), so history needs no tracker, no TensorFlow and no
database.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config.flatten import as_text, flatten, numbers
from ..engine.clean import configuration, configuration_id, natural, overrides, reference_fields, runs_in, spec_fields
from ..engine.layout import RUN_METRICS, RUN_NAME, RUN_RECORD, RUN_SPEC, run_order
from ..errors import AepipeError

HIDDEN_METRICS = ("classification_report.",)  # per-class rows: shown by `aepipe diff --all`


def resolve_run_dir(run: str, artifacts: Path) -> Path:
    """A run directory; ``pipeline/stamp`` under ARTIFACTS/runs; a pipeline's runs
    folder or just its name (both: its newest run)."""
    for path in (Path(run), Path(artifacts) / "runs" / run):
        if (path / RUN_RECORD).is_file():
            return path
        runs = runs_in(path)
        if runs:
            return runs[-1]
    raise AepipeError(f"{run!r} is not an aepipe run directory (no run.json) nor a pipeline with runs "
                      f"under {str(Path(artifacts) / 'runs')!r}")


def _read(run_dir: Path, name: str) -> dict:
    try:
        data = json.loads((run_dir / name).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AepipeError(f"{str(run_dir / name)!r} is unreadable ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise AepipeError(f"{str(run_dir / name)!r} is not a JSON object")
    return data


def _when(run_dir: Path) -> str | None:
    """``20261201T111936Z`` -> ``2026-12-01 11:19:36Z``."""
    m = RUN_NAME.match(run_dir.name)
    if not m:
        return None
    t = m.group(1)
    return f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[9:11]}:{t[11:13]}:{t[13:15]}Z"


def summary(run_dir: Path) -> dict:
    """One run as a row: when, which pipeline, what it scored, what it cost."""
    record = _read(run_dir, RUN_RECORD)
    metrics = record.get("metrics") or _read(run_dir, RUN_METRICS)
    stages = record.get("stages", [])
    comparison = metrics.get("comparison") or {}
    over_seeds = (metrics.get("replicates") or {}).get("classifier") or {}
    if over_seeds.get("n", 1) > 1:  # evaluate.replicates: the finding over seeds, not replicate 0's pair
        comparison = {"verdict": f"{over_seeds['verdict']} (over {over_seeds['n']} seeds)",
                      "p_value": over_seeds["p_value"]}
    name = f"{run_dir.parent.name}/{run_dir.name}"
    return {"run": name, "path": str(run_dir), "time": _when(run_dir),
            "pipeline": record.get("pipeline", run_dir.parent.name),
            "test_accuracy": metrics.get("test_accuracy"),
            "baseline_test_accuracy": metrics.get("baseline_test_accuracy"),
            "verdict": comparison.get("verdict"), "p_value": comparison.get("p_value"),
            "seconds": round(sum(s.get("seconds", 0.0) for s in stages), 3),
            "trained": sum(s.get("status") != "cached" for s in stages),
            "cached": sum(s.get("status") == "cached" for s in stages)}


def list_runs(runs_root: Path, pipeline: str | None = None, pipeline_file: str | Path | None = None) -> list[dict]:
    """Every run directory (with a run.json) under ``runs_root``, newest first, each
    with its configuration and how that differs from the pipeline file
    (``pipeline_file``, else the built-in pipeline of the same name; with neither,
    the fields its pipeline's configurations differ in)."""
    if pipeline is not None and not (runs_root / pipeline).is_dir():
        raise AepipeError(f"no runs of pipeline {pipeline!r} under {str(runs_root)!r}")
    folders = [runs_root / pipeline] if pipeline else sorted(p for p in runs_root.glob("*") if p.is_dir())
    dirs = [d for f in folders for d in runs_in(f)]
    fields = {d: configuration(d) for d in dirs}
    described = {}
    for f in folders:
        reference, where = reference_fields(f.name, pipeline_file)
        mine = [fields[d] for d in dirs if d.parent == f]
        for d in dirs:
            if d.parent == f:
                described[d] = {"configuration": configuration_id(fields[d]), "compared_with": where,
                                "overrides": overrides(fields[d], reference, mine)}
    dirs.sort(key=lambda d: (run_order(d), d.parent.name), reverse=True)
    return [{**summary(d), **described[d]} for d in dirs]


def _spec_fields(run_dir: Path) -> dict:
    """spec.json as dotted fields, with defaults filled in: a run written before a
    field existed compares as that field's default."""
    return spec_fields(_read(run_dir, RUN_SPEC), str(run_dir / RUN_SPEC))


def _stage_keys(run_dir: Path) -> dict:
    return {s["name"]: s for s in _read(run_dir, RUN_RECORD).get("stages", []) if "name" in s}


def diff_runs(a: Path, b: Path, *, all_metrics: bool = False) -> dict:
    """What differs between two runs: spec fields, stage keys, and the metrics side by side."""
    sa, sb = _spec_fields(a), _spec_fields(b)
    spec = [{"field": k, "a": as_text(sa.get(k)) if k in sa else None, "b": as_text(sb.get(k)) if k in sb else None}
            for k in sorted(set(sa) | set(sb), key=natural) if sa.get(k, _MISSING) != sb.get(k, _MISSING)]
    ka, kb = _stage_keys(a), _stage_keys(b)
    names = [*ka, *(n for n in kb if n not in ka)]
    stages = [{"stage": n, "a": ka.get(n, {}).get("key"), "b": kb.get(n, {}).get("key"),
               "a_status": ka.get(n, {}).get("status"), "b_status": kb.get(n, {}).get("status")}
              for n in names if ka.get(n, {}).get("key") != kb.get(n, {}).get("key")]
    ma, mb = _metrics(a), _metrics(b)
    keys = [k for k in sorted(set(ma) | set(mb), key=natural)
            if all_metrics or not k.startswith(HIDDEN_METRICS)]
    metrics = [{"metric": k, "a": ma.get(k), "b": mb.get(k),
                "delta": mb[k] - ma[k] if isinstance(ma.get(k), float) and isinstance(mb.get(k), float) else None}
               for k in keys]
    return {"a": f"{a.parent.name}/{a.name}", "b": f"{b.parent.name}/{b.name}",
            "spec": spec, "stages": stages, "metrics": metrics}


_MISSING = object()


def _metrics(run_dir: Path) -> dict:
    """The numbers of a run's metrics, plus its word-valued ones (the paired verdict)."""
    raw = _read(run_dir, RUN_RECORD).get("metrics") or _read(run_dir, RUN_METRICS)
    words = {k: v for k, v in flatten({k: v for k, v in raw.items() if isinstance(v, (dict, str))}).items()
             if isinstance(v, str)}
    return {**numbers(raw), **words}

