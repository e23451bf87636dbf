"""Block kinds behind one interface: shapes, tied weights, VAE loss, noise, and
the spec and shape errors that guard them."""

import dataclasses

import numpy as np
import pytest

from aepipe import config as spec
from aepipe.config import shapes
from aepipe.data import sources as data
from aepipe.errors import SpecError

keras = pytest.importorskip("keras")

from aepipe.nn.blocks import BLOCKS, make_block  # noqa: E402
from aepipe.nn.layers import InputNoise  # noqa: E402


def layer(**kw):
    kw.setdefault("decoder_activation", "sigmoid")
    kw.setdefault("loss", "binary_crossentropy")
    return spec.LayerSpec(**kw)


@pytest.mark.parametrize("kw, input_shape, code_shape", [
    (dict(units=8), (64,), (8,)),
    (dict(units=8, tied=True), (64,), (8,)),
    (dict(units=8), (4, 4, 2), (8,)),  # dense on feature maps: flattened, reshaped back
    (dict(kind="conv", filters=4), (64,), (4, 4, 4)),  # flat square rows read as 8x8x1
    (dict(kind="conv", filters=3, upsampling="transpose"), (8, 8, 2), (4, 4, 3)),
    (dict(kind="conv", filters=3, pool_size=1), (8, 8, 1), (8, 8, 3)),
    (dict(kind="lstm", units=5, activation="tanh"), (6, 2), (5,)),
    (dict(kind="variational", units=2, hidden=8), (64,), (2,)),
])
def test_every_kind_round_trips_its_input_shape(kw, input_shape, code_shape):
    block = make_block(layer(**kw), input_shape, 0)
    assert block.output_shape == code_shape
    ae = block.build_autoencoder()
    x = np.random.default_rng(0).random((5, *input_shape)).astype("float32")
    assert ae(x).shape == x.shape
    assert tuple(block.decoder(block.encoder(x)).shape) == x.shape


def test_encoders_use_only_stock_keras_layers():
    for kind, kw in [("dense", dict(tied=True, l1=1e-3)), ("conv", {}), ("lstm", {}),
                     ("variational", dict(hidden=4))]:
        shape = (6, 2) if kind == "lstm" else (64,)
        enc = make_block(layer(kind=kind, **kw), shape, 0).encoder
        for lay in enc.layers:
            assert type(lay).__module__.startswith("keras."), (kind, type(lay))
    assert set(BLOCKS) == set(spec.BLOCK_KINDS)


def test_tied_weights_halve_the_parameters():
    untied = make_block(layer(units=32), (64,), 0)
    tied = make_block(layer(units=32, tied=True), (64,), 0)
    n_untied, n_tied = untied.build_autoencoder().count_params(), tied.build_autoencoder().count_params()
    assert n_untied == 2 * 64 * 32 + 32 + 64
    assert n_tied == n_untied - 64 * 32  # one shared kernel, two biases
    assert [w.name for w in tied.decoder.weights] == ["bias"]  # the kernel is saved with the encoder


def test_tied_decoder_is_the_transposed_encoder_kernel():
    block = make_block(layer(units=4, tied=True, decoder_activation="linear", loss="mse"), (6,), 0)
    kernel = block.encoder.get_layer("dense").kernel
    kernel.assign(np.arange(24, dtype="float32").reshape(6, 4) / 10)
    code = np.ones((1, 4), dtype="float32")
    np.testing.assert_allclose(block.decoder(code), code @ np.asarray(kernel).T, rtol=1e-6)


def test_variational_block_adds_a_weighted_kl_term():
    x = np.random.default_rng(0).random((8, 64)).astype("float32")
    terms = []
    for w in (0.0, 1.0, 3.0):
        keras.utils.set_random_seed(0)
        ae = make_block(layer(kind="variational", units=2, kl_weight=w), (64,), 0).build_autoencoder()
        ae(x, training=True)
        terms.append(float(sum(np.asarray(v) for v in ae.losses)))
    assert terms[0] == 0.0 and terms[1] > 0
    assert terms[2] == pytest.approx(3 * terms[1], rel=1e-5)


def test_variational_autoencoder_is_deterministic_at_inference():
    ae = make_block(layer(kind="variational", units=2), (64,), 0).build_autoencoder()
    x = np.random.default_rng(1).random((4, 64)).astype("float32")
    np.testing.assert_array_equal(ae(x, training=False), ae(x, training=False))
    assert not np.array_equal(ae(x, training=True), ae(x, training=True))  # sampled


