"""bfloat16 pretraining (``precision`` on a layer, or in ``[pretrain]`` for every
layer): it trains like float32, saves float32 weights, reports codes and errors
computed at float32, and keys only the layers it is set on."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from aepipe.config.parse import loads
from aepipe.data import sources
from aepipe.engine.store import Store
from aepipe.errors import SpecError
from aepipe.nn.blocks import make_block, stack_blocks
from aepipe.pipeline.runner import Runner

STACK = """
[pretrain]
epochs = 6
optimizer = "adam"
{pretrain}
[[layers]]
units = 32
{layer0}
[[layers]]
units = 8
"""


def _pretrained(tmp_path, pretrain="", layer0=""):
    spec = loads(STACK.format(pretrain=pretrain, layer0=layer0))
    result = Runner(spec, Store(tmp_path)).run("pretrain")
    return spec, {s.name: Path(s.path) for s in result.stages}


def _metrics(stage: Path) -> dict:
    return json.loads((stage / "manifest.json").read_text())["metrics"]


def _float_dtypes(path: Path) -> set:
    found = set()
    with h5py.File(path) as f:
        f.visititems(lambda _, obj: found.add(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
    return {d for d in found if d.kind == "f"}


def test_bfloat16_layer_learns_like_float32_and_reports_float32_codes(tmp_path):
    spec, mixed = _pretrained(tmp_path / "bf16", layer0='precision = "bfloat16"')
    _, plain = _pretrained(tmp_path / "f32")
    err = {name: _metrics(d["pretrain-0"])["reconstruction_mse"] for name, d in (("bf16", mixed), ("f32", plain))}
    assert err["bf16"] == pytest.approx(err["f32"], rel=0.2), err
    assert err["bf16"] != err["f32"]  # it did train in another dtype
    assert _float_dtypes(mixed["pretrain-0"] / "encoder.weights.h5") == {np.dtype("float32")}
    # the stored codes are those of a float32 encoder holding the saved weights, bit for bit
    data = sources.load(spec.data)
    block = make_block(spec.layers[0], data.input_shape, 0)
    block.encoder.load_weights(mixed["pretrain-0"] / "encoder.weights.h5")
    assert block.encoder.compute_dtype == "float32"
    codes = np.load(mixed["pretrain-0"] / "encodings/train.npy")
    np.testing.assert_array_equal(codes, block.encoder.predict(data.x_train, batch_size=1024, verbose=0))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back


def test_precision_keys_only_the_layers_that_set_it(tmp_path):
    def keys(text):
        return {s.name: s.key for s in Runner(loads(text), Store(tmp_path)).plan() if s.kind == "pretrain"}

    base = "[[layers]]\nunits = 16\n[[layers]]\nunits = 8\n"
    plain = keys(base)
    assert keys(base.replace("units = 16", 'units = 16\nprecision = "float32"')) == plain  # the default: same key
    top = keys(base + 'precision = "bfloat16"\n')  # layer 1 only
    assert top["pretrain-0"] == plain["pretrain-0"] and top["pretrain-1"] != plain["pretrain-1"]
    every = keys('[pretrain]\nprecision = "bfloat16"\n' + base)
    assert all(every[name] != plain[name] for name in plain)


def test_a_joint_stack_trains_in_layer_0s_precision(tmp_path):
    with pytest.raises(SpecError, match=r"layers\.1\.precision: .*layer 0's precision"):
        loads('[pretrain]\nmode = "joint"\n[[layers]]\nunits = 16\n[[layers]]\nunits = 8\nprecision = "bfloat16"\n')
    spec, dirs = _pretrained(tmp_path, pretrain='mode = "joint"\nprecision = "bfloat16"')
    data = sources.load(spec.data)
    blocks = stack_blocks(spec.layers, data.input_shape)
    for i, block in enumerate(blocks):
        block.encoder.load_weights(dirs["pretrain-0"] / f"layers/{i}/encoder.weights.h5")
    assert _float_dtypes(dirs["pretrain-0"] / "layers/1/encoder.weights.h5") == {np.dtype("float32")}
    for i, name in enumerate(("pretrain-0", "pretrain-1")):  # each layer's codes, from float32 blocks
        encoder = keras.Sequential([keras.Input(data.input_shape), *[b.encoder for b in blocks[:i + 1]]])
        np.testing.assert_array_equal(np.load(dirs[name] / "encodings/train.npy"),
                                      encoder.predict(data.x_train, batch_size=1024, verbose=0))
