"""The pictures of a variational block: latent scatter by class (drawn by the
evaluate stage, which has the labels) and, for a 2-D latent over image data,
the decoded manifold (drawn by the pretrain stage).

Drawn with the same Agg/object API as ``plots``; the PNGs are stage files,
hashed into the manifest like the weights they were drawn from.
"""

from __future__ import annotations


import numpy as np


def scatter_figure(z: np.ndarray, y: np.ndarray):
    """Latent means of the test set (first two dimensions), coloured by class."""
    from matplotlib.figure import Figure

    import matplotlib

    fig = Figure(figsize=(6.6, 5.4), layout="constrained")
    ax = fig.add_subplot()
    classes = np.unique(y)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, k in enumerate(classes):  # one colour and one legend entry per class: classes are not a scale
        pts = z[y == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, color=cmap(i % cmap.N), label=str(k))
    ax.legend(title="class", markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set(xlabel="z[0]", ylabel="z[1]", title="latent means of the test set")
    return fig


def code_and_pca_figure(codes: np.ndarray, pca: np.ndarray, y: np.ndarray, title: str):
    """Hinton & Salakhutdinov's Figure 3: a 2-D code of the test set by class, next to PCA's projection."""
    from matplotlib.figure import Figure

    import matplotlib

    fig = Figure(figsize=(12, 5.4), layout="constrained")
    classes = np.unique(y)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    axes = fig.subplots(1, 2)
    for ax, z, name in ((axes[0], codes, f"{title}: 2-D code"), (axes[1], pca, "PCA: first two components")):
        for i, k in enumerate(classes):
            pts = z[y == k]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, color=cmap(i % cmap.N), label=str(k))
        ax.set(title=name, xticks=[], yticks=[])
    axes[1].legend(title="class", markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
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
