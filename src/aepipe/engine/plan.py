"""The stage graph of a pipeline and every stage's key, computed without TensorFlow.

A stage's key holds exactly what decides its result: its own fields of the
spec (only those its kind and settings read, and only where they differ from
their defaults), its upstream keys, the data fingerprint it depends on and
the code version of its kind. So changing layer k re-keys layer k and what
reads it, never layer k-1; pretraining never sees labels, so its keys hold
the inputs' fingerprint only; and the random-init baseline holds no
pretraining field at all.

    pretrain-0 .. pretrain-k   (labels never enter these keys)
    unroll, unroll-baseline    (unroll.epochs > 0: the deep autoencoder fine-tuned on
                                reconstruction, from the greedy stack and from random init)
    head -> finetune           (pretrained start)
    baseline                   (same network, random start, same data order and seeds)
    evaluate                   (scores finetune and baseline by one function)
    tsne                       (cheap to toggle: nothing upstream retrains)
    cluster, cluster-baseline  (cluster.method: the top codes clustered, and the same network and
                                clustering from random weights; labels never enter these keys)
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import NamedTuple

from ..config.relevance import autoencoder_params, cluster_params, layer_params, network_params, section_params, unroll_params
from ..config.spec import LayerSpec, PipelineSpec, to_plain
from ..errors import SpecError
from .seeds import derive_seed
from .store import stage_key

# Bump a kind's version when its code or the meaning of a default it reads
# changes what it produces; tests/test_stage_versions.py pins the defaults.
# baseline 2: every layer in the network identity, initial weights drawn per layer role; finetune 3 and
# unroll 2: their seeds derive from the baseline keys, which changed; unroll_baseline 2: every layer counts.
# tsne 2: openTSNE or scikit-learn (the engine in its key and its metrics), scikit-learn with n_jobs=2.
# evaluate 5: an unroll run's reconstructions.npz also holds the unrolled autoencoder's row.
# cluster 2, cluster_baseline 2: an embedded model keeps its training labels (new rows vote), k-means in float32.
# pretrain 3, unroll 3, unroll_baseline 3, head 3, finetune 4, baseline 3: the training defaults became the
# estimators' (config/training.py: adam, batch "auto", 200 epochs with n_iter_no_change 10; gaussian noise).
# finetune 5, baseline 4: a net of 2**17 weights or more takes the optimizer update as one XLA call (nn/fused.py),
# equal to Keras' to float rounding, not bit for bit (issue 32); smaller nets train as before.
STAGE_VERSIONS = {"pretrain": 3, "unroll": 3, "unroll_baseline": 3, "head": 3, "finetune": 5, "baseline": 4,
                  "evaluate": 5, "tsne": 2, "cluster": 2, "cluster_baseline": 2}
KINDS = tuple(STAGE_VERSIONS)


class Fingerprint(NamedTuple):
    """The data a stage may depend on: the inputs alone (pretraining) or inputs and labels."""

    inputs: str
    labels: str

    @property
    def full(self) -> str:
        return f"{self.inputs}+{self.labels}"


@dataclass(frozen=True)
class StagePlan:
    name: str  # pretrain-0 ... head, finetune, baseline, evaluate, tsne
    kind: str
    params: dict
    upstream: tuple[str, ...]  # names of the stages it reads
    key: str
    title: str
    seed: int  # what its initialisation, data order and noise derive from
    replicate: int = 0  # evaluate.replicates: which pair this stage belongs to (its spec: spec.replicate(r))

    def local(self) -> "StagePlan":
        """The stage as its replicate's own pipeline names it (``finetune@2`` -> ``finetune``)."""
        if not self.replicate:
            return self
        return dataclasses.replace(self, name=base_name(self.name), upstream=tuple(map(base_name, self.upstream)))


def base_name(name: str) -> str:
    """A stage's name within its replicate: ``pretrain-0@3`` -> ``pretrain-0``."""
    return name.split("@", 1)[0]


