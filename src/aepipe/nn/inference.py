"""Running trained models over data: predictions, codes written to disk, reconstruction error.

Large batches and no Keras ``predict`` loop (its per-call overhead dominates
small models); inputs may be memory-mapped files larger than memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import feed
from ..data.feed import CHUNK_ROWS
from ..engine.atomic import atomic_open


def predict(model, x, batch_size: int = CHUNK_ROWS) -> np.ndarray:
    """``model(x)`` in inference mode, batch by batch, as float32."""
    out = [np.asarray(model(x[sl], training=False)) for sl in feed.chunks(len(x), batch_size)]
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
            codes = np.ascontiguousarray(model(block, training=False), dtype=np.float32)
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
        recon = np.asarray(model(block, training=False), dtype=np.float32)
        diff = recon.reshape(len(recon), -1) - np.asarray(want, dtype=np.float32).reshape(len(recon), -1)
        total += float(np.sum(np.square(diff), dtype=np.float64))
        count += diff.size
    feed.release(target)  # zip stopped at inputs' end, before target's scan released its last pages
    return total / max(count, 1)


