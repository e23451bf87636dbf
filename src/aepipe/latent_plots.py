"""The pictures a variational block leaves in its stage: latent scatter by
class and, for a 2-D latent over image data, the decoded manifold.

Drawn with the same Agg/object API as ``plots``; the PNGs are stage files,
hashed into the manifest like the weights they were drawn from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import train
from .plots import _hide_ticks, save
from .shapes import image_shape


def scatter_figure(z: np.ndarray, y: np.ndarray):
    """Latent means of the test set (first two dimensions), coloured by class."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5.4))
    ax = fig.add_subplot()
    points = ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", s=4)
    fig.colorbar(points, ax=ax, label="class")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="latent means of the test set")
    return fig


def manifold_figure(tiles: np.ndarray, grid: np.ndarray):
    """``tiles`` (n, n, h, w) decoded from the latent ``grid`` points, as one image."""
    from matplotlib.figure import Figure

    n, _, h, w = tiles.shape
    canvas = tiles.transpose(0, 2, 1, 3).reshape(n * h, n * w)
    fig = Figure(figsize=(7, 7))
    ax = fig.add_subplot()
    ax.imshow(canvas, cmap="gray_r", extent=(grid[0], grid[-1], grid[0], grid[-1]))
    ax.set(xlabel="z[0]", ylabel="z[1]", title="decoded latent manifold")
    return fig


def decode_grid(decoder, z_test: np.ndarray, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Decode an n x n grid spanning the central 98 % of the test latents
    (rows: z[1] from high to low, so the picture reads like the scatter)."""
    lo, hi = np.percentile(z_test[:, :2], [1, 99])
    grid = np.linspace(lo, hi, n)
    zx, zy = np.meshgrid(grid, grid[::-1])
    points = np.stack([zx.ravel(), zy.ravel()], axis=1).astype(np.float32)
    return train.predict(decoder, points), grid


def write_latent_plots(block, workdir: Path, y_test: np.ndarray, decodes_data: bool) -> list[str]:
    """latent_scatter.png always; latent_manifold.png when the latent is 2-D and
    the block decodes straight to images (it is layer 0)."""
    z = np.load(workdir / "encodings" / "test.npy")
    written = []
    if z.shape[1] >= 2:
        written.append(save(scatter_figure(z, y_test), workdir / "latent_scatter.png"))
    img = image_shape(block.input_shape)
    if decodes_data and z.shape[1] == 2 and img is not None and img[-1] == 1:
        flat, grid = decode_grid(block.decoder, z)
        tiles = flat.reshape(len(grid), len(grid), img[0], img[1])
        written.append(save(manifold_figure(tiles, grid), workdir / "latent_manifold.png"))
    return [p.name for p in written]