def plan(spec: PipelineSpec, fingerprint: Fingerprint) -> list[StagePlan]:
    """The stages with full params (records, manifests, stale reasons) and keys
    hashed from the non-default fields only (a new field with a default that
    keeps the old behaviour invalidates nothing). With ``evaluate.replicates``,
    replicate r's stages follow, named ``<stage>@r``: keyed and seeded by its own
    spec, so what two replicates would train alike is one stage."""
    stages = _plan_one(spec, fingerprint)
    for r in range(1, spec.evaluate.replicates):
        rs = spec.replicate(r)
        stages += [dataclasses.replace(s, name=f"{s.name}@{r}", upstream=tuple(f"{u}@{r}" for u in s.upstream),
                                       title=f"{s.title} (replicate {r}, seed {rs.seed})", replicate=r)
                   for s in _plan_one(rs, fingerprint)]
    return stages


def _plan_one(spec: PipelineSpec, fingerprint: Fingerprint) -> list[StagePlan]:
    stages: list[StagePlan] = []
    by_name: dict[str, StagePlan] = {}
    for g in _graph(spec):
        name, kind, params, upstream, title, uses_labels = g
        key = _key(kind, params, [by_name[u].key for u in upstream], fingerprint, uses_labels)
        p = StagePlan(name, kind, params, tuple(upstream), key, title, _seed(spec, kind, key, fingerprint))
        stages.append(p)
        by_name[name] = p
    return stages


def _key(kind: str, params: dict, upstream_keys: list[str], fingerprint: Fingerprint, uses_labels: bool) -> str:
    """The one place a stage key is computed: its kind's version, its non-default
    params, its upstream keys and the data it reads."""
    data = fingerprint.full if uses_labels else fingerprint.inputs
    return stage_key(kind, STAGE_VERSIONS[kind], non_default(params), upstream_keys, data)


def _seed(spec: PipelineSpec, kind: str, key: str, fingerprint: Fingerprint) -> int:
    """A function of the stage's key alone, so one key is always trained with one seed.

    A random-init twin draws from its own key; its pretrained partner (finetune,
    unroll) from its twin's key, which its own key determines (same network,
    budget, seed and data), so both see the same data order and noise.
    """
    if kind == "finetune":
        key = _key("baseline", _baseline_params(spec), [], fingerprint, True)
    elif kind == "unroll":
        key = _key("unroll_baseline", _unroll_baseline_params(spec), [], fingerprint, False)
    elif kind == "cluster":
        key = _key("cluster_baseline", _cluster_baseline_params(spec), [], fingerprint, False)
    return derive_seed(spec.seed, key)


def _graph(spec: PipelineSpec) -> list[tuple]:
    """(name, kind, params, upstream, title, uses_labels) of every stage."""
    out = []
    add = lambda *row: out.append(row)  # noqa: E731
    supervised = {"seed": spec.seed, "validation_split": spec.data.validation_split, **_labels(spec),
                  **_distribution(spec)}
    pretrained = [f"pretrain-{i}" for i in range(len(spec.layers))]
    _add_pretrain(spec, add)
    unrolled = spec.unroll.epochs > 0
    if unrolled:
        add("unroll", "unroll", {"unroll": unroll_params(spec), **_unroll_base(spec)}, pretrained,
            "unroll: fine-tune the deep autoencoder on reconstruction", False)
        if spec.unroll.baseline:
            add("unroll-baseline", "unroll_baseline", _unroll_baseline_params(spec), [],
                "the same deep autoencoder from random init", False)
    codes = "unroll" if unrolled else pretrained[-1]  # what encode, t-SNE and export read
    if not spec.data.labeled:  # the unsupervised path: nothing that needs a label
        _add_cluster(spec, add, ["unroll"] if unrolled else pretrained)
        _add_tsne(spec, add, codes)
        return out
    start = [*pretrained, "unroll"] if unrolled and spec.unroll.classifier else pretrained
    add("head", "head", {"head": section_params(spec.head), **supervised}, [start[-1]],
        "softmax head on the top codes", True)
    add("finetune", "finetune", {"finetune": section_params(spec.finetune), **supervised}, [*start, "head"],
        "fine-tune the stacked classifier", True)
    scored = ["finetune"]
    if spec.evaluate.baseline:
        add("baseline", "baseline", _baseline_params(spec), [], "the same network from random init", True)
        scored.append("baseline")
        if spec.finetune.semi_supervised:  # what the unlabeled inputs bought, apart from pretraining
            add("baseline-plain", "baseline", _baseline_params(spec, spec.finetune.plain()), [],
                "the same network from random init, fine-tuned on the labeled rows alone", True)
            scored.append("baseline-plain")
    deep = [n for n, *_ in out if n in ("unroll", "unroll-baseline")]
    add("evaluate", "evaluate", {}, [*pretrained, *deep, *scored], "evaluate on the test split", True)
    _add_cluster(spec, add, ["unroll"] if unrolled else pretrained)
    _add_tsne(spec, add, codes)
    return out


