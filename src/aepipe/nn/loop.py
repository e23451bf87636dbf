"""Keras' ``fit`` loop for rows held in memory, without ``tf.data``.

What it saves: Keras ``fit`` over a ``tf.data`` dataset builds a new iterator
every epoch (instantiating the shuffle, gather and prefetch functions) and
runs each execution as a graph ``while`` loop of ``Optional`` and ``cond`` ops
fed by the prefetch threads. On a small table (455 rows, batch 200: three
steps an epoch) that costs tens of milliseconds an epoch, about 30 times what
the steps themselves take, and far more on a busy machine, where every
thread hand-off waits for a time slice. Here the rows are one tensor for the
whole fit and each execution is one call of one traced function: it computes
the epoch's order (the same stateless shuffle ``feed.training_batches`` uses,
keyed by (seed, epoch)), gathers each batch and runs ``model.train_step`` on it
in a graph loop, with no iterator and no other thread. The steps, their data
and their order are those of ``fit`` over ``feed.training_batches``, so the
weights, history and optimizer state are the same bit for bit
(``tests/test_train_loop.py``).

Callbacks see what Keras' ``fit`` shows them: ``on_train_begin``, each epoch's
begin and end (with the validation logs), and per execution of
``steps_per_execution`` steps ``on_train_batch_begin`` / ``on_train_batch_end``.

Used by ``train.fit`` for in-memory rows on one device with the TensorFlow
backend (``eligible``); memory-mapped inputs large enough to stream, a
semi-supervised trainer's paired batches, data-parallel training and models
compiled with ``run_eagerly`` keep the ``tf.data`` path.
"""

from __future__ import annotations

import weakref

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np

from ..data import feed
from . import distribution


def eligible(model, x, y, validation=None, unlabeled=None) -> bool:
    """Can ``run`` train on these rows (else ``fit`` over ``tf.data``)?"""
    arrays = [x, y, *(validation or ())]
    one_tf_device = distribution.backend() == "tensorflow" and distribution.replicas() == 1
    return (unlabeled is None and not getattr(model, "run_eagerly", False) and one_tf_device
            and all(isinstance(a, np.ndarray) and not feed.is_streamed(a) for a in arrays))


def _signature(x, y):
    import tensorflow as tf

    def spec(a):
        return tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype))

    return [(spec(x), spec(y))]


def _step_function(model, step, x, y):
    """``step`` (``model.train_step`` or ``test_step``) as one compiled call, as
    Keras compiles it (``jit_compile`` as the model was compiled, no autograph),
    traced once with an unknown batch length, as ``tf.data``'s batches have.
    Returned traced, not yet called: tracing it creates the optimizer's and
    metrics' variables. Called through its concrete function with tensors:
    binding numpy arrays through the polymorphic function cost three times
    the step itself on a small batch."""
    import tensorflow as tf

    traced = tf.function(step, input_signature=_signature(x, y), jit_compile=bool(model.jit_compile),
                         autograph=False)
    traced.get_concrete_function()
    return traced


def _execution_function(model, step, n: int, batch_size: int, seed: int, steps: int | None):
    """(rows, targets, epoch, first, last) -> the logs after steps ``first`` to
    ``last`` of epoch ``epoch``, in one call: that epoch's order (the stateless
    shuffle ``feed.training_batches`` uses), each batch gathered from the rows
    and trained on by ``step`` in a graph loop, as Keras runs an execution of
    ``steps_per_execution`` steps; with ``reset``, the metrics are reset first
    (the epoch's first execution)."""
    import tensorflow as tf

    def execution(xs, ys, epoch, first, last, reset):
        if reset:
            model.reset_metrics()
        order = feed.epoch_order(n, batch_size, seed, epoch, steps=steps, numpy=False)

        def one(s):
            idx = order[s * batch_size:(s + 1) * batch_size]
            return step((tf.gather(xs, idx), tf.gather(ys, idx)))

        logs = one(first)  # outside the loop: it fixes the structure the loop carries
        return tf.while_loop(lambda s, _: s <= last, lambda s, _: (s + 1, one(s)), (first + 1, logs))[1]

    spec = tf.TensorSpec([], tf.int64)
    functions = {}

    def call(xs, ys, epoch: int, first: int, last: int):
        reset = first == 0
        if reset not in functions:
            traced = tf.function(lambda *args: execution(*args, reset=reset), autograph=False)
            functions[reset] = traced.get_concrete_function(
                tf.TensorSpec(xs.shape, xs.dtype), tf.TensorSpec(ys.shape, ys.dtype), spec, spec, spec)
        return functions[reset](xs, ys, tf.constant(epoch, tf.int64), tf.constant(first, tf.int64),
                                tf.constant(last, tf.int64))

    return call


_TRACED = weakref.WeakKeyDictionary()  # model -> (what it was compiled with, {what was traced for it})


