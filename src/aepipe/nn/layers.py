"""Custom Keras layers aepipe needs while pretraining (never in exported models)."""

from __future__ import annotations

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="aepipe")
class InputNoise(keras.layers.Layer):
    """Corrupts inputs at training time only: gaussian (clipped to [0, 1] unless ``clip=False``),
    masking (a fraction zeroed) or salt_pepper (a fraction set to 0 or 1).

    Its RNG lives in ``seed_generator`` so training can reset it from
    (seed, stage key, epoch) and a resumed run draws the same noise.
    """

    def __init__(self, kind: str, stddev: float = 0.1, fraction: float = 0.25, seed=None, clip: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if kind not in ("gaussian", "masking", "salt_pepper"):
            raise ValueError(f"Received an invalid value for `kind`: {kind!r}")
        self.kind, self.stddev, self.fraction, self.seed = kind, float(stddev), float(fraction), seed
        self.clip = bool(clip)  # gaussian: keep [0, 1] inputs in range; off for unbounded codes
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, x, training=False):
        if not training:
            return x
        if self.kind == "gaussian":
            noisy = x + keras.random.normal(ops.shape(x), stddev=self.stddev, dtype=x.dtype,
                                            seed=self.seed_generator)
            return ops.clip(noisy, 0.0, 1.0) if self.clip else noisy
        u = keras.random.uniform(ops.shape(x), seed=self.seed_generator)
        hit = ops.cast(u < self.fraction, x.dtype)
        if self.kind == "masking":
            return x * (1.0 - hit)
        salt = ops.cast(keras.random.uniform(ops.shape(x), seed=self.seed_generator) < 0.5, x.dtype)
        return x * (1.0 - hit) + salt * hit

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "stddev": self.stddev,
                "fraction": self.fraction, "seed": self.seed, "clip": self.clip}


class _Untracked:
    """Holds a reference Keras must not track (and so must not save twice)."""

    def __init__(self, obj):
        self.obj = obj


@keras.saving.register_keras_serializable(package="aepipe")
class TiedDense(keras.layers.Layer):
    """A decoder layer that reuses the transpose of an encoder ``Dense`` kernel
    and owns only its bias: a tied-weights autoencoder has about half the
    parameters of an untied one.

    The kernel stays a weight of the encoder, so it is saved (and exported) once,
    with the encoder; the block that builds this layer ties it again on load.
    """

    def __init__(self, units: int, activation=None, tied_to=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Received an invalid value for `units`, expected a positive integer. "
                             f"Received: units={units}")
        self.units = units
        self.activation = keras.activations.get(activation)
        self._source = _Untracked(tied_to)

    def build(self, input_shape):
        source = self._source.obj
        if source is None:
            raise ValueError("TiedDense needs `tied_to`, the encoder Dense layer whose kernel it reuses")
        if tuple(source.kernel.shape) != (self.units, input_shape[-1]):
            raise ValueError(f"TiedDense: encoder kernel has shape {tuple(source.kernel.shape)}, "
                             f"expected {(self.units, input_shape[-1])}")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        kernel = self._source.obj.kernel
        return self.activation(ops.matmul(x, ops.transpose(kernel)) + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="aepipe")
class VariationalSampler(keras.layers.Layer):
    """z = mean + exp(log_var / 2) * eps (the reparameterization trick), adding
    ``kl_weight * KL(q(z|x) || N(0, I))`` to the model's losses.

    The KL term is summed over latent dimensions, averaged over the batch and
    divided by ``n_features`` so it sits on the same per-feature scale as Keras'
    mean reconstruction losses: ``kl_weight = 1`` is the evidence lower bound.
    At inference the sampler returns the mean.
    """

    def __init__(self, kl_weight: float = 1.0, n_features: int = 1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl_weight < 0:
            raise ValueError(f"Received an invalid value for `kl_weight`, expected >= 0. Received: {kl_weight}")
        self.kl_weight, self.n_features, self.seed = float(kl_weight), int(n_features), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        kl = -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)
        self.add_loss(self.kl_weight * ops.mean(kl) / self.n_features)
        if not training:
            return mean
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight, "n_features": self.n_features,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="aepipe")
class StopGradient(keras.layers.Layer):
    """Identity forward, no gradient backward (a layer, since Lambda is banned)."""

    def call(self, x):
        return ops.stop_gradient(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="aepipe")
class MatchingLoss(keras.layers.Layer):
    """Adds ``weight * loss(target, output)`` to the model's losses and passes
    ``carry`` through: the per-depth term of layer-matching pretraining, kept
    on the path to the model's one output so Keras keeps it in the graph."""

    def __init__(self, loss: str = "mse", weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.loss_name, self.weight = loss, float(weight)
        self._loss = keras.losses.get(loss)

    def call(self, inputs):
        target, output, carry = inputs
        self.add_loss(self.weight * ops.mean(self._loss(target, output)))
        return carry

    def compute_output_shape(self, input_shape):
        return input_shape[2]

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name, "weight": self.weight}
