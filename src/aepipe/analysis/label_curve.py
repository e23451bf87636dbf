"""The label curve of a sweep over ``data.labels``: test accuracy against the
number of labeled examples, pretrained and random init, next to published rows.

``label_curve`` groups a sweep's rows by label count (the other grid key may
only be ``data.label_seed``: the draws of the labeled subset and of the
fine-tune init), ``format_label_table`` and ``label_figure`` show the result,
``write_curve`` puts ``labels.json`` and ``labels.png`` in a directory.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from ..engine.atomic import atomic_write_bytes, atomic_write_json  # noqa: E402
from .plots import DPI  # noqa: E402
from .table import fixed_width  # noqa: E402

LABELS = "data.labels"
LABEL_SEED = "data.label_seed"
STD = "population std (numpy ddof=0) over the draws"

# (row key, name): the nets a sweep row reports test accuracy for
SERIES = (("test_accuracy", "pretrained"),
          ("baseline_test_accuracy", "random init"),
          ("plain_baseline_test_accuracy", "random init, plain"))

# Test accuracy (%) on MNIST as published (100 - the papers' error rates); never run here.
PUBLISHED = (
    {"name": "Kingma et al. 2014 M1+TSVM",
     "reference": "Kingma, Rezende, Mohamed, Welling: Semi-supervised learning with deep generative "
                  "models, NeurIPS 2014, table 1",
     "accuracy_pct": {100: 88.18, 600: 94.28, 1000: 95.76, 3000: 96.51}},
    {"name": "Lee 2013 dropNN+PL+DAE",
     "reference": "Lee: Pseudo-label, the simple and efficient semi-supervised learning method for deep "
                  "neural networks, ICML 2013 workshop, table 2",
     "accuracy_pct": {100: 89.51, 600: 95.99, 1000: 96.54, 3000: 97.31}},
)


def published_for(source: str) -> tuple[dict, ...]:
    """The published rows that measure the same thing: MNIST's, only beside an MNIST curve."""
    return PUBLISHED if source == "mnist" else ()


def footnote(published=PUBLISHED) -> str:
    where = (f"{', '.join(p['name'] for p in published)}: published figures, from the papers, "
             "not from runs here; ") if published else ""
    return f"{where}std: {STD}."


def why_no_curve(rows: list[dict]) -> str | None:
    """Why these sweep rows make no label curve, None when they do (or when the
    grid has no data.labels: not a label sweep, nothing to say). Only the label
    draw may vary besides the count, or the points would mix configurations."""
    if not rows or LABELS not in rows[0]["grid"]:
        return None
    varied = sorted(k for k in rows[0]["grid"] if k not in (LABELS, LABEL_SEED)
                    and len({r["grid"][k] for r in rows}) > 1)
    if varied:
        return (f"no label curve: the grid varies {', '.join(varied)} besides {LABELS} and {LABEL_SEED} "
                "(each point would mix configurations)")
    bad = sorted({r["grid"][LABELS] for r in rows if not r["grid"][LABELS].isdigit()})
    if bad:
        return f"no label curve: {LABELS} must be label counts, got {', '.join(map(repr, bad))}"
    return None


def label_curve(rows: list[dict]) -> list[dict] | None:
    """Per label count, ascending: the draws and each net's test accuracy over
    them (mean, std, values); a net no row reports is None. None when the rows
    make no curve (see ``why_no_curve``)."""
    if not rows or LABELS not in rows[0]["grid"] or why_no_curve(rows):
        return None
    counts = sorted({int(r["grid"][LABELS]) for r in rows})
    curve = []
    for n in counts:
        group = sorted((r for r in rows if int(r["grid"][LABELS]) == n), key=lambda r: r["name"])
        point = {"labels": n, "n": len(group), "label_seeds": [r["grid"].get(LABEL_SEED) for r in group],
                 "variants": [r["name"] for r in group]}
        for key, _ in SERIES:
            point[key] = _stats([r.get(key) for r in group])
        curve.append(point)
    return curve


def _stats(values: list) -> dict | None:
    """mean, std and n of the values given (None ones skipped), None if none is."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals), "values": vals}


def _present(curve: list[dict]) -> list[tuple[str, str]]:
    """The series some point reports: no column or line for a net never trained."""
    return [(key, name) for key, name in SERIES if any(p[key] is not None for p in curve)]


def _cell(stats: dict | None) -> str:
    """ "95.12" for one draw, "95.12 ± 0.34 (n=3)" for several, "-" for none (in %)."""
    if stats is None:
        return "-"
    if stats["n"] == 1:
        return f"{100 * stats['mean']:.2f}"
    return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f} (n={stats['n']})"


def format_label_table(curve: list[dict], published=PUBLISHED) -> str:
    """A fixed-width table of test accuracy (%) per label count, published rows
    beside ours, and the footnote saying where those come from."""
    series = _present(curve)
    head = ["labels", *(name for _, name in series), *(p["name"] for p in published)]
    rows = [head]
    for point in curve:
        theirs = [p["accuracy_pct"].get(point["labels"]) for p in published]
        rows.append([str(point["labels"]), *(_cell(point[key]) for key, _ in series),
                     *("-" if v is None else f"{v:.2f}" for v in theirs)])
    return "\n".join([fixed_width(rows), footnote(published)])


def label_figure(curve: list[dict], published=PUBLISHED) -> Figure:
    """Test accuracy (%) against labels on a log axis: ours with std error bars,
    the published rows dashed."""
    fig = Figure(layout="constrained", figsize=(6.4, 4.4))
    ax = fig.subplots()
    x = np.array([p["labels"] for p in curve])
    handles = []
    for key, name in _present(curve):
        pts = [(n, p[key]) for n, p in zip(x, curve) if p[key] is not None]
        mean = np.array([100 * s["mean"] for _, s in pts])
        std = np.array([100 * s["std"] for _, s in pts])
        handles.append(ax.errorbar([n for n, _ in pts], mean, yerr=std if std.any() else None, marker="o",
                                   capsize=3, label=name))
    for p in published:
        ns = sorted(p["accuracy_pct"])
        handles += ax.plot(ns, [p["accuracy_pct"][n] for n in ns], linestyle="--", marker="s", alpha=0.7,
                           label=f"{p['name']} (published)")
    ax.set_xscale("log")
    ticks = sorted({*x.tolist(), *(n for p in published for n in p["accuracy_pct"])})
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("labeled examples (log scale)")
    ax.set_ylabel("test accuracy (%)")
    draws = max(p["n"] for p in curve)
    ax.set_title("test accuracy against labels" + (f" (error bars: std over up to {draws} draws)"
                                                  if draws > 1 else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize=8)  # ours first (matplotlib puts lines before error bars)
    return fig


def write_curve(curve: list[dict], directory: Path, pipeline: str, published=PUBLISHED) -> Path:
    """``labels.json`` and ``labels.png`` in ``directory``, each appearing whole
    (a sweep of the same pipeline may be writing them too); returns the PNG's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / "labels.json", {"pipeline": pipeline, "std": STD, "curve": curve,
                                                  "published": list(published)})
    buf = io.BytesIO()
    label_figure(curve, published).savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    png = directory / "labels.png"
    atomic_write_bytes(png, buf.getvalue())
    return png
