"""The pictures of a run, drawn with matplotlib's object API (Agg, no pyplot state).

Each ``*_figure`` function turns arrays into a ``Figure`` (tested for its axes);
``write_run_plots`` draws every PNG of a run from files the stages already
stored (histories, the evaluate stage's reconstructions and filters, the
tsne stage's embeddings, metrics), so a fully cached rerun still
writes a complete run directory without importing TensorFlow.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..config.spec import LayerSpec  # noqa: E402
from ..engine import layout  # noqa: E402

DPI = 100


def save(fig: Figure, path: Path) -> Path:
    """Write a PNG next to the other run files (plain write: run dirs are new and private)."""
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def hide_ticks(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _as_images(x: np.ndarray, side: int | None) -> np.ndarray:
    """Rows as square images when they are images, else as one-row strips."""
    x = np.asarray(x).reshape(len(x), -1)
    return x.reshape(len(x), side, side) if side else x[:, None, :]


# ---------------------------------------------------------------- figures


def reconstructions_figure(originals: np.ndarray, recons: dict, side: int | None) -> Figure:
    """Originals on top, then one row per depth: input -> layers 0..d -> back."""
    rows = [("input", originals), *recons.items()]
    n = len(originals)
    fig = Figure(layout="constrained", figsize=(1.1 * n, 1.2 * len(rows)))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows):
        images = _as_images(images, side)
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c], cmap="gray", vmin=0.0, vmax=max(1.0, float(images.max())),
                      aspect="equal" if side else "auto")
            hide_ticks(ax)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("reconstructions by depth (top: test inputs)")
    return fig


def filters_figure(kernel_t: np.ndarray, side: int, max_tiles: int = 64) -> Figure:
    """First-layer weights of each unit as an image: the input pattern it responds to most."""
    tiles = np.asarray(kernel_t)[:max_tiles].reshape(-1, side, side)
    cols = min(8, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    fig = Figure(layout="constrained", figsize=(1.1 * cols, 1.1 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        hide_ticks(ax)
        if i < len(tiles):  # each tile on its own scale: its largest weight is +-1
            lim = float(np.abs(tiles[i]).max()) or 1.0
            image = ax.imshow(tiles[i] / lim, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        else:
            ax.set_axis_off()
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.8, ticks=[-1, 0, 1])
        bar.set_label("weight / the unit's largest |weight|", fontsize=8)
    fig.suptitle(f"first-layer filters ({len(tiles)} of {len(kernel_t)} units)")
    fig.supxlabel("each tile: one unit's weights from every input pixel (red: the unit fires for ink there, "
                  "blue: against it)", fontsize=8)
    return fig


def _epochs(ax, n: int) -> None:
    """Whole epochs on the x axis: short runs otherwise get 0.5-epoch ticks, and a
    single epoch a range narrower than one tick."""
    from matplotlib.ticker import MaxNLocator

    if n <= 20:
        ax.set_xlim(0.5, max(n, 1) + 0.5)
        ax.set_xticks(range(1, max(n, 1) + 1, 1 if n <= 10 else 2))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch", fontsize=8)


def _plot(ax, values, *style, **kw):
    """A curve, with markers when it has few points (one epoch is a dot, not nothing)."""
    marker = "o" if len(values) <= 20 else None
    ax.plot(range(1, len(values) + 1), values, *style, marker=marker, markersize=3, **kw)


def curves_figure(histories: dict, baseline: dict | None = None, losses: dict | None = None) -> Figure:
    """One row per stage: loss and val_loss, and accuracy where the stage has it.
    The random-init baseline is drawn dashed over the fine-tune row. ``losses``
    names each stage's loss (layers differ: cross-entropy on pixels, MSE on codes)
    for its y axis."""
    names = list(histories)
    fig = Figure(layout="constrained", figsize=(9, 2.4 * len(names)))
    axes = fig.subplots(len(names), 2, squeeze=False)
    for r, name in enumerate(names):
        h = histories[name]
        loss_ax, acc_ax = axes[r]
        for key in ("loss", "val_loss"):
            if h.get(key):
                _plot(loss_ax, h[key], label=key)
        loss_ax.set_title(f"{name}: loss", fontsize=9)
        loss_ax.set_ylabel((losses or {}).get(name, "loss"), fontsize=8)
        _epochs(loss_ax, max(len(h.get(k) or []) for k in ("loss", "val_loss")))
        if any(h.get(k) for k in ("accuracy", "val_accuracy")):
            for key in ("accuracy", "val_accuracy"):
                if h.get(key):
                    _plot(acc_ax, h[key], label=key)
            if baseline and name == "finetune":
                for key in ("val_accuracy", "val_loss"):
                    ax = acc_ax if key == "val_accuracy" else loss_ax
                    if baseline.get(key):
                        _plot(ax, baseline[key], "--", label=f"random init {key}")
            acc_ax.set_title(f"{name}: accuracy", fontsize=9)
            acc_ax.set_ylabel("accuracy (fraction)", fontsize=8)
            _epochs(acc_ax, max(len(h.get(k) or []) for k in ("accuracy", "val_accuracy")))
            acc_ax.legend(fontsize=7)
        else:
            acc_ax.set_axis_off()
        loss_ax.legend(fontsize=7)
    return fig


CONFUSION_TITLE = "confusion matrix of the fine-tuned pretrained net (test set)"


def confusion_figure(matrix, class_names, title: str = CONFUSION_TITLE) -> Figure:
    """Test-set confusion matrix (rows: true class, columns: predicted) of the net ``title`` names."""
    from sklearn.metrics import ConfusionMatrixDisplay

    fig = Figure(layout="constrained", figsize=(1.0 + 0.5 * len(class_names), 0.8 + 0.5 * len(class_names)))
    ax = fig.subplots()
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(class_names)).plot(
        ax=ax, colorbar=False, values_format="d")
    ax.set_title(title, fontsize=9)
    return fig


def tsne_figure(embeddings: dict, y: np.ndarray, table: dict | None = None, class_names=None) -> Figure:
    """One scatter per feature set, coloured by class (one colour without labels), titled with its scores."""
    fig = Figure(layout="constrained", figsize=(4.2 * len(embeddings), 4.4))
    axes = fig.subplots(1, len(embeddings), squeeze=False)[0]
    y = np.asarray(y)
    labeled = bool(np.all(y >= 0))
    cmap = matplotlib.colormaps["tab10" if y.max() < 10 else "tab20"]
    for ax, (name, emb) in zip(axes, embeddings.items()):
        for k in np.unique(y):
            pts = emb[y == k]
            label = "no label" if k < 0 else str(class_names[k]) if class_names is not None else str(k)
            ax.scatter(pts[:, 0], pts[:, 1], s=3, color=cmap(int(k) % cmap.N), label=label)
        title = name
        if table and name in table:
            t = table[name]
            title = f"{name} ({t['dims']} dims)" if "dims" in t else name
            knn = "" if t.get("knn_accuracy") is None else f"10-NN {t['knn_accuracy']:.3f}  "
            title += f"\n{knn}trust {t['trustworthiness']:.3f}"
        ax.set_title(title, fontsize=9)
        hide_ticks(ax)
    if labeled:
        axes[-1].legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"t-SNE of {len(y)} test points")
    return fig


# ---------------------------------------------------------------- a run's plots


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_run_plots(run_dir: Path, stages: dict, metrics: dict) -> list[str]:
    """Every PNG of a run, from the published stages (name -> ``Stage``); returns file names."""
    run_dir = Path(run_dir)
    written = []
    histories = {name: h for name, st in stages.items()
                 if name != "baseline" and (h := _read_json(st.file(layout.HISTORY)))}
    baseline = _read_json(stages["baseline"].file(layout.HISTORY)) if "baseline" in stages else None
    if histories:
        losses = {name: _loss_name(name, stages) for name in histories}
        written.append(save(curves_figure(histories, baseline, losses), run_dir / layout.CURVES_PNG))
    classes = (stages["finetune"].manifest.get("classes") if "finetune" in stages else None)
    if metrics.get("confusion_matrix") is not None:
        names = classes or list(range(len(metrics["confusion_matrix"])))
        written.append(save(confusion_figure(metrics["confusion_matrix"], names), run_dir / layout.CONFUSION_PNG))
    ev = stages.get("evaluate")
    if ev is not None:
        written += _evaluate_plots(run_dir, ev)
    if "tsne" in stages:
        with np.load(stages["tsne"].file(layout.TSNE_EMBEDDINGS), allow_pickle=False) as f:
            embeddings = {k: f[k] for k in f.files if k != "labels"}
            fig = tsne_figure(embeddings, f["labels"], metrics.get("tsne"), classes)
        written.append(save(fig, run_dir / layout.TSNE_PNG))
    if "cluster" in stages:
        written.append(_clusters_plot(run_dir, stages["cluster"], metrics))
    # pictures the stages drew themselves (a variational block's latent space)
    for name, st in stages.items():
        if not name.startswith("pretrain-"):
            continue
        i = int(name.split("-")[1])
        for source, png in ((ev and ev.file(layout.latent_scatter(i)), layout.LATENT_SCATTER_PNG),
                            (st.file(layout.LATENT_MANIFOLD), layout.LATENT_MANIFOLD)):
            if source is not None and source.is_file():
                written.append(run_dir / layout.stage_picture(name, png))
                shutil.copyfile(source, written[-1])
    return [p.name for p in written]


_DEFAULT_LOSS = LayerSpec.__dataclass_fields__["loss"].default
LOSS_NAMES = {"binary_crossentropy": "binary cross-entropy", "mse": "mean squared error",
              "mae": "mean absolute error"}


def _loss_name(name: str, stages: dict) -> str:
    """What a stage's training loss is, from its manifest: a layer's reconstruction
    loss, the unrolled autoencoder's, or the classifiers' cross-entropy."""
    kind = name.split("@")[0]
    params = stages[name].manifest.get("params") or {}
    if kind.startswith("pretrain-"):
        # greedy: the stage's own layer; joint modes: stage 0's manifest holds every layer's fields
        stack = (stages["pretrain-0"].manifest.get("params") or {}).get("layers") if "pretrain-0" in stages else None
        layer = params.get("layer") or (stack or {}).get(kind.split("-")[1]) or {}
        loss = layer.get("loss", _DEFAULT_LOSS)  # manifests leave out fields at their default
        if loss == "auto":  # the spec's rule: binary cross-entropy after a sigmoid decoder, else MSE
            loss = "binary_crossentropy" if layer.get("decoder_activation") == "sigmoid" else "mse"
    elif kind.startswith("unroll"):
        loss = (params.get("unroll") or {}).get("loss")
        if loss in (None, "auto") and "pretrain-0" in stages:  # auto: layer 0's
            loss = _loss_name("pretrain-0", stages).removesuffix(" (reconstruction)")
    else:
        return "cross-entropy"
    return f"{LOSS_NAMES.get(loss, loss or 'loss')} (reconstruction)"


def _clusters_plot(run_dir: Path, stage, metrics: dict) -> Path:
    from .cluster_report import clusters_figure

    points = np.load(stage.path / "embedding_2d.npy")
    clusters = np.load(stage.path / "assignments" / "clusters-test.npy")
    table = (metrics.get("clustering") or {}).get("table")
    return save(clusters_figure(points, clusters, table), run_dir / "clusters.png")


def _evaluate_plots(run_dir: Path, ev) -> list[Path]:
    written = []
    side = ev.manifest.get("image_side")
    rec = ev.file(layout.RECONSTRUCTIONS)
    if rec.is_file():
        with np.load(rec, allow_pickle=False) as f:
            depths = sorted((k for k in f.files if k.startswith("depth_")), key=lambda k: int(k[6:]))
            recons = {f"through layer {k[6:]}": f[k] for k in depths}
            if "unrolled" in f.files:  # an unroll run: what its fine-tuned deep autoencoder gives back
                recons["unrolled (end to end)"] = f["unrolled"]
            fig = reconstructions_figure(f["originals"], recons, side)
        written.append(save(fig, run_dir / layout.RECONSTRUCTIONS_PNG))
    scatter = ev.file(layout.CODE_SCATTER)
    if scatter.is_file():
        written.append(run_dir / layout.CODE_SCATTER)
        shutil.copyfile(scatter, written[-1])
    filt = ev.file(layout.FILTERS)
    if filt.is_file() and side:
        written.append(save(filters_figure(np.load(filt), side), run_dir / layout.FILTERS_PNG))
    return written
