"""Each input feature's training range, kept with a model, and the check that
new inputs are on the same scale.

A model trained on pixels divided by 16 gives nonsense, silently, for raw
pixels (0-16): nothing fails, the codes are just 15 times too large. Layer 0's
stage records the range of every feature it was trained on; whatever feeds a
trained model new rows (``aepipe encode``, the estimators' ``transform`` and
``predict``, a loaded run) warns once when they fall well outside it.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import feed

# a value is "well outside" when it lies beyond its feature's training range by
# more than this many times the feature's width, or of the median width when
# that is larger (features that hardly varied in training, such as the edge
# pixels of digits, would otherwise flag rows of the same scale)
MARGIN = 1.0


class InputRangeWarning(UserWarning):
    """Inputs lie well outside the range each feature had in training: most
    likely scaled differently (raw pixels given to a model trained on [0, 1])."""


def recorded_range(manifest: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(min, max) of each feature as layer 0's stage manifest records them; (None, None) if it does not."""
    trained = manifest.get("input_range") or {}
    if not trained.get("min"):
        return None, None
    return np.asarray(trained["min"], np.float64), np.asarray(trained["max"], np.float64)


def feature_range(x) -> dict:
    """``{"min": [...], "max": [...]}`` of each feature (flattened) of ``x``,
    chunk by chunk so a memory-mapped ``x`` is never read whole."""
    lo = hi = None
    for block in feed.scan(x):
        flat = np.asarray(block, dtype=np.float64).reshape(len(block), -1)
        b_lo, b_hi = flat.min(axis=0), flat.max(axis=0)
        lo = b_lo if lo is None else np.minimum(lo, b_lo)
        hi = b_hi if hi is None else np.maximum(hi, b_hi)
    if lo is None:
        return {"min": [], "max": []}
    return {"min": lo.tolist(), "max": hi.tolist()}


def outside_range(x, lo, hi) -> str | None:
    """How far ``x`` lies outside the training range [lo, hi] of each feature, in
    words, or None when it lies within it (give or take ``MARGIN`` widths) or no
    range was recorded (lo is None: a stage published before ranges were)."""
    if lo is None or hi is None:
        return None
    lo, hi = np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel()
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if flat.size == 0 or flat.shape[1] != lo.size:
        return None
    span = hi - lo
    typical = float(np.median(span[span > 0])) if (span > 0).any() else 1.0
    scale = np.maximum(span, typical)
    # spans beyond the range, per value: 0 inside it
    beyond = np.maximum(lo - flat, flat - hi) / scale
    worst_value = float(beyond.max())
    if worst_value <= MARGIN:
        return None
    far = beyond > MARGIN
    row, col = np.unravel_index(int(np.argmax(beyond)), beyond.shape)
    return (f"inputs lie in [{flat.min():.4g}, {flat.max():.4g}], the training data in [{lo.min():.4g}, "
            f"{hi.max():.4g}]: {int(far.sum())} values in {int(far.any(axis=0).sum())} of {lo.size} features lie "
            f"well outside their feature's training range, up to {worst_value:.3g} times its width beyond it "
            f"(feature {col}: {flat[row, col]:.4g}, trained on [{lo[col]:.4g}, {hi[col]:.4g}]); "
            "scale the inputs as the training data was")


def warn_if_outside(x, lo, hi, who: str, stacklevel: int = 3) -> None:
    """One ``InputRangeWarning`` naming how far ``x`` lies outside [lo, hi]."""
    message = outside_range(x, lo, hi)
    if message is not None:
        warnings.warn(f"{who}: {message}", InputRangeWarning, stacklevel=stacklevel)
