"""Plot functions: the figures have the axes they claim, and PNGs of sensible size."""

import json
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from aepipe.analysis import plots
from aepipe.engine.store import Stage

RNG = np.random.default_rng(0)


def _png(fig, path):
    plots.save(fig, path)
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    return img


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def test_reconstructions_one_row_per_depth_plus_inputs(tmp_path):
    x = RNG.random((10, 64))
    fig = plots.reconstructions_figure(x, {"through layer 0": x, "through layer 1": x}, side=8)
    assert len(fig.axes) == 3 * 10
    assert fig.axes[0].get_ylabel() == "input"
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    img = _png(fig, tmp_path / "r.png")
    assert img.shape[1] > img.shape[0]  # ten columns, three rows: wider than tall


def test_reconstructions_of_non_images_are_strips(tmp_path):
    x = RNG.random((4, 30))
    fig = plots.reconstructions_figure(x, {"through layer 0": x}, side=None)
    assert fig.axes[0].images[0].get_array().shape == (1, 30)
    _png(fig, tmp_path / "r.png")


def test_filters_tiles_units_as_images(tmp_path):
    kernel_t = RNG.normal(size=(20, 784))
    fig = plots.filters_figure(kernel_t, side=28)
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 20 and tiles[0].images[0].get_array().shape == (28, 28)
    assert len(_visible_axes(fig)) == 21  # 20 tiles and the colour bar: the 4 spare cells of the 8x3 grid are hidden
    _png(fig, tmp_path / "f.png")


def test_filters_show_at_most_max_tiles():
    fig = plots.filters_figure(RNG.normal(size=(100, 64)), side=8, max_tiles=16)
    assert len([ax for ax in fig.axes if ax.images]) == 16


def test_curves_loss_for_every_stage_accuracy_for_supervised(tmp_path):
    h_ae = {"loss": [3, 2, 1], "val_loss": [3, 2.5, 2]}
    h_sup = {"loss": [2, 1], "val_loss": [2, 1.5], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    baseline = {"val_loss": [2.2, 1.9], "val_accuracy": [0.3, 0.6]}
    fig = plots.curves_figure({"pretrain-0": h_ae, "head": h_sup, "finetune": h_sup}, baseline)
    visible = _visible_axes(fig)
    assert len(fig.axes) == 6 and len(visible) == 5  # pretrain has no accuracy panel
    assert [ax.get_title() for ax in visible][0] == "pretrain-0: loss"
    ft_acc = next(ax for ax in visible if ax.get_title() == "finetune: accuracy")
    labels = [line.get_label() for line in ft_acc.get_lines()]
    assert labels == ["accuracy", "val_accuracy", "random init val_accuracy"]
    np.testing.assert_allclose(ft_acc.get_lines()[0].get_ydata(), [0.5, 0.8])
    _png(fig, tmp_path / "c.png")


def test_confusion_matrix_shows_every_count(tmp_path):
    m = [[5, 1, 0], [0, 7, 2], [1, 0, 9]]
    fig = plots.confusion_figure(m, ["a", "b", "c"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for row in m for v in row)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    _png(fig, tmp_path / "m.png")


def test_tsne_scatter_one_panel_per_feature_set_one_colour_per_class(tmp_path):
    y = np.repeat(np.arange(3), 20)
    emb = {"raw": RNG.normal(size=(60, 2)), "ae": RNG.normal(size=(60, 2))}
    table = {"raw": {"knn_accuracy": 0.5, "trustworthiness": 0.9, "seconds": 1.0, "dims": 64, "points": 60},
             "ae": {"knn_accuracy": 0.75, "trustworthiness": 0.95, "seconds": 1.0, "dims": 8, "points": 60}}
    fig = plots.tsne_figure(emb, y, table, class_names=["x", "y", "z"])
    assert len(fig.axes) == 2
    assert len(fig.axes[0].collections) == 3
    assert "0.750" in fig.axes[1].get_title() and "8 dims" in fig.axes[1].get_title()
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["x", "y", "z"]
    _png(fig, tmp_path / "t.png")


def _fake_stages(root):
    """Stage dirs as the runner publishes them, with only what plotting reads."""
    def stage(name, manifest=None, files=None):
        d = root / name
        d.mkdir(parents=True)
        for rel, writer in (files or {}).items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            writer(d / rel)
        return Stage(d, manifest or {})

    hist = lambda h: lambda p: p.write_text(json.dumps(h))  # noqa: E731
    ae, sup = {"loss": [1, 0.5], "val_loss": [1, 0.6]}, {"loss": [1, 0.5], "accuracy": [0.5, 0.9]}
    y = np.repeat(np.arange(2), 10)
    return {
        "pretrain-0": stage("p0", files={"history.json": hist(ae)}),
        "head": stage("h", files={"history.json": hist(sup)}),
        "finetune": stage("f", {"classes": ["no", "yes"]}, {"history.json": hist(sup)}),
        "baseline": stage("b", {}, {"history.json": hist(sup)}),
        "evaluate": stage("e", {"image_side": 8}, {
            "reconstructions.npz": lambda p: np.savez(p, originals=RNG.random((5, 64)), depth_0=RNG.random((5, 64))),
            "filters.npy": lambda p: np.save(p, RNG.normal(size=(12, 64))),
        }),
        "tsne": stage("t", {}, {"tsne.npz": lambda p: np.savez(p, labels=y, raw=RNG.normal(size=(20, 2)))}),
    }


def test_write_run_plots_draws_every_png_from_stage_files(tmp_path):
    stages = _fake_stages(tmp_path / "stages")
    metrics = {"confusion_matrix": [[9, 1], [2, 8]],
               "tsne": {"raw": {"knn_accuracy": 0.6, "trustworthiness": 0.9, "seconds": 0.1}}}
    run = tmp_path / "run"
    run.mkdir()
    names = plots.write_run_plots(run, stages, metrics)
    assert names == ["curves.png", "confusion.png", "reconstructions.png", "filters.png", "tsne.png"]
    for name in names:
        assert imread(run / name).shape[0] > 50


def test_write_run_plots_skips_what_a_run_lacks(tmp_path):
    stages = _fake_stages(tmp_path / "stages")
    (stages["evaluate"].path / "filters.npy").unlink()
    del stages["tsne"]
    run = tmp_path / "run"
    run.mkdir()
    assert plots.write_run_plots(run, stages, {}) == ["curves.png", "reconstructions.png"]


def test_plotting_a_run_does_not_import_tensorflow(tmp_path):
    stages = _fake_stages(tmp_path / "stages")
    code = (
        "import sys, json; from pathlib import Path; from aepipe.analysis import plots; from aepipe.engine.store import Stage\n"
        f"stages = {{n: Stage(Path(p), m) for n, (p, m) in json.loads({json.dumps(json.dumps({n: [str(s.path), s.manifest] for n, s in stages.items()}))}).items()}}\n"
        f"plots.write_run_plots(Path({str(tmp_path)!r}), stages, {{}})\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "reconstructions.png").is_file()
