"""Autoencoder blocks: one small class per kind behind one interface.

A block knows how to build its encoder (kept and stacked into the classifier),
its decoder (used only while pretraining) and the autoencoder that trains
them together. Stages, the runner and the estimators only talk to this
interface, so a new kind is a new class here and an entry in ``BLOCKS``.
"""

from __future__ import annotations

import keras

from .layers import InputNoise
from .spec import LayerSpec


class Block:
    """Base block: subclasses provide the encoder and decoder layers."""

    kind = "base"

    def __init__(self, spec: LayerSpec, input_shape: tuple[int, ...], index: int):
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.index = index
        self.encoder = self.build_encoder()
        self.decoder = self.build_decoder()

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.encoder.compute_output_shape((None, *self.input_shape))[1:])

    def build_encoder(self) -> keras.Model:
        raise NotImplementedError

    def build_decoder(self) -> keras.Model:
        raise NotImplementedError

    def build_autoencoder(self) -> keras.Model:
        """noise -> encoder -> decoder, trained to reproduce the clean input."""
        inputs = keras.Input(self.input_shape, name="input")
        x = inputs
        noise = self.spec.noise
        if noise.kind != "none":
            x = InputNoise(noise.kind, stddev=noise.stddev, fraction=noise.fraction, name="noise")(x)
        outputs = self.decoder(self.encoder(x))
        return keras.Model(inputs, outputs, name=f"autoencoder_{self.index}")

    @property
    def loss(self) -> str:
        return self.spec.loss


class DenseBlock(Block):
    """A fully connected autoencoder layer; ``l1`` makes it a sparse one."""

    kind = "dense"

    def build_encoder(self) -> keras.Model:
        reg = keras.regularizers.L1(self.spec.l1) if self.spec.l1 > 0 else None
        return keras.Sequential([
            keras.Input(self.input_shape),
            keras.layers.Dense(self.spec.units, activation=self.spec.activation,
                               activity_regularizer=reg, name="dense"),
        ], name=f"encoder_{self.index}")

    def build_decoder(self) -> keras.Model:
        (n_in,) = self.input_shape
        return keras.Sequential([
            keras.Input((self.spec.units,)),
            keras.layers.Dense(n_in, activation=self.spec.decoder_activation, name="dense"),
        ], name=f"decoder_{self.index}")


BLOCKS: dict[str, type[Block]] = {"dense": DenseBlock}


def make_block(spec: LayerSpec, input_shape: tuple[int, ...], index: int) -> Block:
    return BLOCKS[spec.kind](spec, input_shape, index)


def build_classifier(encoders: list[keras.Model], input_shape, n_classes: int,
                     dropout: float = 0.0) -> keras.Model:
    """The stacked classifier: every encoder in order, then a softmax head.

    Only stock Keras layers, so the model exports to a ``.keras`` file that
    plain ``keras.saving.load_model`` opens with ``safe_mode`` on.
    """
    layers = [keras.Input(tuple(input_shape))]
    shape = (None, *input_shape)
    for enc in encoders:
        shape = enc.compute_output_shape(shape)
        layers.append(enc)
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(build_head(shape[1:], n_classes))
    return keras.Sequential(layers, name="stacked_classifier")


def build_head(code_shape, n_classes: int) -> keras.Model:
    layers = [keras.Input(tuple(code_shape))]
    if len(code_shape) > 1:
        layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="softmax"))
    return keras.Sequential(layers, name="head")
