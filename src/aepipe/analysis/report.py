"""report.md for a run: what ran, what it cost, what it scored, and the pictures.

Rendered from plain data (``run.json``, ``spec.json``, the PNG names), so the
runner and ``aepipe report`` print the same thing.

``metrics.json`` keys (stable; new keys may be added, these keep their meaning):

- ``test_accuracy``: the fine-tuned pretrained net on the test split.
- ``baseline_test_accuracy``, ``baseline_epochs``, ``baseline_seconds``: the same
  net from random init (the ``baseline`` stage: same labels, data order, noise
  seeds and fine-tune budget; ``evaluate.baseline``), scored by the same
  function at float32.
- ``comparison``: the paired test of the two nets on the same test rows
  (``metrics.paired_comparison``): ``n``, ``only_pretrained``,
  ``only_baseline``, ``both``, ``neither``, ``accuracy_difference`` (a
  fraction), ``ci95`` ([low, high], a fraction), ``p_value`` (exact McNemar),
  ``verdict`` (``helped`` / ``hurt`` / ``within noise``).
- ``plain_baseline_test_accuracy``, ``plain_comparison``: with fine-tune options
  that learn from unlabeled inputs (``finetune.pseudo_labels``,
  ``finetune.reconstruction_weight``), the random-init net fine-tuned without
  them (the ``baseline-plain`` stage), and the pretrained net's paired test
  against it.
- ``reconstruction_mse``: ``{pretrain-i: MSE}`` of layer i reconstructing its own
  input (the codes of layer i-1) on the test split.
- ``reconstruction_mse_input``: ``{pretrain-i: MSE}`` in input space, test inputs
  encoded through layers 0..i and decoded back.
- ``reconstruction``: the whole stack's test reconstruction as squared error per
  example (summed over its values; per image for images, unlike Keras'
  per-value ``mse``): ``greedy`` (the pretrained stack), ``unroll`` and
  ``unroll_random_init`` (with ``unroll.epochs``), ``pca`` (``pca_components``
  = ``code_size`` components fitted on the training inputs in the same run).
- ``tsne``: ``{raw|pca|ae: {knn_accuracy, trustworthiness, seconds, dims, points}}``
  (``evaluate.tsne``): 5-fold cross-validated 10-NN accuracy of the 2-D
  embedding, ``sklearn.manifold.trustworthiness`` (10 neighbours), t-SNE
  seconds, feature width, number of test points.
- ``stages``: ``{stage name: seconds it took to build}``.
- ``confusion_matrix``, ``classification_report``, ``n_test``.
"""

from __future__ import annotations

import dataclasses
import json

from ..engine.plan import base_name

FEATURE_LABELS = {"raw": "raw inputs", "pca": "PCA-{w}", "ae": "AE-{w} (top codes)"}
PLOT_TITLES = {"curves.png": "Training curves", "reconstructions.png": "Reconstructions by depth",
               "filters.png": "First-layer filters", "confusion.png": "Confusion matrix",
               "tsne.png": "t-SNE of the test set", "code_scatter.png": "2-D code by class, next to PCA"}


def pct(v, unit: str = " %") -> str:
    """A fraction as a percentage with two decimals ("n/a" for None)."""
    return "n/a" if v is None else f"{100 * v:.2f}{unit}"


def _plain(obj):
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def cluster_report_lines(m: dict) -> list[str]:
    from .cluster_report import report_lines

    return report_lines(m)


def render_report(result, spec, plots=()) -> str:
    """Markdown for a run. ``result``: RunResult or its ``as_dict()``;
    ``spec``: PipelineSpec or its ``to_dict()``; ``plots``: PNG names in the run dir."""
    run, spec = _plain(result), _plain(spec)
    m = run.get("metrics") or {}
    lines = [f"# aepipe run: {run['pipeline']}", "", f"Run directory: `{run.get('run_dir')}`", ""]
    results = _results(m, spec) if "test_accuracy" in m else []  # aepipe cluster: no classifier
    lines += results + cluster_report_lines(m) + _tsne(m, spec) + _stages(run, m) + _plots(plots)
    lines += ["## Pipeline (resolved)", "", "```json", json.dumps(spec, indent=2), "```", ""]
    return "\n".join(lines)


