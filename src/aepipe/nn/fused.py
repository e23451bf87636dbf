"""Optimizers whose whole update runs as one XLA-compiled call.

Why: on a CPU Keras compiles models with ``jit_compile`` off (its "auto"
turns XLA off there), so ``optimizer.apply`` runs every variable's update as
its own handful of small TensorFlow ops (Adam: about a dozen per variable,
each reading and writing the whole array). On the 784-1000-1000-1000-10
fine-tune net, batch 256, 2 cores, that took 13.6 ms of a 70 ms step; the
same update as one ``tf.function(jit_compile=True)``, which XLA fuses into a
few loops over each array, 4.3 ms (``benchmarks/throughput.py``,
``benchmarks/results/20261207T082514Z-dc6117d-speed.md``). Only the
update is compiled: the forward and backward matmuls stay on TensorFlow's
own kernels, already at the bare matmuls' rate.

The compiled call has a fixed cost (about 0.2 ms a step on 2 busy cores), so
on a small net it is slower than Keras' handful of ops. Per Adam train_step
there, Keras' update -> fused (10th percentile of many; batch 256, 200 for
the two smallest): 30-64-2 0.35 -> 0.54 ms, a 1000-10 softmax head 0.73 ->
0.79 ms; about even from 784-64-10 (51k weights: 1.37 -> 1.40 ms) to
256-256-256-10 (200k: 3.01 -> 3.01 ms); ahead at 784-250-250-10 (4.4 -> 4.0
ms), 784-500-500-10 (12.7 -> 11.2 ms) and 784-1000-1000-1000-10 (96 -> 78
ms). ``fused_min_size``: from how many trainable numbers on an optimizer
fuses (``train.FUSED_MIN_SIZE`` for the supervised stages).

What runs inside is Keras' own ``apply``, unchanged: gradient clipping,
decoupled weight decay, the learning-rate schedule read at the step count,
the update of each variable, the constraints (max-norm) applied after it and
the step count's increment. The arithmetic is the same; XLA may contract or
reorder it, so the result equals Keras' to float rounding, not bit for bit
(``tests/test_train.py``). It is deterministic, so a resumed run still ends
equal to an uninterrupted one.

Where it does not apply, the update is Keras' own: other backends than
TensorFlow (``train.make_optimizer`` gives the plain class), an optimizer made
or applied under a ``tf.distribute`` strategy (a MirroredStrategy's
cross-replica update), sparse (``IndexedSlices``) gradients, and variables
smaller than ``fused_min_size`` in all.
"""

from __future__ import annotations

import functools
import math

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras


class FusedUpdate:
    """Mixin before a Keras optimizer class: ``apply`` as one XLA-compiled call,
    for variables of at least ``fused_min_size`` numbers in all (0: always)."""

    def __init__(self, *args, fused_min_size: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        import tensorflow as tf

        # plain attributes, not tracked: nothing here is saved
        object.__setattr__(self, "fused_min_size", int(fused_min_size))
        # made under a strategy: its variables are distributed, the update is the strategy's
        object.__setattr__(self, "_fused_ok", not tf.distribute.has_strategy())
        object.__setattr__(self, "_fused_calls", {})  # variables' keys -> the compiled apply, or None

    def get_config(self):
        return {**super().get_config(), "fused_min_size": self.fused_min_size}

    def fuses(self, variables) -> bool:
        """Would ``apply`` to ``variables`` (all dense gradients) run as one compiled call here?"""
        import tensorflow as tf

        return (self._fused_ok and not tf.distribute.has_strategy()
                and sum(math.prod(v.shape) for v in variables) >= self.fused_min_size)

    def apply(self, grads, trainable_variables=None):
        import tensorflow as tf

        grads = list(grads)
        if (not grads or any(isinstance(g, tf.IndexedSlices) for g in grads)
                or (trainable_variables is None and (not self.built or len(grads) != len(self._trainable_variables)))):
            return super().apply(grads, trainable_variables)  # Keras' update, or its error message
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        if not self.fuses(variables):
            return super().apply(grads, variables)
        if not self.built:  # outside the compiled call: XLA creates no variables
            with keras.name_scope(self.name, caller=self):
                self.build(variables)
        self._check_variables_are_known(variables)
        key = tuple(self._var_key(v) for v in variables)
        if key not in self._fused_calls:
            self._fused_calls[key] = _compiled_apply(self, variables)
        self._fused_calls[key](grads)


def _compiled_apply(optimizer, variables):
    """``optimizer``'s Keras ``apply`` of ``variables``, as one XLA-compiled call of the gradients."""
    import tensorflow as tf

    keras_apply = super(FusedUpdate, optimizer).apply

    def update(grads):
        keras_apply(grads, variables)

    return tf.function(update, jit_compile=True, autograph=False)


@functools.cache
def fused_class(cls: type) -> type:
    """``cls`` (a Keras optimizer class) with the fused update, as ``Fused<name>``,
    registered with Keras' serialization (package ``aepipe``)."""
    name = f"Fused{cls.__name__}"
    fused = type(name, (FusedUpdate, cls), {"__module__": __name__, "__qualname__": name,
                                            "__doc__": f"Keras' {cls.__name__} whose update is one XLA call."})
    return keras.saving.register_keras_serializable(package="aepipe", name=name)(fused)


def available() -> bool:
    """Can this process fuse updates (the TensorFlow backend)?"""
    return keras.backend.backend() == "tensorflow"
