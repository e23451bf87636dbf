"""Custom Keras layers aepipe needs while pretraining (never in exported models)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="aepipe")
class InputNoise(keras.layers.Layer):
    """Corrupts inputs at training time only: gaussian (clipped to [0, 1]),
    masking (a fraction zeroed) or salt_pepper (a fraction set to 0 or 1).

    Its RNG lives in ``seed_generator`` so training can reset it from
    (seed, stage key, epoch) and a resumed run draws the same noise.
    """

    def __init__(self, kind: str, stddev: float = 0.1, fraction: float = 0.25, seed=None, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("gaussian", "masking", "salt_pepper"):
            raise ValueError(f"Received an invalid value for `kind`: {kind!r}")
        self.kind, self.stddev, self.fraction, self.seed = kind, float(stddev), float(fraction), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, x, training=False):
        if not training:
            return x
        if self.kind == "gaussian":
            noisy = x + keras.random.normal(ops.shape(x), stddev=self.stddev, seed=self.seed_generator)
            return ops.clip(noisy, 0.0, 1.0)
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
                "fraction": self.fraction, "seed": self.seed}
