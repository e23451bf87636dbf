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
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np

from ..data import feed
from ..engine.layout import CHECKPOINT_DIR
from ..engine.seeds import derive_seed
from ..errors import TrainingDiverged
from . import distribution, fused as fused_update, loop
from .checkpoint import Checkpoint

OPTIMIZERS = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
              "sgd": keras.optimizers.SGD, "adamw": keras.optimizers.AdamW,
              "nadam": keras.optimizers.Nadam}
# the same with the whole update one XLA-compiled call (nn/fused.py); made here,
# at import, so that Keras' deserialization finds them registered
FUSED_OPTIMIZERS = {name: fused_update.fused_class(cls) for name, cls in OPTIMIZERS.items()}
# fused = "auto": fuse from this many trainable numbers on, where the compiled
# call's fixed cost is paid back (nn/fused.py's measurements: even at 51k to 200k
# weights, ahead above)
FUSED_MIN_SIZE = 2 ** 17


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)


# Several steps per tf.function call: small dense steps are dominated by Python
# dispatch otherwise. Measured on 784-1000-1000-1000-10, batch 256, 2 cores:
# 1 -> 16 steps gave 1.5x epoch throughput, 16 -> 64 another 1.1x. It changes no
# arithmetic (results stay bit-identical); an execution never crosses an epoch.
STEPS_PER_EXECUTION = 64


def compile_model(model: keras.Model, optimizer: str, learning_rate: float | None, loss, metrics=None,
                  decay_steps: int | None = None, warmup_steps: int = 0, weight_decay: float | None = None,
                  fused: bool | str = False) -> None:
    """Every stage compiles through here, so speed settings live in one place.
    ``fused``: the optimizer's update as one XLA call (``make_optimizer``)."""
    model.compile(optimizer=make_optimizer(optimizer, learning_rate, decay_steps, warmup_steps, weight_decay, fused),
                  loss=loss, metrics=metrics,
                  steps_per_execution=distribution.steps_per_execution(STEPS_PER_EXECUTION))


def make_optimizer(name: str, learning_rate: float | None = None, decay_steps: int | None = None,
                   warmup_steps: int = 0, weight_decay: float | None = None, fused: bool | str = False):
    """A fixed ``name``: Keras would number it (``adam_3``) by how many optimizers
    this process made before, and the name is saved into ``.weights.h5``, so a
    resumed run's files would differ from an uninterrupted run's in that byte.
    With ``decay_steps`` the rate follows a cosine from its start value to 0;
    with ``warmup_steps`` it first climbs linearly from 0 to that value (and,
    without ``decay_steps``, stays there: Keras' cosine with ``alpha = 1``).
    ``weight_decay``: Keras' decoupled decay, which every optimizer applies
    (None: the optimizer's default, 0 but for adamw's 0.004).
    ``fused``: True, every variable's update in one XLA-compiled call
    (``nn/fused.py``: the same arithmetic to float rounding, about three times
    faster on a CPU); "auto", so where the variables hold ``FUSED_MIN_SIZE``
    numbers or more; on the TensorFlow backend. Elsewhere, and under a
    ``tf.distribute`` strategy, Keras' own update."""
    if fused not in (False, True, "auto"):
        raise ValueError(f"fused={fused!r}: use False, True or 'auto'")
    fuse = bool(fused) and fused_update.available()
    cls = (FUSED_OPTIMIZERS if fuse else OPTIMIZERS)[name]
    if decay_steps or warmup_steps:
        start = learning_rate or inspect.signature(OPTIMIZERS[name]).parameters["learning_rate"].default
        if warmup_steps:
            learning_rate = keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps or 1, alpha=0.0 if decay_steps else 1.0, warmup_target=start,
                warmup_steps=warmup_steps)
        else:
            learning_rate = keras.optimizers.schedules.CosineDecay(start, decay_steps)
    kwargs = {} if learning_rate is None else {"learning_rate": learning_rate}
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    if fuse:
        kwargs["fused_min_size"] = FUSED_MIN_SIZE if fused == "auto" else 0
    return cls(name=name, **kwargs)


@dataclass(frozen=True)
class StopRule:
    """scikit-learn MLP's stopping rule: stop once ``monitor`` has not improved by
    more than ``tol`` for more than ``n_iter_no_change`` epochs in a row."""

    n_iter_no_change: int
    tol: float = 1e-4
    monitor: str = "loss"  # or "val_loss" (early_stopping)

    @classmethod
    def of(cls, section) -> "StopRule | None":
        """The rule a layer or a supervised phase asks for; None: train every epoch."""
        if not section.n_iter_no_change:
            return None
        return cls(section.n_iter_no_change, section.tol, "val_loss" if section.early_stopping else "loss")

    def converged(self, history: dict) -> bool:
        """Replayed from the history alone, so a resumed stage stops where an
        uninterrupted one would: no hidden callback state to checkpoint."""
        best, stale = np.inf, 0
        for value in history.get(self.monitor, []):
            stale = stale + 1 if value > best - self.tol else 0
            best = min(best, value)
            if stale > self.n_iter_no_change:
                return True
        return False



