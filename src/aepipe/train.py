"""The one training helper every stage uses.

Why not a bare ``model.fit(x, y, shuffle=True)``: its shuffle order comes from
hidden global RNG state, so an interrupted run could not resume to the same
weights. Here each epoch's order is a stateless shuffle keyed by
(stage seed, epoch), noise/dropout RNGs are reset from the same pair at the
start of every epoch, and after every epoch the weights, optimizer variables
and history are checkpointed atomically. A resumed stage therefore ends
bit-for-bit equal to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import shutil
import sys
from pathlib import Path

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np

from . import distribution, feed
from .errors import StoreError
from .store import CHECKPOINT_DIR, atomic_write_bytes, atomic_write_json

OPTIMIZERS = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
              "sgd": keras.optimizers.SGD, "adamw": keras.optimizers.AdamW,
              "nadam": keras.optimizers.Nadam}


def derive_seed(*parts) -> int:
    """A 31-bit seed from any parts (pipeline seed, stage key, epoch...)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)


# Several steps per tf.function call: small dense steps are dominated by Python
# dispatch otherwise. Measured on 784-1000-1000-1000-10, batch 256, 2 cores:
# 1 -> 16 steps gave 1.5x epoch throughput, 16 -> 64 another 1.1x. It changes no
# arithmetic (results stay bit-identical); an execution never crosses an epoch.
STEPS_PER_EXECUTION = 64


def compile_model(model: keras.Model, optimizer: str, learning_rate: float | None, loss, metrics=None,
                  decay_steps: int | None = None) -> None:
    """Every stage compiles through here, so speed settings live in one place."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, decay_steps), loss=loss, metrics=metrics,
                  steps_per_execution=distribution.steps_per_execution(STEPS_PER_EXECUTION))


def make_optimizer(name: str, learning_rate: float | None = None, decay_steps: int | None = None):
    """A fixed ``name``: Keras would number it (``adam_3``) by how many optimizers
    this process made before, and the name is saved into ``.weights.h5``, so a
    resumed run's files would differ from an uninterrupted run's in that byte.
    With ``decay_steps`` the rate follows a cosine from its start value to 0."""
    cls = OPTIMIZERS[name]
    if decay_steps:
        start = learning_rate or inspect.signature(cls).parameters["learning_rate"].default
        learning_rate = keras.optimizers.schedules.CosineDecay(start, decay_steps)
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    return cls(name=name, **kwargs)


def fit(model: keras.Model, x, y, *, epochs: int, batch_size: int, seed: int,
        validation=None, workdir: Path | None = None, verbose: int = 0,
        callbacks=(), log=None) -> dict:
    """Train ``model`` (already compiled) and return its history as a dict.

    ``workdir`` holds the per-epoch checkpoint; when one is there, training
    continues from it.
    """
    ckpt = Checkpoint(Path(workdir) / CHECKPOINT_DIR) if workdir is not None else None
    start, history = 0, {}
    if ckpt is not None and ckpt.exists():
        start, history = ckpt.restore(model)
        if log:
            log(f"resumed from epoch {start}")
    if start >= epochs:
        return history
    target_is_input = feed.same_array(x, y)  # autoencoders: read (and stream) the rows once
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = x if target_is_input else y
    replicas = distribution.replicas()
    dataset, epoch_var = feed.training_batches(x, y, batch_size=batch_size, seed=seed, start=start,
                                               replicas=replicas)
    if validation is not None:
        validation = feed.validation_batches(*validation, batch_size=batch_size, replicas=replicas)
    cbs = [SetEpoch(epoch_var), ReseedRandomLayers(seed), CollectHistory(history), *callbacks]
    if ckpt is not None:
        cbs.append(ckpt.callback(history))
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints progress on stdout; results own stdout
        model.fit(dataset, epochs=epochs, initial_epoch=start,
                  validation_data=validation, verbose=verbose, callbacks=cbs, shuffle=False)
    return history


def _random_layers(model):
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        if getattr(layer, "seed_generator", None) is not None:
            yield layer
        stack.extend(getattr(layer, "layers", []))


class SetEpoch(keras.callbacks.Callback):
    """Tells the input pipeline which epoch's shuffle order to produce."""

    def __init__(self, epoch_var):
        super().__init__()
        self.epoch_var = epoch_var

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_var.assign(epoch)


class ReseedRandomLayers(keras.callbacks.Callback):
    """Noise and dropout draw from (seed, layer position, epoch), not from
    whatever state a previous epoch or process left behind."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        for i, layer in enumerate(_random_layers(self.model)):
            state = layer.seed_generator.state
            state.assign(np.array([derive_seed(self.seed, i, epoch), 0], dtype=state.dtype))


class CollectHistory(keras.callbacks.Callback):
    """History that survives resumes: appended to the dict the checkpoint saves."""

    def __init__(self, history: dict):
        super().__init__()
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))


class Checkpoint:
    """``checkpoint/epoch-NNNN/`` (weights + optimizer variables) and
    ``checkpoint/state.json`` pointing at the newest one, both published atomically."""

    def __init__(self, root: Path):
        self.root = root

    def exists(self) -> bool:
        return (self.root / "state.json").is_file()

    def restore(self, model) -> tuple[int, dict]:
        try:
            state = json.loads((self.root / "state.json").read_text())
            d = self.root / state["dir"]
            opt = model.optimizer
            opt.build(model.trainable_variables)  # built first, or Keras skips its saved variables with a warning
            model.load_weights(d / "model.weights.h5")
            with np.load(d / "optimizer.npz", allow_pickle=False) as f:
                arrays = [f[f"arr_{i}"] for i in range(len(f.files))]
            if len(arrays) != len(opt.variables):
                raise ValueError(f"{len(arrays)} optimizer variables, the model has {len(opt.variables)}")
            for var, value in zip(opt.variables, arrays):
                var.assign(value)
            return int(state["epoch"]), state.get("history", {})
        except Exception as e:  # noqa: BLE001 - whatever is wrong, the fix is the same
            raise StoreError(f"checkpoint {self.root} cannot be resumed ({type(e).__name__}: {e}); "
                             "remove it with `aepipe clean` and rerun") from None

    def save(self, model, epoch: int, history: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        tmp = self.root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(tmp / "model.weights.h5")
        buf = io.BytesIO()
        np.savez(buf, *[np.asarray(v) for v in model.optimizer.variables])
        atomic_write_bytes(tmp / "optimizer.npz", buf.getvalue())
        _fsync_files(tmp)  # h5py does not: after a power cut state.json must not point at lost bytes
        final = self.root / name
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        atomic_write_json(self.root / "state.json", {"epoch": epoch, "dir": name, "history": history})
        for old in self.root.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def callback(self, history: dict) -> keras.callbacks.Callback:
        ckpt = self

        class _Save(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                ckpt.save(self.model, epoch + 1, history)

        return _Save()


def _fsync_files(d: Path) -> None:
    for f in d.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def predict(model, x, batch_size: int = 4096) -> np.ndarray:
    """Inference in large batches without Keras' per-call overhead."""
    out = [np.asarray(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32, copy=False)