def _results(m: dict, spec: dict) -> list[str]:
    labels = (spec.get("data") or {}).get("labels")
    lines = ["## Results", "", f"Labels used for head and fine-tune: {labels or 'all'}", "",
             "| metric | value |", "|---|---|",
             f"| test accuracy (pretrained; {_budget(spec)}) | {pct(m.get('test_accuracy'))} |"]
    if m.get("baseline_test_accuracy") is not None:
        seconds = m.get("baseline_seconds")
        took = f", {seconds:.0f} s" if seconds is not None else ""
        lines.append(f"| random-init baseline ({m.get('baseline_epochs')} epochs{took}) | "
                     f"{pct(m['baseline_test_accuracy'])} |")
    if m.get("plain_baseline_test_accuracy") is not None:
        lines.append(f"| random init, fine-tuned on the labeled rows alone | "
                     f"{pct(m['plain_baseline_test_accuracy'])} |")
    for name, mse in (m.get("reconstruction_mse") or {}).items():
        if mse is not None:
            lines.append(f"| reconstruction MSE, {name} (its own input) | {mse:.5f} |")
    for name, mse in (m.get("reconstruction_mse_input") or {}).items():
        lines.append(f"| reconstruction MSE through {name} (input space) | {mse:.5f} |")
    lines.append("")
    lines += reconstruction_lines(m)
    lines += comparison_lines(m)
    return lines


# metrics key -> (report.md label, the one-line summary's label)
RECONSTRUCTION_LABELS = {"greedy": ("greedy stack", "greedy stack"),
                         "unroll": ("unrolled, fine-tuned from the greedy stack", "unrolled"),
                         "unroll_random_init": ("the same deep autoencoder from random init",
                                                "unrolled from random init"),
                         "pca": ("PCA-{k}", "PCA-{k} (same code width)")}


def _reconstruction_rows(r: dict, short: bool) -> list[tuple[str, float]]:
    """(label, squared error per example) of each model the run measured, in a fixed order."""
    return [(labels[short].format(k=r.get("pca_components")), r[k])
            for k, labels in RECONSTRUCTION_LABELS.items() if r.get(k) is not None]


def reconstruction_summary(m: dict) -> str | None:
    """One line: each deep reconstruction's squared error per example, saying what
    it compares (a bare "greedy 1.333, PCA-24 0.371" read as a failure)."""
    r = m.get("reconstruction")
    if not r:
        return None
    rows = _reconstruction_rows(r, short=True)
    if r.get("unroll") is None:  # the greedy stack is all there is: say it was never fine-tuned end to end
        rows = [(f"{label} (no unroll)" if label == "greedy stack" else label, v) for label, v in rows]
    return "test reconstruction error, squared error per example (lower is better): " + ", ".join(
        f"{label} {v:.3f}" for label, v in rows)


def reconstruction_lines(m: dict) -> list[str]:
    r = m.get("reconstruction")
    if not r:
        return []
    lines = [f"Whole-stack reconstruction of the test set, squared error per example (summed over its "
             f"values; code of {r['code_size']}):", "", "| model | squared error per example |", "|---|---|"]
    lines += [f"| {label} | {v:.3f} |" for label, v in _reconstruction_rows(r, short=False)]
    return lines + [""]


# metrics key -> what the pretrained net is compared with
COMPARISONS = {"comparison": "the random-init one",
               "plain_comparison": "the random-init one fine-tuned on the labeled rows alone"}
PAIR_VERDICTS = {"helped": "**the pretrained net is ahead**", "hurt": "**the pretrained net is behind**",
                 "within noise": "**within noise** (no difference the test can tell from chance)"}