def epoch_steps(n: int, batch_size: int, steps: int | None = None) -> int:
    """Batches in one epoch of ``fit`` over ``n`` rows on the devices of the current
    scope (``feed.epoch_steps`` with this scope's replicas)."""
    return feed.epoch_steps(n, batch_size, distribution.replicas(), steps)

def fit(model: keras.Model, x, y, *, epochs: int, batch_size: int, seed: int,
        validation=None, workdir: Path | None = None, callbacks=(), log=None,
        stop: StopRule | None = None, unlabeled: tuple | None = None, steps_per_epoch: int | None = None,
        in_memory: bool | None = None) -> dict:
    """Train ``model`` (already compiled) and return its history as a dict.

    ``workdir`` holds the per-epoch checkpoint; when one is there, training
    continues from it. Progress comes from ``callbacks`` (``progress.EpochProgress``).
    ``in_memory``: Keras' loop without ``tf.data`` (``loop.run``; the same
    weights, fewer overheads); None: wherever ``loop.eligible`` allows it,
    False: ``model.fit`` over ``tf.data`` batches.
    """
    ckpt = Checkpoint(Path(workdir) / CHECKPOINT_DIR) if workdir is not None else None
    start, history = 0, {}
    if ckpt is not None and ckpt.exists():
        start, history = ckpt.restore(model)
        if log:
            log(f"resumed from epoch {start}")
    if start >= epochs or (stop is not None and stop.converged(history)):
        return history
    if stop is not None and stop.monitor == "val_loss" and validation is None:
        from ..errors import SpecError

        raise SpecError("early_stopping watches the validation loss: set data.validation_split above 0")
    target_is_input = feed.same_array(x, y)  # autoencoders: read (and stream) the rows once
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = x if target_is_input else y
    cbs = [ReseedRandomLayers(seed), FailOnNonFiniteLoss(), CollectHistory(history),
           *([StopWhenConverged(stop, history)] if stop is not None else []), *callbacks]
    if ckpt is not None:
        cbs.append(ckpt.callback(history))
    if in_memory is None:
        in_memory = loop.eligible(model, x, y, validation, unlabeled)
    if in_memory:
        with contextlib.redirect_stdout(sys.stderr):
            loop.run(model, x, y, epochs=epochs, start=start, batch_size=batch_size, seed=seed,
                     steps=steps_per_epoch, validation=validation, callbacks=cbs)
        return history
    replicas = distribution.replicas()
    dataset, epoch_var = feed.training_batches(x, y, batch_size=batch_size, seed=seed, start=start,
                                               replicas=replicas, steps=steps_per_epoch)
    if unlabeled is not None:  # (rows, batch size): a SemiSupervisedTrainer's batches
        x_u, u_batch = unlabeled
        dataset = feed.with_unlabeled(dataset, epoch_var, x_u, batch_size=u_batch, seed=derive_seed(seed, "unlabeled"))
    if validation is not None:
        validation = feed.validation_batches(*validation, batch_size=batch_size, replicas=replicas)
    cbs.insert(0, SetEpoch(epoch_var))
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints progress on stdout; results own stdout
        model.fit(dataset, epochs=epochs, initial_epoch=start,
                  validation_data=validation, verbose=0, callbacks=cbs, shuffle=False)
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


class FailOnNonFiniteLoss(keras.callbacks.Callback):
    """Keras' ``TerminateOnNaN`` check, raising instead of stopping: a stopped fit
    would still reach its epoch-end checkpoint and its stage would be published
    with NaN weights. Runs before the checkpoint callback."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise TrainingDiverged(self.epoch + 1, float(loss))


class StopWhenConverged(keras.callbacks.Callback):
    """Ends training at the epoch ``rule`` says (after CollectHistory has recorded it)."""

    def __init__(self, rule: StopRule, history: dict):
        super().__init__()
        self.rule, self.history = rule, history

    def on_epoch_end(self, epoch, logs=None):
        if self.rule.converged(self.history):
            self.model.stop_training = True


class CollectHistory(keras.callbacks.Callback):
    """History that survives resumes: appended to the dict the checkpoint saves."""

    def __init__(self, history: dict):
        super().__init__()
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
