"""Which fields of a layer decide its result.

Why: a stage key must hold exactly what decides the stage's output. A field
that a layer's kind or settings ignore (``filters`` on a dense block,
``noise.stddev`` with masking noise, ``kl_weight`` outside a variational
block) must not enter the key, or changing it would re-key the stage, re-seed
it and retrain an identical recipe to a different result. The same table
turns such a field, set on the layer itself, into a spec error.
"""

from __future__ import annotations

from .spec import LayerSpec, PipelineSpec, to_plain

# What the encoder (and so the classifier network) is built from, per kind.
ENCODER_FIELDS = {
    "dense": ("kind", "units", "activation", "l1"),
    "conv": ("kind", "filters", "kernel_size", "pool_size", "activation", "l1"),
    "lstm": ("kind", "units", "activation"),
    "variational": ("kind", "units", "hidden", "activation"),  # activation: of the hidden layer
}
DECODER_FIELDS = {
    "dense": ("decoder_activation", "tied"),
    "conv": ("decoder_activation", "upsampling"),
    "lstm": ("decoder_activation",),
    "variational": ("decoder_activation", "kl_weight"),
}
TRAINING_FIELDS = ("optimizer", "learning_rate", "batch_size", "epochs", "n_iter_no_change", "tol", "early_stopping")
NOISE_FIELDS = {"none": ("kind",), "gaussian": ("kind", "stddev"), "masking": ("kind", "fraction"),
                "salt_pepper": ("kind", "fraction")}
DEEP_MODES = ("joint", "layer_matching")


def training_fields(section) -> tuple[str, ...]:
    """A layer's or a supervised phase's training fields: tol and early_stopping
    only mean something when n_iter_no_change stops training."""
    return tuple(n for n in TRAINING_FIELDS if section.n_iter_no_change or n not in ("tol", "early_stopping"))


def section_params(section) -> dict:
    """A ``[head]`` or ``[finetune]`` table's fields that decide its result."""
    unused = set(TRAINING_FIELDS) - set(training_fields(section))
    if getattr(section, "pseudo_labels", None) == 0:
        unused |= {"pseudo_labels_start", "pseudo_labels_end", "pseudo_labels_targets", "pseudo_labels_threshold",
                   "pseudo_labels_teacher_decay", "pseudo_labels_alignment"}
    if getattr(section, "pseudo_labels_targets", None) not in (None, "mean_teacher"):
        unused.add("pseudo_labels_teacher_decay")
    if getattr(section, "vat_weight", None) == 0:
        unused.add("vat_epsilon")
    if hasattr(section, "semi_supervised") and not section.semi_supervised:
        unused.add("unlabeled_batch_size")
    return {k: v for k, v in to_plain(section).items() if k not in unused}


def encoder_fields(layer: LayerSpec) -> tuple[str, ...]:
    names = ENCODER_FIELDS[layer.kind]
    if layer.kind == "variational" and not layer.hidden:
        names = tuple(n for n in names if n != "activation")  # no hidden layer: nothing to activate
    return names


def pretrain_fields(spec: PipelineSpec, index: int) -> tuple[str, ...]:
    """The fields of layer ``index`` its pretraining reads."""
    layer, mode = spec.layers[index], spec.pretrain.mode
    names = [*encoder_fields(layer), *DECODER_FIELDS[layer.kind], "noise"]
    # joint: one loss for the whole stack (layer 0's); layer_matching: layer i's loss is its matching term
    if mode != "joint" or index == 0:
        names.append("loss")
    if mode not in DEEP_MODES or index == 0:  # a deep model trains with layer 0's settings
        names += training_fields(layer)
    if mode == "layer_matching" and index > 0:
        names.append("stop_gradient")
    return tuple(names)


def layer_params(spec: PipelineSpec, index: int) -> dict:
    """Layer ``index``'s fields that decide its pretraining, as plain values."""
    layer = spec.layers[index]
    out = {name: to_plain(getattr(layer, name)) for name in pretrain_fields(spec, index)}
    out["noise"] = {k: v for k, v in out["noise"].items() if k in NOISE_FIELDS[layer.noise.kind]}
    return out