def test_gaussian_noise_is_clipped_only_for_unit_range_layers():
    x = np.full((200, 16), 0.99, dtype="float32")
    clipped = InputNoise("gaussian", stddev=0.5, seed=0)(x, training=True)
    free = InputNoise("gaussian", stddev=0.5, seed=0, clip=False)(x, training=True)
    assert float(np.max(clipped)) <= 1.0 and float(np.max(free)) > 1.0
    mse_block = make_block(layer(noise=spec.NoiseSpec("gaussian"), loss="mse", decoder_activation="linear"),
                           (16,), 1)
    noise = mse_block.build_autoencoder().get_layer("noise_1")
    assert noise.clip is False
    masked = InputNoise("masking", fraction=0.5, seed=0)(np.ones((100, 20), "float32"), training=True)
    assert 0.4 < float(np.mean(np.asarray(masked) == 0)) < 0.6


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("toml, where, message", [
    ('[[layers]]\nkind = "conv"\ntied = true', "layers.0.tied", "tied weights need a dense block"),
    ('[[layers]]\nunits = 8\n[[layers]]\nkind = "lstm"', "layers.1.kind", "only layer 0"),
    ('[[layers]]\nunits = 8\n[[layers]]\nkind = "conv"', "layers.1.kind", "cannot follow a 'dense'"),
    ('[pretrain]\nmode = "joint"\n[[layers]]\nkind = "variational"', "layers.0.kind", "greedily"),
    ('[[layers]]\nstop_gradient = true', "layers.0.stop_gradient", "layer_matching"),
    ('[[layers]]\nnoise = { kind = "gaussian", stddev = -0.1 }', "stddev", "must be a number >= 0"),
    ('[[layers]]\nkind = "rbm"', "layers.0.kind", "must be one of dense, conv, lstm, variational"),
    ('[[layers]]\nkind = "variational"\nkl_weight = -1', "kl_weight", "must be a number >= 0"),
    ('[[layers]]\nkind = "conv"\npool_size = 0', "pool_size", "positive"),
    ('[[layers]]\nkind = "conv"\nupsampling = "nearest"', "upsampling", "upsampling, transpose"),
    ('[pretrain]\nmode = "stacked"', "mode", "greedy, joint, layer_matching"),
])
def test_spec_rejects_bad_options_with_their_key(toml, where, message):
    with pytest.raises(SpecError) as e:
        spec.loads(toml, "p.toml")
    assert where in str(e.value.message) and message in str(e.value.message)


@pytest.mark.parametrize("toml, input_shape, message", [
    ('[[layers]]\nkind = "lstm"', (64,), "an lstm block needs sequences of shape (timesteps, features)"),
    ('[[layers]]\nkind = "conv"', (63,), "needs images"),
    ('[[layers]]\nkind = "conv"\npool_size = 3', (64,), "pool_size 3 does not divide the 8x8"),
    ('[[layers]]\nkind = "conv"\n[[layers]]\nkind = "conv"\n[[layers]]\nkind = "conv"\n'
     '[[layers]]\nkind = "conv"', (64,), "layers.3.pool_size"),
])
def test_shapes_the_data_cannot_take_are_spec_errors(toml, input_shape, message):
    with pytest.raises(SpecError) as e:
        shapes.check_shapes(spec.loads(toml), input_shape)
    assert message in str(e.value.message)


def test_a_bad_shape_is_refused_before_keras_builds_anything():
    with pytest.raises(SpecError, match="lstm"):
        make_block(layer(kind="lstm"), (64,), 0)


def test_sequences_source_is_labelled_unit_range_sequences():
    ds = data.load(spec.DataSpec(source="sequences"))
    assert ds.x_train.shape[1:] == (24, 2) and ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.n_classes == 4 and len(ds.x_train) + len(ds.x_test) == 1600
    again = data.load(spec.DataSpec(source="sequences"))
    assert again.fingerprint == ds.fingerprint


def test_layer_defaults_from_pretrain_reach_every_layer():
    s = spec.loads('[pretrain]\ntied = true\nactivation = "selu"\n[[layers]]\nunits = 8\n'
                   '[[layers]]\nunits = 4\ntied = false')
    assert [(la.tied, la.activation) for la in s.layers] == [(True, "selu"), (False, "selu")]
    assert dataclasses.replace(s.layers[0], tied=False) != s.layers[0]