def _traced(model, key) -> dict:
    """What ``run`` traced for ``model`` and these rows before (empty the first
    time, and after ``compile`` gave the model another optimizer or loss): a model
    trained epoch by epoch in several ``fit`` calls traces once, as Keras
    keeps ``model.train_function`` between calls."""
    compiled = (model.optimizer, getattr(model, "_compile_loss", None), getattr(model, "_compile_metrics", None))
    before, cache = _TRACED.get(model, ((), {}))
    if len(before) != len(compiled) or any(a is not b for a, b in zip(before, compiled)):
        cache = {}
        _TRACED[model] = (compiled, cache)
    return cache.setdefault(key, {})


def _spec_key(x, y) -> tuple:
    return (x.shape, x.dtype.str, y.shape, y.dtype.str, feed.same_array(x, y))


def _compiled(model, method):
    """``method`` (no arguments: ``reset_metrics``, ``get_metrics_result``) as one
    compiled call instead of an eager op per metric variable."""
    import tensorflow as tf

    return tf.function(method, autograph=False).get_concrete_function()


def run(model: keras.Model, x: np.ndarray, y: np.ndarray, *, epochs: int, start: int, batch_size: int, seed: int,
        steps: int | None = None, validation: tuple | None = None, callbacks=()) -> None:
    """Train ``model`` (compiled) from epoch ``start`` to ``epochs`` as
    ``model.fit(feed.training_batches(...), initial_epoch=start,
    validation_data=feed.validation_batches(...))`` would."""
    import tensorflow as tf

    if model.run_eagerly:
        raise ValueError("loop.run traces the training step; a model compiled with run_eagerly takes model.fit")
    same = feed.same_array(x, y)
    xs = tf.convert_to_tensor(x)
    ys = xs if same else tf.convert_to_tensor(y)
    if validation is not None:  # as feed.validation_batches reads them
        vx = np.ascontiguousarray(validation[0], dtype=np.float32)
        validation = (vx, vx if feed.same_array(*validation) else np.asarray(validation[1]))
    per_epoch = feed.epoch_steps(len(x), batch_size, 1, steps)
    per_execution = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    traced = _traced(model, (_spec_key(x, y), len(x), batch_size, seed, steps, validation is not None))
    if "execute" not in traced:
        step = _step_function(model, model.train_step, x, y)  # first: it creates the variables
        traced["execute"] = _execution_function(model, step, len(x), batch_size, seed, steps)
    execute = traced["execute"]
    test_step = None
    if validation is not None:
        key = ("test", _spec_key(*validation))
        if key not in traced:
            traced[key] = (_step_function(model, model.test_step, *validation).get_concrete_function(),
                           _compiled(model, model.reset_metrics), _compiled(model, model.get_metrics_result))
        test_step, reset_metrics, metrics_result = traced[key]
    cbs = keras.callbacks.CallbackList(list(callbacks), model=model, verbose=0, epochs=epochs, steps=per_epoch)
    model.stop_training = False
    cbs.on_train_begin()
    logs, epoch_logs = {}, None
    for epoch in range(start, epochs):
        cbs.on_epoch_begin(epoch)  # reads no metric: the first execution resets them, as fit does before it
        for first in range(0, per_epoch, per_execution):
            last = min(first + per_execution, per_epoch) - 1
            cbs.on_train_batch_begin(first)
            logs = execute(xs, ys, epoch, first, last)
            cbs.on_train_batch_end(last, logs)
            if model.stop_training:
                break
        # the last step's logs are the model's metrics (Keras' train_step returns
        # get_metrics_result()), which fit reads again here
        epoch_logs = dict(logs)
        if test_step is not None:
            val_logs = _evaluate(test_step, *validation, batch_size, cbs, reset_metrics, metrics_result)
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    cbs.on_train_end(logs=epoch_logs)


def _metrics_or_logs(metrics_result, logs) -> dict:
    """Keras' ``Trainer._get_metrics_result_or_logs``: the model's metrics when
    the step's logs name the same ones, else the step's logs."""
    metric_logs = metrics_result()
    return dict(metric_logs if isinstance(logs, dict) and set(logs) == set(metric_logs) else logs)


def _evaluate(test_step, x, y, batch_size: int, cbs, reset_metrics, metrics_result) -> dict:
    """Keras' ``evaluate`` over the validation rows in order, as ``fit`` runs it."""
    import tensorflow as tf
    from keras.src.utils.python_utils import pythonify_logs

    same = feed.same_array(x, y)
    keep = feed.kept_rows(len(x), batch_size)
    cbs.on_test_begin()
    reset_metrics()
    logs = {}
    for b, at in enumerate(range(0, keep, batch_size)):
        cbs.on_test_batch_begin(b)
        xb = x[at:min(at + batch_size, keep)]
        yb = xb if same else y[at:min(at + batch_size, keep)]
        logs = test_step((tf.convert_to_tensor(xb), tf.convert_to_tensor(yb)))
        cbs.on_test_batch_end(b, logs)
    logs = pythonify_logs(_metrics_or_logs(metrics_result, logs))
    cbs.on_test_end(logs)
    return logs
