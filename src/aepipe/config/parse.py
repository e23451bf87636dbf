"""Reading a pipeline: TOML -> validated ``PipelineSpec``, with ``--set`` overrides.

Unknown keys name the file, the key and the closest valid key; a field set on
a layer that cannot use it (``filters`` on a dense block) is an error too, so
nothing a user writes is silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .hardware import resolve_precision
from .relevance import ignored_layer_keys
from .spec import DEFAULT_PIPELINE_TOML, LAYER_DEFAULT_KEYS, LayerSpec, PipelineSpec, PretrainSpec, public_fields


def load(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> PipelineSpec:
    """Read a pipeline file (or the embedded default), apply ``--set`` overrides, validate."""
    raw, where = load_raw(path, overrides)
    return from_dict(raw, where)


def load_raw(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> tuple[dict, str]:
    """The TOML dict ``load`` validates (``--set`` applied, not yet validated) and where it came from."""
    if path is None:
        where = "<built-in digits>"
        return _raw(DEFAULT_PIPELINE_TOML, where, overrides), where
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("pipeline file not found", where) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read pipeline file ({e.__class__.__name__})", where) from None
    return _raw(text, where, overrides, default_name=Path(path).stem), where


def loads(text: str, where: str = "<string>", overrides: typing.Sequence[str] = (),
          default_name: str | None = None) -> PipelineSpec:
    """``default_name``: the pipeline's name when the text sets none (a file's stem),
    so two files without ``name`` never share a record."""
    return from_dict(_raw(text, where, overrides, default_name), where)


def read_toml(text: str, where: str = "<string>") -> dict:
    """TOML text as a dict; a syntax error is a ``SpecError`` naming ``where``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"TOML syntax error: {e}", where) from None


def _raw(text: str, where: str, overrides: typing.Sequence[str], default_name: str | None = None) -> dict:
    raw = read_toml(text, where)
    if default_name is not None:
        raw.setdefault("name", default_name)
    for item in overrides:
        apply_override(raw, item)
    return raw


def from_dict(raw: dict, where: str = "<dict>", strict: bool = True) -> PipelineSpec:
    """A validated spec from a TOML-shaped dict. ``strict``: a field set on a layer
    that ignores it is an error (what users write); off for dicts aepipe wrote
    itself (``spec.json``, ``PipelineSpec.to_dict()``), which list every field."""
    raw = dict(raw)
    for table in ("data", "pretrain", "unroll", "head", "finetune", "evaluate", "cluster", "distribution", "tracking"):
        if table in raw and not isinstance(raw[table], dict):  # `--set pretrain=0` must not reset the table
            raise SpecError(f"is a table; got {raw[table]!r} (set one of its fields, e.g. {table}.epochs)"
                            if table in ("pretrain", "unroll", "head", "finetune") else f"is a table; got {raw[table]!r}",
                            f"{where}: {table}")
    layer_defaults = dict(raw.get("pretrain", {}))
    pretrain_raw = {k: layer_defaults.pop(k) for k in list(layer_defaults)
                    if k in {f.name for f in dataclasses.fields(PretrainSpec)}}
    for k in layer_defaults:
        if k == "units":
            raise SpecError("is set per layer ([[layers]] units = ...), not in [pretrain]", f"{where}: pretrain.units")
        if k not in LAYER_DEFAULT_KEYS:
            _unknown(k, list(LAYER_DEFAULT_KEYS) + ["mode", "match_weight"], f"{where}::pretrain.{k}")
    raw["pretrain"] = pretrain_raw
    hints, fields = typing.get_type_hints(LayerSpec), {f.name: f for f in dataclasses.fields(LayerSpec)}
    for k, v in layer_defaults.items():  # blame the key the user wrote (pretrain.epochs), not layers.0.epochs
        _coerce(v, hints[k], fields[k], f"{where}::pretrain.{k}")

    layers = raw.get("layers", None)
    if layers is None:
        layers = [{}]
    if not isinstance(layers, list) or not layers:
        raise SpecError("must be a non-empty array of tables ([[layers]])", f"{where}: layers")
    resolved = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise SpecError("must be a table", f"{where}: layers.{i}")
        merged = {**layer_defaults, **layer}
        if isinstance(layer_defaults.get("noise"), dict) and isinstance(layer.get("noise"), dict):
            merged["noise"] = {**layer_defaults["noise"], **layer["noise"]}
        resolved.append(_build(LayerSpec, merged, f"{where}::layers.{i}"))
    unrolled = isinstance(raw.get("unroll"), dict) and bool(raw["unroll"].get("epochs", 0))
    raw["layers"] = tuple(_resolve_auto(layer, i, resolved[i - 1].activation if unrolled and i else None)
                          for i, layer in enumerate(resolved))
    for table in ("finetune", "unroll"):  # "auto" precision becomes what this machine computes natively
        if isinstance(raw.get(table), dict) and raw[table].get("precision") == "auto":
            raw[table] = {**raw[table], "precision": resolve_precision("auto")}
    spec = _build(PipelineSpec, raw, where)
    if resolved[0].decoder_activation == "auto":  # step one assumed data in [0, 1]; resolve_layer0 decides
        spec = dataclasses.replace(spec, layer0_auto=tuple(
            k for k in ("decoder_activation", "loss") if getattr(resolved[0], k) == "auto"))
    check_stack(spec, where)
    for i, layer in enumerate(layers if strict else []):
        for key, why in ignored_layer_keys(spec, i, layer):
            raise SpecError(f"has no effect here: {why}", f"{where}::layers.{i}.{key}")
    return spec


