"""Autoencoder blocks: one small class per kind behind one interface.

A block knows how to build its encoder (kept and stacked into the classifier),
its decoder (used only while pretraining) and the autoencoder that trains
them together. Stages, the runner and the estimators only talk to this
interface, so a new kind is a new class here and an entry in ``BLOCKS``.

Encoders use stock Keras layers only, so an exported classifier opens in plain
Keras; the custom layers (noise, tied decoder, sampler) live in decoders and
training-only models.
"""

from __future__ import annotations

import math

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras

from .layers import InputNoise, TiedDense, VariationalSampler
from ..config.shapes import image_shape
from ..config.shapes import output_shape as expected_output_shape
from ..config.spec import LayerSpec
from ..engine.seeds import derive_seed


class Block:
    """Base block: subclasses provide the encoder and decoder layers."""

    kind = "base"

    def __init__(self, spec: LayerSpec, input_shape: tuple[int, ...], index: int, seed: int | None = None):
        """``seed``: draw the encoder's and the decoder's initial weights from
        (seed, role, index), so neither depends on what else was built before
        it (a tied decoder draws no kernel); None: Keras' global seed, in order."""
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.index = index
        expected_output_shape(spec, self.input_shape, index)  # clear SpecError before Keras' own
        reseed_for(seed, "encoder", index)
        self.encoder = self.build_encoder()
        reseed_for(seed, "decoder", index)
        self.decoder = self.build_decoder()

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.encoder.compute_output_shape((None, *self.input_shape))[1:])

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    def build_encoder(self) -> keras.Model:
        raise NotImplementedError

    def build_decoder(self) -> keras.Model:
        raise NotImplementedError

    def corrupt(self, x):
        """The block's input noise (training only), or ``x`` unchanged."""
        noise = self.spec.noise
        if noise.kind == "none":
            return x
        return InputNoise(noise.kind, stddev=noise.stddev, fraction=noise.fraction,
                          clip=self.spec.loss == "binary_crossentropy",  # [0, 1] inputs only
                          name=f"noise_{self.index}")(x)

    def code(self, x):
        """Input tensor -> the code the decoder reads while training."""
        return self.encoder(x)

    def build_autoencoder(self) -> keras.Model:
        """noise -> encoder -> decoder, trained to reproduce the clean input."""
        inputs = keras.Input(self.input_shape, name="input")
        outputs = self.decoder(self.code(self.corrupt(inputs)))
        return keras.Model(inputs, outputs, name=f"autoencoder_{self.index}")

    @property
    def loss(self) -> str:
        return self.spec.loss

    def _sequential(self, role: str, input_shape, layers) -> keras.Model:
        # every layer is named: Keras' default names count up per process and are
        # written into weight files, which would then depend on what ran before
        return keras.Sequential([keras.Input(tuple(input_shape)), *layers], name=f"{role}_{self.index}")

    def _flatten(self) -> list:
        return [keras.layers.Flatten(name="flatten")] if len(self.input_shape) > 1 else []

    def _unflatten(self) -> list:
        return [keras.layers.Reshape(self.input_shape, name="unflatten")] if len(self.input_shape) > 1 else []


class DenseBlock(Block):
    """A fully connected autoencoder layer: ``l1`` makes it sparse, ``tied``
    makes the decoder reuse the transposed encoder kernel."""

    kind = "dense"

    def build_encoder(self) -> keras.Model:
        reg = keras.regularizers.L1(self.spec.l1) if self.spec.l1 > 0 else None
        return self._sequential("encoder", self.input_shape, [
            *self._flatten(),
            keras.layers.Dense(self.spec.units, activation=self.spec.activation,
                               activity_regularizer=reg, name="dense"),
        ])

    def build_decoder(self) -> keras.Model:
        act = self.spec.decoder_activation
        if self.spec.tied:
            out = TiedDense(self.n_features, act, tied_to=self.encoder.get_layer("dense"), name="tied_dense")
        else:
            out = keras.layers.Dense(self.n_features, activation=act, name="dense")
        return self._sequential("decoder", (self.spec.units,), [out, *self._unflatten()])


