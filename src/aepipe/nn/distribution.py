"""Multi-device training through Keras' own engines, chosen by the backend.

``[distribution] strategy = "data_parallel"`` replicates the model on every
device and splits each batch across them:

- JAX backend (``KERAS_BACKEND=jax``): ``keras.distribution.DataParallel`` over
  ``keras.distribution.list_devices()``. On a CPU-only machine,
  ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` simulates N devices.
- TensorFlow backend: ``tf.distribute.MirroredStrategy`` (all GPUs, else the
  CPU). Keras 3 trains under it, but only when every batch splits evenly
  across replicas (a ragged last batch fails in an ``AddN``), which the feed
  guarantees by leaving out the last ``< replicas`` rows of an epoch.
- Other backends: refused with a message that points to JAX.

Everything a stage does (building, fitting, encoding) runs inside ``scope``;
the feed asks ``replicas()`` how evenly batches must split.
"""

from __future__ import annotations

import contextlib
import functools
import os

from ..errors import SpecError


def backend() -> str:
    import keras

    return keras.backend.backend()


@contextlib.contextmanager
def scope(strategy: str):
    """Run the body under ``strategy`` ("none" or "data_parallel")."""
    if strategy == "none":
        yield
        return
    if strategy != "data_parallel":
        raise SpecError(f"unknown distribution.strategy {strategy!r}; use none or data_parallel")
    name = backend()
    if name == "jax":
        with _jax_data_parallel().scope():
            yield
    elif name == "tensorflow":
        with _mirrored_strategy().scope():
            yield
    else:
        raise SpecError(f"distribution.strategy = \"data_parallel\" is not supported on the {name} backend; "
                        "set KERAS_BACKEND=jax (pip install 'aepipe[jax]')")


@functools.cache
def _jax_data_parallel():
    import keras

    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


@functools.cache
def _mirrored_strategy():
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def replicas() -> int:
    """How many devices the current batch is split across (1 outside a scope)."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        dist = keras.distribution.distribution()
        return 1 if dist is None else int(dist.device_mesh.devices.size)
    if name == "tensorflow":
        import tensorflow as tf

        return int(tf.distribute.get_strategy().num_replicas_in_sync)
    return 1


def steps_per_execution(wanted: int) -> int:
    """Keras 3.15's multi-step loop fails under ``tf.distribute.MirroredStrategy``
    ("You must feed a value for placeholder tensor"): one step per execution there."""
    return 1 if backend() == "tensorflow" and replicas() > 1 else wanted


def describe(strategy: str) -> dict:
    """What ran where, for the stage manifest."""
    out = {"strategy": strategy, "backend": backend()}
    if strategy != "none":
        with scope(strategy):
            out["replicas"] = replicas()
    if os.environ.get("XLA_FLAGS"):
        out["xla_flags"] = os.environ["XLA_FLAGS"]
    return out
