"""joint and layer_matching pretraining: the stage graph, the deep models, and
that head / fine-tune / evaluate read their outputs like greedy ones."""

import numpy as np
import pytest

from aepipe import config as spec
from aepipe.engine import plan
from aepipe.engine.plan import Fingerprint

FP = Fingerprint("fp", "fp")

LM = """
[pretrain]
mode = "layer_matching"
epochs = 2
batch_size = 64
[[layers]]
units = 16
[[layers]]
units = 8
stop_gradient = true
[[layers]]
units = 4
"""


def test_deep_modes_plan_one_training_stage_and_per_layer_views():
    s = spec.loads(LM)
    stages = {p.name: p for p in plan.plan(s, FP)}
    assert stages["pretrain-0"].upstream == () and len(stages["pretrain-0"].params["layers"]) == 3
    assert stages["pretrain-1"].upstream == ("pretrain-0",)
    assert stages["pretrain-2"].upstream == ("pretrain-0", "pretrain-1")
    assert stages["head"].upstream == ("pretrain-2",)
    changed = {p.name: p.key for p in plan.plan(spec.loads(LM, overrides=["layers.2.units=5"]), FP)}
    # joint training covers every layer: changing the top one retrains the deep stage
    assert changed["pretrain-0"] != stages["pretrain-0"].key
    new = {p.name: p for p in plan.plan(spec.loads(LM, overrides=["layers.2.units=5"]), FP)}
    assert plan.diff_params(stages["pretrain-0"].params, new["pretrain-0"].params) == ["layers.2.units: 4 -> 5"]
    greedy = {p.name: p.key for p in plan.plan(spec.loads(LM.replace("layer_matching", "greedy")
                                                          .replace("stop_gradient = true", "")), FP)}
    assert greedy["pretrain-0"] != stages["pretrain-0"].key


keras = pytest.importorskip("keras")

from aepipe.nn.joint import build_joint, build_layer_matching  # noqa: E402
from aepipe.nn.blocks import stack_blocks  # noqa: E402


def _grads(model, x, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        model(x, training=True)
        loss = tf.add_n(model.losses)  # the matching terms only
    return tape.gradient(loss, variables)


def test_joint_model_stacks_encoders_then_decoders():
    blocks = stack_blocks(spec.loads(LM.replace("layer_matching", "joint").replace("stop_gradient = true", "")).layers,
                          (64,))
    model = build_joint(blocks)
    x = np.random.default_rng(0).random((3, 64)).astype("float32")
    expected = x
    for b in blocks:
        expected = b.encoder(expected)
    for b in reversed(blocks):
        expected = b.decoder(expected)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5)
    assert model.count_params() == sum(b.encoder.count_params() + b.decoder.count_params() for b in blocks)


@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_keeps_matching_terms_out_of_the_layers_below(stop):
    flag = str(stop).lower()
    s = spec.loads(LM, overrides=[f"layers.1.stop_gradient={flag}", f"layers.2.stop_gradient={flag}"])
    blocks = stack_blocks(s.layers, (64,))
    model = build_layer_matching(blocks, weight=1.0)
    assert len(model(np.zeros((2, 64), "float32"), training=True).shape) == 2
    assert len(model.losses) == 2  # depths 1 and 2
    x = np.random.default_rng(0).random((8, 64)).astype("float32")
    below = blocks[0].encoder.trainable_variables
    grads = _grads(model, x, below)
    norm = sum(float(np.abs(np.asarray(g)).sum()) for g in grads if g is not None)
    # layer 1's term is the only one that reaches layer 0 (layer 2's input is layer 1's output)
    assert (norm == 0.0) == stop
    above = _grads(model, x, blocks[1].encoder.trainable_variables)
    assert sum(float(np.abs(np.asarray(g)).sum()) for g in above) > 0


def test_layer_matching_run_feeds_head_finetune_and_evaluate(tmp_path):
    from aepipe.pipeline.runner import Runner
    from aepipe.engine.store import Store

    s = spec.loads(LM + "\n[head]\nepochs = 1\n[finetune]\nepochs = 1\n")
    result = Runner(s, Store(tmp_path / "a")).run("evaluate")
    stages = {r.name: r for r in result.stages}
    assert 0 <= result.metrics["test_accuracy"] <= 1
    deep, top = stages["pretrain-0"].path, stages["pretrain-2"].path
    # the per-layer stage holds exactly the weights the deep model trained
    from pathlib import Path

    assert (Path(deep) / "layers/2/encoder.weights.h5").read_bytes() == \
        (Path(top) / "encoder.weights.h5").read_bytes()
    codes = np.load(Path(top) / "encodings/test.npy")
    assert codes.shape[1:] == (4,)
    again = Runner(s, Store(tmp_path / "a")).run("evaluate")
    assert {r.status for r in again.stages} == {"cached"}


@pytest.mark.parametrize("which", ["variational", "layer_matching"])
def test_resumed_training_is_bit_identical(which, tmp_path):
    """Sampling noise and add_loss terms come back exactly after a resume."""
    from aepipe.nn import train

    if which == "variational":
        s = spec.loads('[[layers]]\nkind = "variational"\nunits = 2\nhidden = 8\n'
                       'noise = { kind = "masking", fraction = 0.2 }')
    else:
        s = spec.loads(LM)
    x = np.random.default_rng(0).random((96, 64)).astype("float32")

    def model():
        train.seed_everything(7)
        blocks = stack_blocks(s.layers, (64,))
        m = blocks[0].build_autoencoder() if which == "variational" else build_layer_matching(blocks)
        m.compile(optimizer="adam", loss=blocks[0].loss)
        return m

    straight = model()
    train.fit(straight, x, x, epochs=2, batch_size=32, seed=3)
    first = model()
    train.fit(first, x, x, epochs=1, batch_size=32, seed=3, workdir=tmp_path)
    resumed = model()
    train.fit(resumed, x, x, epochs=2, batch_size=32, seed=3, workdir=tmp_path)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