def network_params(spec: PipelineSpec) -> dict:
    """What the classifier network is built from, layer by layer (the baseline's
    network shape): no decoder, noise or pretraining settings."""
    return {str(i): {name: getattr(layer, name) for name in encoder_fields(layer)}
            for i, layer in enumerate(spec.layers)}


def ignored_layer_keys(spec: PipelineSpec, index: int, raw_layer: dict) -> list[tuple[str, str]]:
    """(dotted key, why) for each field set on layer ``index``'s own table that
    its kind, mode or settings ignore."""
    layer, mode = spec.layers[index], spec.pretrain.mode
    used = set(pretrain_fields(spec, index))
    out = []
    for key, value in raw_layer.items():
        if key == "noise" and isinstance(value, dict):
            kind = layer.noise.kind
            for sub in value:
                if sub not in NOISE_FIELDS[kind]:
                    users = [k for k, names in NOISE_FIELDS.items() if sub in names]
                    out.append((f"noise.{sub}", f"noise.{sub} applies to {' and '.join(users)} noise; "
                                             f"this layer's noise.kind is {kind!r}"))
        elif key not in used:
            out.append((key, _why(key, layer, index, mode)))
    return out


def _why(key: str, layer: LayerSpec, index: int, mode: str) -> str:
    if key in ("tol", "early_stopping") and not layer.n_iter_no_change:
        return f"{key} applies when n_iter_no_change stops training, and it is 0"
    if key in TRAINING_FIELDS or key == "loss":
        return f"pretrain.mode = {mode!r} trains the whole stack with layer 0's {key}"
    if key == "stop_gradient":
        return "stop_gradient applies to layers 1 and up with pretrain.mode = \"layer_matching\""
    if key == "activation" and layer.kind == "variational":
        return "a variational block's activation is that of its hidden layer, and hidden is 0"
    kinds = [k for k in ENCODER_FIELDS if key in ENCODER_FIELDS[k] + DECODER_FIELDS[k]]
    return f"{key} applies to {', '.join(kinds)} blocks; this one is {layer.kind!r}"


UNROLL_GRAPH_FIELDS = ("baseline", "classifier")  # which stages exist and what they read, not how unroll trains


def unroll_params(spec: PipelineSpec) -> dict:
    """The ``[unroll]`` fields that decide the unrolled autoencoder (and its random-init twin)."""
    return {k: v for k, v in section_params(spec.unroll).items() if k not in UNROLL_GRAPH_FIELDS}


def autoencoder_params(spec: PipelineSpec) -> dict:
    """What the deep autoencoder is built from, layer by layer (the unroll
    baseline's shape): encoder and decoder fields, layer 0's loss; no noise and no
    pretraining budget (the unrolled net trains on clean inputs)."""
    out = {}
    for i, layer in enumerate(spec.layers):
        names = (*encoder_fields(layer), *DECODER_FIELDS[layer.kind], *(("loss",) if i == 0 else ()))
        out[str(i)] = {name: getattr(layer, name) for name in names}
    return out


CLUSTER_GRAPH_FIELDS = ("baseline",)  # which stages exist, not how one clusters
UMAP_FIELDS = ("umap_components", "umap_neighbors", "umap_min_dist")
REFINE_FIELDS = ("max_iter", "update_interval", "tol", "batch_size", "optimizer", "learning_rate", "alpha")


def cluster_params(spec: PipelineSpec) -> dict:
    """The ``[cluster]`` fields that decide the assignments: UMAP's only with
    ``embed = "umap"``, the refinement's only for dec/idec, gamma only for idec."""
    c = spec.cluster
    unused = set(CLUSTER_GRAPH_FIELDS)
    if c.embed != "umap":
        unused |= set(UMAP_FIELDS)
    if c.method not in ("dec", "idec"):
        unused |= set(REFINE_FIELDS)
    if c.method != "idec":
        unused.add("gamma")
    return {k: v for k, v in to_plain(c).items() if k not in unused}