def _add_tsne(spec: PipelineSpec, add, codes: str) -> None:
    """t-SNE of the test rows' raw, PCA and top codes; scored by 10-NN accuracy when there are labels."""
    if spec.evaluate.tsne:
        tsne = {"tsne_samples": spec.evaluate.tsne_samples, "seed": spec.seed,
                "engine": tsne_engine(spec.evaluate.tsne_engine)}
        add("tsne", "tsne", tsne, [codes], "t-SNE of raw, PCA and autoencoder features", spec.data.labeled)


def tsne_engine(requested: str = "auto") -> str:
    """The t-SNE engine ``evaluate.tsne_engine`` names on this machine: auto is
    openTSNE where it is installed, else scikit-learn's Barnes-Hut."""
    try:
        installed = importlib.util.find_spec("openTSNE") is not None
    except ValueError:  # a module set to None in sys.modules: treated as not installed
        installed = False
    if requested == "opentsne" and not installed:
        raise SpecError("evaluate.tsne_engine = 'opentsne' needs openTSNE: pip install 'aepipe[tsne]', "
                        "or set evaluate.tsne_engine = 'auto'")
    if requested == "auto":
        return "opentsne" if installed else "sklearn"
    return requested


def _baseline_params(spec: PipelineSpec, finetune=None) -> dict:
    """The network's shape (and its decoders' when fine-tuning reconstructs) and
    the fine-tune settings: no pretraining field."""
    finetune = spec.finetune if finetune is None else finetune
    decoders = {"autoencoder": autoencoder_params(spec)} if finetune.reconstruction_weight else {}
    return {"network": network_params(spec), **decoders, "finetune": section_params(finetune), "seed": spec.seed,
            "validation_split": spec.data.validation_split, **_labels(spec), **_distribution(spec)}


def _add_cluster(spec: PipelineSpec, add, encoder: list[str]) -> None:
    """The cluster stage reads the encoder (and its codes) it refines or clusters;
    its twin, the same network at random weights. Neither reads labels."""
    if spec.cluster.method == "none":
        return
    add("cluster", "cluster", {"cluster": cluster_params(spec), "seed": spec.seed}, encoder,
        f"cluster the codes ({spec.cluster.method})", False)
    if spec.cluster.baseline:
        add("cluster-baseline", "cluster_baseline", _cluster_baseline_params(spec), [],
            "the same clustering from random weights", False)


def _cluster_baseline_params(spec: PipelineSpec) -> dict:
    """The network (its decoders too for idec, which reconstructs) and the clustering: no pretraining field."""
    net = {"autoencoder": autoencoder_params(spec)} if spec.cluster.method == "idec" else {
        "network": network_params(spec)}
    return {**net, "cluster": cluster_params(spec), "seed": spec.seed}


def _labels(spec: PipelineSpec) -> dict:
    """Which labeled rows the supervised stages see; ``label_seed`` only when set,
    so pipelines without it keep their keys."""
    d = spec.data
    return {"labels": d.labels, **({} if d.label_seed is None else {"label_seed": d.label_seed}),
            **({} if d.validation_labels is None else {"validation_labels": d.validation_labels})}


def _unroll_base(spec: PipelineSpec) -> dict:
    return {"seed": spec.seed, "validation_split": spec.data.validation_split, **_distribution(spec)}


def _unroll_baseline_params(spec: PipelineSpec) -> dict:
    """The deep autoencoder's shape and the unroll budget: no pretraining field."""
    return {"autoencoder": autoencoder_params(spec), "unroll": unroll_params(spec), **_unroll_base(spec)}


def _distribution(spec: PipelineSpec) -> dict:
    """data_parallel leaves out the rows of an epoch that do not split across devices: it changes results."""
    s = spec.distribution.strategy
    return {} if s == "none" else {"distribution": s}


def _width(layer) -> str:
    return f"conv{layer.filters}" if layer.kind == "conv" else f"{layer.kind}{layer.units}".replace("dense", "")


