"""The one data-feeding path: arrays or memory-mapped ``.npy`` files -> batches.

Why: a layer's input (the data, or the codes of the layer below) may be larger
than memory. In-memory arrays and small memmaps are fed from a ``tf.constant``;
a memmap of at least ``AEPIPE_STREAM_MIN_BYTES`` (default 64 MiB) is read batch
by batch from its file instead. Both branches gather the same index batches
(a stateless shuffle keyed by (seed, epoch)), so the order -- and the trained
weights -- do not depend on which branch ran. Encodings go to disk chunk by
chunk, and mapped pages are handed back to the kernel as we go, so the
process's resident memory stays near one chunk whatever the file size.

TensorFlow is imported inside the functions that build ``tf.data`` pipelines;
the chunked helpers (range, NaN scan, hashing) are plain numpy.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
from pathlib import Path
from typing import Iterator

import numpy as np

CHUNK_ROWS = 4096  # rows per chunk for encoding and scans (train.predict's batch)
RELEASE_BYTES = 16 << 20  # hand mapped pages back after reading this much
STREAM_PREFETCH = 4  # batches read ahead of training when streaming


def stream_min_bytes() -> int:
    return int(os.environ.get("AEPIPE_STREAM_MIN_BYTES", 64 << 20))


def mapping(x) -> mmap.mmap | None:
    """The ``mmap`` behind ``x`` (a memmap or any view of one), else None."""
    base = x
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def is_streamed(x) -> bool:
    """True when ``x`` is file-backed and big enough to read batch by batch."""
    return x is not None and mapping(x) is not None and x.nbytes >= stream_min_bytes()


def release(x) -> None:
    """Drop the resident pages of ``x``'s mapping: the data stays in the file
    (and the page cache), but no longer counts in this process's memory."""
    mm = mapping(x)
    if mm is not None and hasattr(mm, "madvise"):
        with contextlib.suppress(OSError, ValueError):  # closed or unsupported: nothing to give back
            mm.madvise(mmap.MADV_DONTNEED)


def chunks(n: int, size: int = CHUNK_ROWS) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def scan(x, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """``x`` chunk by chunk, releasing mapped pages along the way."""
    mapped, since = mapping(x) is not None, 0
    for sl in chunks(len(x), size):
        block = x[sl]
        yield block
        since += block.nbytes
        if mapped and since >= RELEASE_BYTES:
            release(x)
            since = 0
    release(x)


def value_range(x) -> tuple[float, float]:
    lo, hi = math.inf, -math.inf
    for block in scan(x):
        lo, hi = min(lo, float(np.min(block))), max(hi, float(np.max(block)))
    return lo, hi


def nonfinite_rows(x) -> np.ndarray:
    """One bool per row: does the row hold NaN or inf?"""
    return np.concatenate([~np.isfinite(b.reshape(len(b), -1)).all(axis=1) for b in scan(x)]
                          or [np.zeros(0, bool)])


def byte_blocks(a) -> Iterator[memoryview]:
    """The bytes of a C-contiguous array in chunks (hashing a memmap without
    holding it in memory); the concatenation equals ``memoryview(a)``."""
    a = np.ascontiguousarray(a)
    if a.ndim == 0 or mapping(a) is None:
        yield memoryview(a).cast("B")
        return
    for block in scan(a):
        yield memoryview(np.ascontiguousarray(block)).cast("B")


def kept_rows(n: int, batch_size: int, replicas: int = 1) -> int:
    """Rows used per epoch: all of them, less the few (< replicas) that would
    leave the last batch unsplittable across data-parallel replicas."""
    if replicas > 1 and batch_size % replicas:
        from ..errors import SpecError

        raise SpecError(f"batch_size {batch_size} is not a multiple of the {replicas} devices "
                        "training data-parallel")
    return n - (n % batch_size) % replicas



def epoch_steps(n: int, batch_size: int, replicas: int = 1, steps: int | None = None) -> int:
    """Batches in one training epoch of ``n`` rows, as ``training_batches`` gives
    them: ``steps`` when set, else the kept rows (``kept_rows``) in batches of
    ``batch_size``, the last one possibly short. Schedules (cosine decay, warmup,
    pseudo-label ramps) count epochs in these steps."""
    return steps if steps else math.ceil(kept_rows(n, batch_size, replicas) / batch_size)

def training_batches(x, y, *, batch_size: int, seed: int, start: int, replicas: int = 1, steps: int | None = None):
    """One epoch of batches as a ``tf.data`` dataset, in the order
    ``stateless_shuffle(seed=(seed, epoch))`` gives, where ``epoch`` is read from
    the returned variable each time Keras starts iterating (once per epoch).
    ``steps``: the epoch is that many batches instead, through as many fresh
    shuffles of the rows as they need, keyed by (seed, epoch * rounds + round)
    (one round: the same order as without ``steps``).

    One epoch per iterator, not one stream of all epochs: with
    ``steps_per_execution > 1`` Keras would otherwise let an execution run across
    an epoch boundary. Returns (dataset, epoch variable); set the variable in
    ``on_epoch_begin``.
    """
    import tensorflow as tf

    n = len(x)
    keep = kept_rows(n, batch_size, replicas)
    seed_t = tf.constant(seed, tf.int64)
    epoch = tf.Variable(start, dtype=tf.int64, trainable=False)

    rounds = _rounds(keep, batch_size, steps)

    def this_epoch(_):
        order = _shuffled_rounds(n, seed_t, epoch.read_value(), rounds, keep)
        if steps is not None:
            order = order[:steps * batch_size]
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    indices = tf.data.Dataset.from_tensors(0).flat_map(this_epoch)
    cardinality = epoch_steps(n, batch_size, replicas, steps)
    indices = indices.apply(tf.data.experimental.assert_cardinality(cardinality))
    return _gather(indices, x, y), epoch


def epoch_order(n: int, batch_size: int, seed: int, epoch, replicas: int = 1, steps: int | None = None,
                numpy: bool = True):
    """The row indices of epoch ``epoch`` of ``training_batches`` in the order it
    gives them, batch after batch (``nn.loop`` gathers batches from them); a
    tensor with ``numpy=False`` (``epoch`` may be one too)."""
    import tensorflow as tf

    keep = kept_rows(n, batch_size, replicas)
    order = _shuffled_rounds(n, tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64),
                             _rounds(keep, batch_size, steps), keep)
    order = order if steps is None else order[:steps * batch_size]
    return order.numpy() if numpy else order


