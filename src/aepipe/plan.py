"""The stage graph of a pipeline, computed without TensorFlow.

A stage's key covers exactly its own fields of the spec, its upstream keys and
the data fingerprint, so changing layer k re-keys layer k and everything after
it and nothing before it, and two pipelines with a common prefix share it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .spec import PipelineSpec, _to_plain
from .store import stage_key


def _key_fields(obj) -> dict:
    """The fields of a spec section that differ from their defaults.

    Keys hold only these, so adding a new field (with a default that keeps the
    old behaviour) to the spec does not invalidate every cached stage. A change
    of a default's meaning must bump ``store.FORMAT_VERSION`` instead.
    """
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(value):
            nested = _key_fields(value)
            if nested:
                out[f.name] = nested
        elif value != default:
            out[f.name] = _to_plain(value)
    return out


@dataclass(frozen=True)
class StagePlan:
    name: str  # pretrain-0 ... head, finetune, evaluate
    kind: str  # pretrain | head | finetune | evaluate
    params: dict
    upstream: tuple[str, ...]  # names of the stages it reads
    key: str
    title: str


def plan(spec: PipelineSpec, fingerprint: str) -> list[StagePlan]:
    """The stages with full params (for records, manifests, stale reasons) and
    keys hashed from the non-default fields only."""
    stages: list[StagePlan] = []
    by_name: dict[str, StagePlan] = {}
    key_params = {g[0]: g[2] for g in _graph(spec, _key_fields)}
    for name, kind, params, upstream, title in _graph(spec, _to_plain):
        keys = [by_name[u].key for u in upstream]
        p = StagePlan(name, kind, params, tuple(upstream),
                      stage_key(kind, key_params[name], keys, fingerprint), title)
        stages.append(p)
        by_name[name] = p
    return stages


def _graph(spec: PipelineSpec, fields) -> list[tuple]:
    """(name, kind, params, upstream, title) of every stage; ``fields`` turns a
    spec section into the dict its params hold."""
    out = []

    def add(name, kind, params, upstream, title):
        out.append((name, kind, params, upstream, title))

    supervised = {"seed": spec.seed, "validation_split": spec.data.validation_split,
                  "labels": spec.data.labels}
    _add_pretrain(spec, add, fields)
    top = f"pretrain-{len(spec.layers) - 1}"
    add("head", "head", {"head": fields(spec.head), **supervised}, [top], "softmax head on the top codes")
    add("finetune", "finetune", {"finetune": fields(spec.finetune), **supervised},
        [f"pretrain-{i}" for i in range(len(spec.layers))] + ["head"], "fine-tune the stacked classifier")
    add("evaluate", "evaluate", {"evaluate": fields(spec.evaluate), "finetune": fields(spec.finetune),
                                 **supervised},  # pretrain stages: reconstructions, filters, t-SNE codes
        [f"pretrain-{i}" for i in range(len(spec.layers))] + ["finetune"], "evaluate on the test split")
    return out


def _width(layer) -> str:
    return f"conv{layer.filters}" if layer.kind == "conv" else f"{layer.kind}{layer.units}".replace("dense", "")


def _add_pretrain(spec: PipelineSpec, add, fields) -> None:
    """Stages pretrain-0..n-1, each leaving one layer's encoder, decoder and codes.

    greedy: stage i trains layer i on the codes of stage i-1. joint and
    layer_matching: stage 0 trains the whole deep autoencoder (its key covers
    every layer), and stage i > 0 takes layer i's weights from it and encodes
    stage i-1's codes, so head, fine-tune and evaluate read the same files in
    every mode.
    """
    widths = ["in"] + [_width(layer) for layer in spec.layers]
    mode = spec.pretrain.mode
    base = {"seed": spec.seed, "validation_split": spec.data.validation_split, "mode": mode}
    if mode == "greedy":
        for i, layer in enumerate(spec.layers):
            add(f"pretrain-{i}", "pretrain", {"index": i, "layer": fields(layer), **base},
                [f"pretrain-{i - 1}"] if i else [], f"pretrain layer {i} ({widths[i]}\u2192{widths[i + 1]})")
        return
    # keyed by index (not a list) so a stale reason names the field: layers.2.units: 16 -> 8
    deep = {"index": 0, "layers": {str(i): fields(layer) for i, layer in enumerate(spec.layers)}, **base}
    if mode == "layer_matching":
        deep["match_weight"] = spec.pretrain.match_weight
    add("pretrain-0", "pretrain", deep, [], f"pretrain the deep autoencoder ({mode}: {'-'.join(widths)})")
    for i in range(1, len(spec.layers)):
        add(f"pretrain-{i}", "pretrain", {"index": i, "mode": mode},
            ["pretrain-0"] + ([f"pretrain-{i - 1}"] if i > 1 else []),
            f"layer {i} of the deep autoencoder ({widths[i]}\u2192{widths[i + 1]})")


PHASES = {"pretrain": ("pretrain",), "finetune": ("pretrain", "head", "finetune"),
          "evaluate": ("pretrain", "head", "finetune", "evaluate")}


def select(stages: list[StagePlan], phase: str) -> list[StagePlan]:
    """The stages a phase command runs: its own and everything they need."""
    kinds = PHASES[phase]
    return [s for s in stages if s.kind in kinds]


def diff_params(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ: why a stage went stale."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) or isinstance(b, dict):
            out += diff_params(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def as_record(stages: list[StagePlan]) -> dict:
    return {s.name: dataclasses.asdict(s) for s in stages}