class ConvBlock(Block):
    """Conv2D + max pooling; the decoder upsamples (UpSampling2D + Conv2D, or a
    strided Conv2DTranspose) back to the input maps. Flat square rows are
    reshaped to one-channel images and back."""

    kind = "conv"

    @property
    def image(self) -> tuple[int, int, int]:
        return image_shape(self.input_shape)

    def build_encoder(self) -> keras.Model:
        s = self.spec
        layers = [] if self.image == self.input_shape else [keras.layers.Reshape(self.image, name="to_image")]
        layers.append(keras.layers.Conv2D(s.filters, s.kernel_size, padding="same", activation=s.activation,
                                          activity_regularizer=keras.regularizers.L1(s.l1) if s.l1 else None,
                                          name="conv"))
        if s.pool_size > 1:
            layers.append(keras.layers.MaxPooling2D(s.pool_size, name="pool"))
        return self._sequential("encoder", self.input_shape, layers)

    def build_decoder(self) -> keras.Model:
        s, channels = self.spec, self.image[-1]
        if s.upsampling == "transpose":
            layers = [keras.layers.Conv2DTranspose(channels, s.kernel_size, strides=s.pool_size, padding="same",
                                                   activation=s.decoder_activation, name="deconv")]
        else:
            layers = [keras.layers.UpSampling2D(s.pool_size, name="upsample")] if s.pool_size > 1 else []
            layers.append(keras.layers.Conv2D(channels, s.kernel_size, padding="same",
                                              activation=s.decoder_activation, name="conv"))
        if self.image != self.input_shape:
            layers.append(keras.layers.Reshape(self.input_shape, name="from_image"))
        return self._sequential("decoder", self.output_shape, layers)


class LSTMBlock(Block):
    """Sequence-to-sequence: LSTM encoder -> code -> RepeatVector -> LSTM
    decoder -> per-step Dense back to the features, on (timesteps, features)."""

    kind = "lstm"

    def build_encoder(self) -> keras.Model:
        return self._sequential("encoder", self.input_shape, [
            keras.layers.LSTM(self.spec.units, activation=self.spec.activation, name="lstm")])

    def build_decoder(self) -> keras.Model:
        timesteps, features = self.input_shape
        return self._sequential("decoder", (self.spec.units,), [
            keras.layers.RepeatVector(timesteps, name="repeat"),
            keras.layers.LSTM(self.spec.units, activation=self.spec.activation, return_sequences=True,
                              name="lstm"),
            keras.layers.Dense(features, activation=self.spec.decoder_activation, name="dense"),
        ])


class VariationalBlock(Block):
    """A variational autoencoder layer: Gaussian latent of ``units`` dimensions,
    reparameterized sampling and a weighted KL term while training; its encoder
    (what is stacked and exported) outputs the latent mean."""

    kind = "variational"

    def _hidden(self) -> list:
        s = self.spec
        return [keras.layers.Dense(s.hidden, activation=s.activation, name="hidden")] if s.hidden else []

    def build_encoder(self) -> keras.Model:
        return self._sequential("encoder", self.input_shape, [
            *self._flatten(), *self._hidden(), keras.layers.Dense(self.spec.units, name="z_mean")])

    def build_decoder(self) -> keras.Model:
        return self._sequential("decoder", (self.spec.units,), [
            *self._hidden(),
            keras.layers.Dense(self.n_features, activation=self.spec.decoder_activation, name="dense"),
            *self._unflatten()])

    def code(self, x):
        """A sample of q(z|x): the encoder's trunk feeds z_mean and z_log_var."""
        *trunk, z_mean = self.encoder.layers
        for layer in trunk:
            x = layer(x)
        z_log_var = keras.layers.Dense(self.spec.units, name=f"z_log_var_{self.index}")(x)
        return VariationalSampler(self.spec.kl_weight, self.n_features, name=f"sampler_{self.index}")(
            [z_mean(x), z_log_var])


BLOCKS: dict[str, type[Block]] = {"dense": DenseBlock, "conv": ConvBlock, "lstm": LSTMBlock,
                                  "variational": VariationalBlock}


def reseed_for(seed: int | None, role: str, index: int = 0) -> None:
    """Keras initializers draw their seeds when they are created: reseeding
    before each part makes its initial weights a function of (seed, role, index)."""
    if seed is not None:
        keras.utils.set_random_seed(derive_seed(seed, role, index))


def make_block(spec: LayerSpec, input_shape: tuple[int, ...], index: int, seed: int | None = None) -> Block:
    return BLOCKS[spec.kind](spec, input_shape, index, seed)


def stack_blocks(layers, input_shape, seed: int | None = None) -> list[Block]:
    """Fresh (random-init) blocks for every layer spec, each sized from the one below
    (``seed``: each part's initial weights drawn from its role, see ``Block``)."""
    blocks, shape = [], tuple(input_shape)
    for i, layer in enumerate(layers):
        blocks.append(make_block(layer, shape, i, seed))
        shape = blocks[-1].output_shape
    return blocks