def _add_pretrain(spec: PipelineSpec, add) -> None:
    """Stages pretrain-0..n-1, each leaving one layer's encoder, decoder and codes.

    greedy: stage i trains layer i on the codes of stage i-1. joint and
    layer_matching: stage 0 trains the whole deep autoencoder (its key covers
    every layer), and stage i > 0 takes layer i's weights from it and encodes
    stage i-1's codes, so head, fine-tune and evaluate read the same files in
    every mode.
    """
    widths = ["in"] + [_width(layer) for layer in spec.layers]
    mode = spec.pretrain.mode
    base = {"seed": spec.seed, "validation_split": spec.data.validation_split, "mode": mode,
            **_distribution(spec)}
    if mode == "greedy":
        for i in range(len(spec.layers)):
            add(f"pretrain-{i}", "pretrain", {"index": i, "layer": layer_params(spec, i), **base},
                [f"pretrain-{i - 1}"] if i else [], f"pretrain layer {i} ({widths[i]}\u2192{widths[i + 1]})",
                False)
        return
    # keyed by index (not a list) so a stale reason names the field: layers.2.units: 16 -> 8
    deep = {"index": 0, "depth": len(spec.layers),
            "layers": {str(i): layer_params(spec, i) for i in range(len(spec.layers))}, **base}
    if mode == "layer_matching":
        deep["match_weight"] = spec.pretrain.match_weight
    add("pretrain-0", "pretrain", deep, [], f"pretrain the deep autoencoder ({mode}: {'-'.join(widths)})", False)
    for i in range(1, len(spec.layers)):
        add(f"pretrain-{i}", "pretrain", {"index": i, "mode": mode},
            ["pretrain-0"] + ([f"pretrain-{i - 1}"] if i > 1 else []),
            f"layer {i} of the deep autoencoder ({widths[i]}\u2192{widths[i + 1]})", False)


# ---------------------------------------------------------------- keys from non-default fields


class _Every(dict):
    """The same defaults under every key (the layers, keyed by index)."""

    def __init__(self, value: dict):
        super().__init__()
        self.value = value

    def get(self, key, default=None):
        return self.value


def _defaults() -> dict:
    """What every stage's params hold when each field is at its default."""
    from ..config.spec import ClusterSpec, FinetuneSpec, HeadSpec, UnrollSpec

    layer = to_plain(LayerSpec())
    return {"layer": layer, "layers": _Every(layer), "network": _Every(layer), "autoencoder": _Every(layer),
            "head": to_plain(HeadSpec()), "finetune": to_plain(FinetuneSpec()), "unroll": to_plain(UnrollSpec()),
            "cluster": to_plain(ClusterSpec())}


_UNKNOWN = object()


def non_default(params: dict, defaults: dict | None = None) -> dict:
    """``params`` without the (nested) values equal to their field's default;
    values with no default (index, seed, labels...) always stay, and so does
    every layer of a stack, at all-default settings too: depth is part of a
    network's identity."""
    defaults = _defaults() if defaults is None else defaults
    every_layer = isinstance(defaults, _Every)
    out = {}
    for k, v in params.items():
        d = defaults.get(k, _UNKNOWN)
        if isinstance(v, dict):
            nested = non_default(v, d if isinstance(d, dict) else {})
            if nested or every_layer or not isinstance(d, dict):
                out[k] = nested
        elif d is _UNKNOWN or v != d:
            out[k] = v
    return out


# ---------------------------------------------------------------- selecting and explaining


PHASES = {"pretrain": ("pretrain", "unroll"), "finetune": ("pretrain", "head", "finetune"),
          "cluster": ("cluster", "cluster_baseline"), "evaluate": KINDS}


def select(stages: list[StagePlan], phase: str) -> list[StagePlan]:
    """The stages a phase command runs: its own and everything they need
    (``finetune`` runs the unroll stage only when the classifier starts from it)."""
    kinds = PHASES[phase]
    wanted = {s.name for s in stages if s.kind in kinds}
    for s in reversed(stages):  # stages come in dependency order
        if s.name in wanted:
            wanted.update(s.upstream)
    return [s for s in stages if s.name in wanted]


def downstream(stages: list[StagePlan], names: set[str]) -> set[str]:
    """``names`` and every stage that reads one of them, directly or not."""
    out = set(names)
    for s in stages:  # stages come in dependency order
        if out.intersection(s.upstream):
            out.add(s.name)
    return out


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