def check_stack(spec: PipelineSpec, where: str = "<dict>") -> None:
    """Rules that involve more than one field: which kinds stack on which, and
    which options a kind or a mode accepts."""
    mode = spec.pretrain.mode
    fs = spec.finetune
    if fs.pseudo_labels and fs.pseudo_labels_end < fs.pseudo_labels_start:
        raise SpecError(f"the pseudo-label ramp ends (epoch {fs.pseudo_labels_end}) before it starts "
                        f"(epoch {fs.pseudo_labels_start})", f"{where}: finetune.pseudo_labels_end")
    if fs.semi_supervised and spec.distribution.strategy != "none":
        raise SpecError("pseudo_labels, reconstruction_weight and vat_weight train on one device; set "
                        "distribution.strategy = \"none\"", f"{where}: distribution.strategy")
    d = spec.data
    if d.validation_labels is not None and (d.labels is None or d.validation_labels > d.labels):
        why = ("needs few-label mode (data.labels)" if d.labels is None else
               f"is {d.validation_labels}, more than the {d.labels} training labels (data.labels)")
        raise SpecError(f"{why}: extra validation rows may be at most as many as the labeled rows",
                        f"{where}: data.validation_labels")
    us = spec.unroll
    if us.epochs and us.warmup >= us.epochs:
        raise SpecError(f"the warm-up ({us.warmup} epochs) must end before the last of the {us.epochs} unroll "
                        "epochs", f"{where}: unroll.warmup")
    for i, layer in enumerate(spec.layers):
        here = f"{where}::layers.{i}"
        if layer.tied and layer.kind != "dense":
            raise SpecError(f"tied weights need a dense block, this one is {layer.kind!r}", f"{here}.tied")
        if layer.tied and fs.reconstruction_weight:  # the decoders would reconstruct through a frozen copy
            raise SpecError("tied decoders cannot be fine-tuned with finetune.reconstruction_weight (they "
                            "would reconstruct through a frozen copy of the kernel); set one of layers."
                            f"{i}.tied = false or finetune.reconstruction_weight = 0", f"{here}.tied")
        if layer.kind == "lstm" and i > 0:
            raise SpecError("an lstm block reads (timesteps, features) sequences, so only layer 0 can be one",
                            f"{here}.kind")
        if layer.kind == "conv" and i > 0 and spec.layers[i - 1].kind != "conv":
            raise SpecError(f"a conv block needs feature maps; it cannot follow a {spec.layers[i - 1].kind!r} "
                            "block (put conv blocks first, dense blocks after)", f"{here}.kind")
        if layer.kind == "variational" and mode != "greedy":
            raise SpecError(f"variational blocks are pretrained greedily; pretrain.mode is {mode!r}",
                            f"{here}.kind")
        if layer.kind == "variational" and spec.unroll.epochs:
            raise SpecError(f"unroll fine-tunes deterministic autoencoders; layer {i} is variational "
                            "(set unroll.epochs = 0)", f"{where}: unroll.epochs")
        if layer.stop_gradient and mode != "layer_matching":
            raise SpecError(f"stop_gradient applies to pretrain.mode = \"layer_matching\", not {mode!r}",
                            f"{here}.stop_gradient")