def _rounds(keep: int, batch_size: int, steps: int | None) -> int:
    """Shuffles of the rows one epoch of ``steps`` batches goes through (1 without ``steps``)."""
    return 1 if steps is None else math.ceil(steps * batch_size / keep)


def _shuffled_rounds(n: int, seed, epoch, rounds: int, keep: int):
    """One epoch's row order: ``rounds`` stateless shuffles of ``range(n)``, keyed
    (seed, epoch * rounds + round), each cut to its first ``keep`` rows, end to end."""
    import tensorflow as tf

    return tf.concat([tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch * rounds + r]))[:keep] for r in range(rounds)], 0)


def with_unlabeled(batches, epoch, x_unlabeled, *, batch_size: int, seed: int):
    """Each labeled batch ``(x, y)`` of ``batches`` (``training_batches``' epoch)
    as ``((x, u), y)``, where ``u`` is the next ``batch_size`` rows of this epoch's
    order of ``x_unlabeled``: stateless shuffles keyed by (seed, epoch, round),
    enough rounds for the epoch's steps. Read from ``epoch`` like the labeled
    order, so a resumed epoch sees the same rows. No unlabeled rows: empty ``u``
    batches."""
    import tensorflow as tf

    steps = int(batches.cardinality())  # known: training_batches asserts it
    n = len(x_unlabeled)
    xs = tf.constant(np.ascontiguousarray(x_unlabeled, dtype=np.float32))
    rounds = max(1, math.ceil(steps * batch_size / max(n, 1)))
    seed_t = tf.constant(seed, tf.int64)

    def this_epoch(_):
        if n == 0:
            return tf.data.Dataset.from_tensors(tf.zeros((0,), tf.int64)).repeat(steps)
        order = _shuffled_rounds(n, seed_t, epoch.read_value(), rounds, n)
        return tf.data.Dataset.from_tensor_slices(order[:steps * batch_size]).batch(batch_size)

    unlabeled = tf.data.Dataset.from_tensors(0).flat_map(this_epoch).map(lambda i: tf.gather(xs, i))
    paired = tf.data.Dataset.zip(batches, unlabeled).map(lambda xy, u: ((xy[0], u), xy[1]))
    # a known length, as training_batches gives: Keras would otherwise probe for the end of each epoch
    return _without_autotune(paired.apply(tf.data.experimental.assert_cardinality(steps)))


def validation_batches(x, y, *, batch_size: int, replicas: int = 1):
    """Validation data for ``model.fit``: an in-order ``tf.data`` stream of
    batches (not the arrays: Keras' own pipeline for them autotunes, see _gather)."""
    import tensorflow as tf

    keep = kept_rows(len(x), batch_size, replicas)
    return _gather(tf.data.Dataset.range(keep).batch(batch_size), x, y)


