"""From CLI artifacts to models users deploy: fitted estimators and plain ``.keras`` files.

``load`` turns a run directory or a stage directory into a fitted estimator
(a classifier when a fine-tuned stage is there, else a transformer), so a model
trained by ``aepipe run`` drops into a scikit-learn pipeline. ``pipeline_estimator``
does the same for a pipeline file, building whatever stages are missing; the
``encode`` and ``export`` commands sit on it. Stages are verified against
their manifests before anything is read, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from .. import config
from ..engine.layout import MANIFEST
from ..engine.store import Stage, Store
from ..errors import AepipeError, StoreError

ESTIMATOR_STAGES = ("unroll", "head", "finetune", "cluster")  # besides the pretrain stages: what a fitted estimator is made of


def load(path: str | os.PathLike):
    """A fitted estimator from ``artifacts/runs/<name>/<time>/`` or ``artifacts/stages/<stage>/``.

    A run directory, or a ``finetune``/``evaluate`` stage, gives a
    StackedAutoencoderClassifier; a ``pretrain-i`` stage, or a run without a
    fine-tuned stage, gives an AutoencoderTransformer of layers 0..i; an
    ``unroll`` stage, the transformer of the unrolled stack.
    """
    path = Path(path)
    if (path / "run.json").is_file():
        spec, stages = _run_stages(path)
    elif (path / MANIFEST).is_file():
        spec, stages = _stage_chain(path)
    else:
        raise StoreError(f"{str(path)!r} is neither an aepipe run directory (no run.json) "
                         f"nor a stage directory (no {MANIFEST})")
    return from_stages(spec, stages)


def from_stages(spec, stages: dict[str, Stage]):
    """The estimator the stages make: a classifier when ``finetune`` is among them,
    else a clusterer when ``cluster`` is."""
    from . import AutoencoderClusterer, AutoencoderTransformer, StackedAutoencoderClassifier

    input_shape = tuple(stages["pretrain-0"].manifest["shapes"]["input"])
    if "finetune" in stages:
        classes = np.asarray(stages["finetune"].manifest["classes"])
        return StackedAutoencoderClassifier.from_stages(spec, stages, input_shape, classes)
    if "cluster" in stages:
        return AutoencoderClusterer.from_stages(spec, stages, input_shape)
    return AutoencoderTransformer.from_stages(spec, stages, input_shape)


def pipeline_estimator(runner, phase: str):
    """Run ``phase`` of a pipeline (cached stages are only verified) and return
    its fitted estimator: the transformer for "pretrain", the classifier for "finetune"."""
    from ..engine.plan import select

    runner.run(phase)
    store = runner.store
    stages = {s.name: store.load(s.kind, s.key) for s in select(runner.plan(), phase)}
    return from_stages(runner.spec, stages)


def save_keras(model, path: str | os.PathLike) -> Path:
    """``model.save`` to a sibling temporary file, then one ``os.replace``: a
    crash never leaves half a model at ``path``."""
    path = Path(path)
    if path.suffix != ".keras":
        raise AepipeError(f"{str(path)!r}: a Keras model file must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}-{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------- reading artifacts


def _run_stages(run_dir: Path):
    """The spec and stages a run used, found in the run's own artifacts directory
    (never at the paths run.json recorded: a copied or moved artifacts directory
    must not read stages from the original)."""
    spec = config.from_dict(json.loads((run_dir / "spec.json").read_text()), str(run_dir / "spec.json"),
                            strict=False)
    record = json.loads((run_dir / "run.json").read_text())
    artifacts = run_dir.resolve().parents[2]  # <artifacts>/runs/<pipeline>/<time>
    store = Store(artifacts)
    stages = {}
    for s in record["stages"]:
        if not (s["name"].startswith("pretrain-") or s["name"] in ESTIMATOR_STAGES):
            continue
        d = artifacts / "stages" / Path(s["path"]).name
        if not d.is_dir():
            raise StoreError(f"run {str(run_dir)!r} needs stage {d.name}, which is not in {str(store.stages)!r} "
                             "(removed by `aepipe clean`?); rerun the pipeline to rebuild it")
        stages[s["name"]] = _verified(store, d, s["key"])
    return spec, stages


def _stage_chain(stage_dir: Path):
    """A stage and everything upstream of it, found by key beside it, and the
    spec its manifests imply (each pretrain stage records its layer's fields)."""
    stage_dir = stage_dir.resolve()
    store = Store(stage_dir.parent.parent)
    top = _verified(store, stage_dir)
    if top.manifest.get("kind") == "evaluate":
        top = _upstream(store, top, "finetune")
    if top.manifest.get("kind") in ("head", "baseline", "tsne"):
        raise StoreError(f"{str(stage_dir)!r} is a {top.manifest['kind']} stage; load a pretrain or finetune "
                         "stage, or the run directory")
    stages = {top.manifest["name"]: top}
    pending = [top]
    while pending:
        stage = pending.pop()
        for name in stage.manifest.get("upstream", {}):
            if name not in stages:
                stages[name] = _upstream(store, stage, name)
                pending.append(stages[name])
    layers = sorted((s for n, s in stages.items() if n.startswith("pretrain-")),
                    key=lambda s: s.manifest["params"]["index"])
    first = layers[0].manifest["params"]
    if "layers" in first:  # joint / layer_matching: stage 0 holds every layer's fields
        layer_fields = [first["layers"][str(i)] for i in range(len(first["layers"]))][:len(layers)]
    else:
        layer_fields = [s.manifest["params"]["layer"] for s in layers]
    pretrain = {"mode": first["mode"]}
    if "match_weight" in first:
        pretrain["match_weight"] = first["match_weight"]
    raw = {"seed": first["seed"], "data": {"validation_split": first["validation_split"]},
           "pretrain": pretrain, "layers": layer_fields}
    if "distribution" in first:
        raw["distribution"] = {"strategy": first["distribution"]}
    if "unroll" in stages:
        raw["unroll"] = stages["unroll"].manifest["params"]["unroll"]
    if "finetune" in stages:
        raw["finetune"] = stages["finetune"].manifest["params"]["finetune"]
        raw["head"] = stages["head"].manifest["params"]["head"]
        params = stages["finetune"].manifest["params"]
        raw["data"]["labels"] = params["labels"]
        for key in ("label_seed", "validation_labels"):
            if params.get(key) is not None:
                raw["data"][key] = params[key]
    return config.from_dict(raw, str(stage_dir / MANIFEST)), stages


def _upstream(store: Store, stage: Stage, name: str) -> Stage:
    key = stage.manifest.get("upstream", {}).get(name)
    if key is None:
        raise StoreError(f"stage {stage.path.name} has no upstream {name!r}")
    kind = "pretrain" if name.startswith("pretrain-") else name
    d = store.path(kind, key)
    if not d.is_dir():
        raise StoreError(f"stage {stage.path.name} needs {d.name} ({name}), which is not in {str(store.stages)!r}")
    return _verified(store, d, key)


def _verified(store: Store, d: Path, key: str | None = None) -> Stage:
    if not d.is_dir():
        raise StoreError(f"stage directory {str(d)!r} does not exist")
    return Stage(d, store.verify(d, key))