def _resolve_auto(layer: LayerSpec, index: int, mirror: str | None = None, unit_range: bool = True) -> LayerSpec:
    """The "auto" rule, the one home of it. Layer 0 reconstructs the data: sigmoid +
    binary cross-entropy when they lie in [0, 1] (``unit_range``), else a linear
    decoder + MSE. Deeper layers reconstruct unbounded codes (linear + MSE), as in
    the mnist.toml recipe. ``mirror``: in a pipeline with an unroll stage, the
    activation of the layer below, which this decoder reproduces: linear decoders
    would stack into one linear map, so the unrolled decoder could only be
    sigmoid(affine(code)). An "auto" loss is binary cross-entropy after a sigmoid
    decoder, else MSE."""
    dec = layer.decoder_activation
    if dec == "auto":
        dec = ("sigmoid" if unit_range else "linear") if index == 0 else mirror or "linear"
    loss = layer.loss
    if loss == "auto":
        loss = "binary_crossentropy" if dec == "sigmoid" else "mse"
    return dataclasses.replace(layer, decoder_activation=dec, loss=loss)


def resolve_layer0(spec: PipelineSpec, unit_range: typing.Callable[[], bool]) -> PipelineSpec:
    """Layer 0's "auto" decoder and loss, in two steps, as they depend on the data.

    Step one, ``from_dict``, resolves every layer before any data are read,
    taking layer 0's data to lie in [0, 1], and records in ``spec.layer0_auto``
    which of its fields were "auto" (none when its decoder_activation was given:
    an "auto" loss then follows that decoder). Step two, here, is where the data
    are known (the Runner, the estimators): those fields are resolved again with
    ``unit_range()``, whether the training inputs lie in [0, 1], which is asked
    only when there is such a field, so a pipeline that names layer 0's decoder
    never needs the data's range. For data in [0, 1] the spec, spec.json and
    every stage key stay exactly what step one gave."""
    if not spec.layer0_auto:
        return spec
    written = dataclasses.replace(spec.layers[0], **dict.fromkeys(spec.layer0_auto, "auto"))
    first = _resolve_auto(written, 0, unit_range=unit_range())
    return dataclasses.replace(spec, layers=(first, *spec.layers[1:]), layer0_auto=())


def _unknown(key: str, valid: list[str], where: str):
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    raise SpecError(f"unknown key{hint}", where)


def _build(cls, raw: Any, where: str):
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, dict):
        raise SpecError(f"must be a table, got {raw!r}", where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in public_fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        here = f"{where}.{key}" if "::" in where else f"{where}::{key}"
        if key not in fields:
            _unknown(key, list(fields), here)
        kwargs[key] = _coerce(value, hints[key], fields[key], here)
    return cls(**kwargs)


def _coerce(value, hint, fld, where):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        return tuple(value)  # layers, already built
    optional = origin is typing.Union or origin is types.UnionType
    base = hint
    if optional:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0]
        if len(args) > 1:  # int | str (batch_size: a number or "auto"): the value's own type, checked below
            base = next((a for a in args if isinstance(value, a) and not isinstance(value, bool)), base)
        elif value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        lower = f" (TOML writes it {value.lower()})" if base is bool and value in ("True", "False") else ""
        raise SpecError(f"expected {base.__name__}, got {value!r}{lower}", where)
    choices = fld.metadata.get("choices")
    if choices and value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint_txt = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"must be one of {', '.join(choices)}; got {value!r}{hint_txt}", where)
    check = fld.metadata.get("check")
    if check and not check[0](value):
        raise SpecError(f"must be {check[1]}, got {value!r}", where)
    return value


# ---------------------------------------------------------------- overrides


def parse_value(text: str) -> Any:
    """A TOML literal (`5`, `0.1`, `true`, `"adam"`), or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict, item: str) -> None:
    """Apply `a.b=v` or `layers.1.units=v` to the raw TOML dict, in place."""
    if "=" not in item:
        raise SpecError(f"--set expects KEY=VALUE, got {item!r}")
    dotted, text = item.split("=", 1)
    parts = [p for p in dotted.strip().split(".")]
    if not all(parts):
        raise SpecError(f"--set: bad key {dotted!r}")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpecError(f"--set {dotted}: no {here!r} (there are {len(node)} layers)")
            node = node[int(part)]
        else:
            if part == "layers" and "layers" not in node:
                node["layers"] = [{}]
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise SpecError(f"--set {dotted}: {here!r} is not a table")
    last = parts[-1]
    if isinstance(node, list):
        raise SpecError(f"--set {dotted}: give a field of one layer, e.g. layers.0.units")
    node[last] = parse_value(text.strip())
