"""Shape rules of the block kinds, without TensorFlow.

The spec cannot know the data's shape, so the rules that need it (an lstm
block on flat rows, a conv block on rows that are not square images, pooling
that does not divide the image) are checked here, once the data is loaded and
before any stage directory is created.
"""

from __future__ import annotations

import math

from ..errors import SpecError


def image_shape(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(h, w, c) a conv block sees: feature maps as they are, flat square rows
    (digits 64 -> 8x8x1, MNIST 784 -> 28x28x1) reshaped; None if neither."""
    if len(shape) == 3:
        return tuple(shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side == shape[0]:
            return (side, side, 1)
    if len(shape) == 2:
        return (*shape, 1)  # (n, h, w) images kept unflattened
    return None


def output_shape(layer, shape: tuple[int, ...], index: int) -> tuple[int, ...]:
    """The code shape a block produces from inputs of ``shape`` (one row)."""
    where = f"layers.{index}"
    kind = layer.kind
    if kind in ("dense", "variational"):
        return (layer.units,)
    if kind == "lstm":
        if len(shape) != 2:
            raise SpecError(f"an lstm block needs sequences of shape (timesteps, features); "
                            f"its input rows have shape {tuple(shape)}", f"{where}.kind")
        return (layer.units,)
    if kind == "conv":
        img = image_shape(shape)
        if img is None:
            raise SpecError(f"a conv block needs images (h, w, channels) or flat square rows; its input "
                            f"rows have shape {tuple(shape)}", f"{where}.kind")
        h, w, _ = img
        p = layer.pool_size
        if h % p or w % p:
            raise SpecError(f"pool_size {p} does not divide the {h}x{w} input maps", f"{where}.pool_size")
        return (h // p, w // p, layer.filters)
    raise SpecError(f"unknown block kind {kind!r}", f"{where}.kind")


def check_shapes(spec, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every layer's output shape for data rows of ``input_shape``; raises
    SpecError naming the first layer that cannot take its input."""
    shapes, shape = [], tuple(input_shape)
    for i, layer in enumerate(spec.layers):
        shape = output_shape(layer, shape, i)
        shapes.append(shape)
    return shapes
