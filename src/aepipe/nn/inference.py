"""Running trained models over data: predictions, codes written to disk, reconstruction error.

No Keras ``predict`` loop (its per-call overhead dominates small models);
inputs may be memory-mapped files larger than memory. Every call runs the
model on blocks of exactly ``ROW_BLOCK`` rows (the last one padded with
zeros): float32 matrix products take a path that depends on the batch's
shape, so a row's result would otherwise move (by ~1e-7) with how many rows
came with it; at one fixed shape it depends on the row alone, whatever its
neighbours or their order, and stage codes, ``transform`` and ``encode``
agree to the bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import feed
from ..data.feed import CHUNK_ROWS
from ..engine.atomic import atomic_open


ROW_BLOCK = 256  # rows per model call: one shape for every call (larger blocks split across threads by shape)


def _call(model, block) -> np.ndarray:
    """``model(block)`` in inference mode, run in fixed blocks of ``ROW_BLOCK`` rows, as float32."""
    block = np.asarray(block)
    out = []
    for start in range(0, len(block), ROW_BLOCK):
        rows = block[start:start + ROW_BLOCK]
        if len(rows) < ROW_BLOCK:  # zero rows fill the last block; their outputs are dropped
            rows = np.concatenate([rows, np.zeros((ROW_BLOCK - len(rows), *rows.shape[1:]), rows.dtype)])
        out.append(np.asarray(model(rows, training=False), dtype=np.float32)[:len(block) - start])
    return np.concatenate(out) if out else np.zeros((0, *model.output_shape[1:]), np.float32)


def predict(model, x, batch_size: int = CHUNK_ROWS) -> np.ndarray:
    """``model(x)`` in inference mode, as float32, each row independent of the others."""
    out = [_call(model, x[sl]) for sl in feed.chunks(len(x), batch_size)]
    if not out:
        return np.zeros((0, *model.output_shape[1:]), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def encode_to_npy(model, x, path: Path, batch_size: int = CHUNK_ROWS) -> np.memmap:
    """``model(x)`` written chunk by chunk into a ``.npy`` (float32), published
    atomically; returns it memory-mapped. Same batches as ``train.predict``, so
    the same numbers."""
    path = Path(path)
    with atomic_open(path) as f:
        header = None
        for block in feed.scan(x, batch_size):
            codes = np.ascontiguousarray(_call(model, block), dtype=np.float32)
            if header is None:
                header = {"descr": np.lib.format.dtype_to_descr(codes.dtype), "fortran_order": False,
                          "shape": (len(x), *codes.shape[1:])}
                np.lib.format.write_array_header_1_0(f, header)
            f.write(codes.tobytes())
        if header is None:  # no rows: an empty array of the model's output width
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (0, *model.output_shape[1:])})
    return np.load(path, mmap_mode="r")


def reconstruction_mse(model, inputs, target, batch_size: int = CHUNK_ROWS) -> float:
    """Mean squared error per value of ``model(inputs)`` against ``target``, chunk by
    chunk (a decoder on codes, a whole autoencoder on inputs): the one
    reconstruction error of aepipe."""
    total, count = 0.0, 0
    # feed.scan releases mapped pages as it goes: a memmapped test set stays out of resident memory
    for block, want in zip(feed.scan(inputs, batch_size), feed.scan(target, batch_size)):
        recon = _call(model, block)
        diff = recon.reshape(len(recon), -1) - np.asarray(want, dtype=np.float32).reshape(len(recon), -1)
        total += float(np.sum(np.square(diff), dtype=np.float64))
        count += diff.size
    feed.release(target)  # zip stopped at inputs' end, before target's scan released its last pages
    return total / max(count, 1)