def comparison_lines(m: dict) -> list[str]:
    """Each paired test, in words: what a reader needs to trust the verdict, which
    speaks of this pair of nets (the finding over seeds is ``findings_lines``)."""
    from .replicates import findings_lines

    lines = []
    for key, other in COMPARISONS.items():
        c = m.get(key)
        if not c:
            continue
        lo, hi = c["ci95"]
        lines += [f"Paired comparison with {other}, on the same {c['n']} test rows: {c['only_pretrained']} "
                  f"only the pretrained net gets right, {c['only_baseline']} only {other}; exact McNemar p = "
                  f"{c['p_value']:.3g}; accuracy difference {100 * c['accuracy_difference']:+.2f} points "
                  f"(95 % interval {100 * lo:+.2f} to {100 * hi:+.2f}). Verdict for this pair of nets: "
                  f"{PAIR_VERDICTS[c['verdict']]}.", ""]
    built = m.get("stages") or {}
    if m.get("baseline_seconds") is not None and built:
        cost = sum(v for k, v in built.items()
                   if base_name(k) == k and (k.startswith("pretrain-") or k in ("head", "finetune")))
        lines += [f"Building the pretrained net took {cost:.0f} s (pretrain, head, fine-tune); "
                  f"the random-init one {m['baseline_seconds']:.0f} s.", ""]
    return lines + findings_lines(m)


def _budget(spec: dict) -> str:
    """Epochs the pretrained net had: per pretrained layer, head, fine-tune."""
    layers = "+".join(str(layer.get("epochs", "?")) for layer in spec.get("layers") or [])
    head, ft = ((spec.get(k) or {}).get("epochs", "?") for k in ("head", "finetune"))
    return f"pretrain {layers}, head {head}, fine-tune {ft} epochs"


ENGINE_NAMES = {"opentsne": "openTSNE", "sklearn": "scikit-learn's Barnes-Hut t-SNE"}


def _tsne(m: dict, spec: dict) -> list[str]:
    table = m.get("tsne")
    if not table:
        return []
    width = (spec.get("layers") or [{}])[-1].get("units", "?")
    n = next(iter(table.values())).get("points", (spec.get("evaluate") or {}).get("tsne_samples"))
    engine = next(iter(table.values())).get("engine")  # tsne stages before version 2 do not say
    lines = [f"## t-SNE of {n} test points" + (f" ({ENGINE_NAMES.get(engine, engine)})" if engine else ""), "",
             "| features | 10-NN accuracy (5-fold CV) | trustworthiness | seconds |", "|---|---|---|---|"]
    for name, row in table.items():
        label = FEATURE_LABELS.get(name, name).format(w=row.get("dims", width))
        knn = "n/a (no labels)" if row["knn_accuracy"] is None else f"{row['knn_accuracy']:.3f}"
        lines.append(f"| {label} | {knn} | {row['trustworthiness']:.3f} | "
                     f"{row['seconds']:.1f} |")
    return lines + [""]


def _stages(run: dict, m: dict) -> list[str]:
    built = m.get("stages") or {}
    lines = ["## Stages", "", "| stage | key | status | seconds (this run) | seconds (build) |",
             "|---|---|---|---|---|"]
    for s in run.get("stages", []):
        b = built.get(s["name"])
        lines.append(f"| {s['name']} | `{s['key'][:16]}` | {s['status']} | {s['seconds']:.1f} | "
                     f"{'n/a' if b is None else f'{b:.1f}'} |")
    return lines + [""]


def plot_title(name: str) -> str:
    """A heading for a run's PNG: never the raw file name."""
    if name in PLOT_TITLES:
        return PLOT_TITLES[name]
    stage, _, picture = name.removesuffix(".png").partition("-latent_")
    if picture:
        what = {"scatter": "latent means of the test set by class", "manifold": "decoded latent manifold"}
        return f"Layer {stage.removeprefix('pretrain-')}: {what.get(picture, picture)}"
    return name.removesuffix(".png").replace("_", " ").replace("-", " ").capitalize()


def _plots(plots) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    for name in plots:
        lines += [f"### {plot_title(name)}", "", f"![{name}]({name})", ""]
    return lines