def _gather(indices, x, y):
    import tensorflow as tf

    same = same_array(x, y)  # an autoencoder's validation rows: read once, not fancy-indexed as labels
    if same:
        y = x
    if is_streamed(x) or (not same and is_streamed(y)):
        reader = RowReader(x, None if same else y)
        y_dtype = tf.float32 if same else tf.as_dtype(np.asarray(y[:1]).dtype)

        def read(i):
            xb, yb = tf.numpy_function(reader, [i], [tf.float32, y_dtype], stateful=False)
            xb.set_shape((None, *x.shape[1:]))
            yb.set_shape((None, *y.shape[1:]))
            return xb, (xb if same else yb)

        # a fixed, small read-ahead: AUTOTUNE may buffer hundreds of MB of batches
        batches = indices.map(read, num_parallel_calls=2, deterministic=True).prefetch(STREAM_PREFETCH)
    else:
        xs = tf.constant(np.ascontiguousarray(x, dtype=np.float32))
        ys = xs if same else tf.constant(np.asarray(y))
        batches = indices.map(lambda i: (tf.gather(xs, i), tf.gather(ys, i)),
                              num_parallel_calls=2, deterministic=True).prefetch(2)
    return _without_autotune(batches)


def _without_autotune(dataset):
    """No autotuning: its model thread sleeps in a timed wait that an iterator's
    destructor waits out, and Keras drops the iterator after every epoch and
    every validation pass. Measured on 784-1000-1000-1000-10 (bfloat16, batch
    128): epochs of 5.5 s stretched to 10-12 s by 2-4 s of idle CPU."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


class RowReader:
    """Gathers rows ``idx`` of (memmapped) ``x`` and ``y`` in index order.

    Rows of a float32 file are read with ``os.preadv`` straight into the batch,
    runs of consecutive rows in one call: touching a memmap at random would
    map far more than it reads (the kernel maps up to 64 KiB around every
    fault), so a shuffled epoch would pull the whole file into this process.
    """

    def __init__(self, x, y=None):
        self.x, self.y = x, y
        where = file_rows(x) if x.dtype == np.float32 else None
        self._fd = os.open(where[0], os.O_RDONLY) if where else None
        self._base = where[1] if where else 0
        self._row_bytes = int(np.prod(x.shape[1:], dtype=np.int64)) * x.itemsize
        self._since_release = 0

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def __call__(self, idx: np.ndarray):
        order = np.argsort(idx, kind="stable")
        rows = np.empty((len(idx), *self.x.shape[1:]), dtype=np.float32)
        rows[order] = self._read_sorted(idx[order])  # rows[j] = x[idx[j]], read front to back
        labels = rows if self.y is None else np.asarray(self.y[idx])
        return rows, labels

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        if self._fd is None:  # not a plain float32 file: gather through the mapping
            out = np.asarray(self.x[idx], dtype=np.float32)
            self._since_release += out.nbytes
            if self._since_release >= RELEASE_BYTES:
                self._since_release = 0
                release(self.x)
            return out
        out = np.empty((len(idx), *self.x.shape[1:]), dtype=np.float32)
        flat = out.reshape(-1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
            want = int(b - a) * self._row_bytes
            got = os.preadv(self._fd, [flat[a * self._row_bytes: a * self._row_bytes + want]],
                            self._base + int(idx[a]) * self._row_bytes)
            if got != want:
                raise OSError(f"short read from {file_rows(self.x)[0]}: {got} of {want} bytes")
        return out


def file_rows(x) -> tuple[str, int] | None:
    """(path, byte offset of row 0) when ``x`` is a C-contiguous view into an
    ``np.memmap``'d file, else None."""
    root = x
    while isinstance(root, np.ndarray) and not isinstance(root.base, mmap.mmap):
        root = root.base
    if not isinstance(root, np.memmap) or root.filename is None or not x.flags.c_contiguous:
        return None
    delta = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return root.filename, int(root.offset) + delta


def take(x, idx: np.ndarray):
    """Rows ``idx`` of ``x`` as float32: ``x`` itself (still memory-mapped) when
    ``idx`` is every row in order, as with all labels; else a copy in memory."""
    if len(idx) == len(x) and np.array_equal(idx, np.arange(len(x))):
        return np.asarray(x, dtype=np.float32)
    return np.asarray(x[idx], dtype=np.float32)


def same_array(a, b) -> bool:
    """Are ``a`` and ``b`` the same rows (an autoencoder's inputs and targets,
    possibly two equal slices of one memmap)?"""
    if a is b:
        return True
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    return (a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
