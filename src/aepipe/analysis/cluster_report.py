"""The clustering section of report.md and ``clusters.png`` (no TensorFlow)."""

from __future__ import annotations

import numpy as np

NAMES = {"clusters": "this pipeline's clustering", "random_init": "the same clustering from random weights",
         "kmeans_pixels": "k-means on the raw inputs", "kmeans_pca": "k-means on PCA of the codes' width"}


def report_lines(m: dict) -> list[str]:
    """Scores of every clustering on the training rows and on the test rows (through predict)."""
    c = m.get("clustering")
    if not c:
        return []
    embed = " on a UMAP embedding" if c.get("embed") == "umap" else ""
    lines = ["## Clustering", "", f"Method: {c.get('method')}{embed}, {c.get('n_clusters')} clusters. "
             "Labels only score the assignments; test rows are assigned through predict.", ""]
    scores = c.get("scores")
    if scores:
        lines += ["| clustering | test accuracy | test NMI | test ARI | train accuracy | train NMI | train ARI |",
                  "|---|---|---|---|---|---|---|"]
        for name, s in scores.items():
            te, tr = s["test"], s["train"]
            lines.append(f"| {NAMES.get(name, name)} | {te['accuracy']:.4f} | {te['nmi']:.4f} | {te['ari']:.4f} | "
                         f"{tr['accuracy']:.4f} | {tr['nmi']:.4f} | {tr['ari']:.4f} |")
        lines.append("")
    else:
        lines += ["No labels: scored without them.", ""]
    cmp = c.get("comparison")
    if cmp:
        lines += [f"Did pretraining help clustering? {cmp['verdict']} on the test rows (each cluster named by the "
                  f"class the training rows matched it to): accuracy difference {cmp['accuracy_difference']:+.4f}, "
                  f"95 % interval {cmp['ci95'][0]:+.4f} to {cmp['ci95'][1]:+.4f}, McNemar p = {cmp['p_value']:.3g}.",
                  ""]
    seeds = c.get("over_seeds")
    if seeds:
        lines += [f"Over seeds (clustering accuracy on the test rows, {seeds['n']} replicates): {seeds['sentence']}.",
                  ""]
    un = c.get("unlabeled") or {}
    if un:
        sil = un.get("silhouette")
        lines += [f"Silhouette of the test rows in the clustering space: {'n/a' if sil is None else f'{sil:.4f}'}; "
                  f"test cluster sizes: {un.get('sizes')}.", ""]
    ref = c.get("refinement") or {}
    if ref.get("rounds"):
        lines += [f"Refinement: {ref['rounds']} target updates, "
                  f"{'stopped by tol' if ref.get('converged') else 'whole budget'}; share of assignments changed "
                  f"at the last update: {ref['changed'][-1] if ref.get('changed') else 'n/a'}.", ""]
    return lines


def clusters_figure(points: np.ndarray, clusters: np.ndarray, table=None):
    """The test rows' clustering space in 2-D coloured by cluster, beside the cluster-by-class table."""
    from matplotlib.figure import Figure

    import matplotlib

    fig = Figure(figsize=(13 if table is not None else 6.6, 5.6), layout="constrained")
    axes = fig.subplots(1, 2 if table is not None else 1, squeeze=False)[0]
    ks = np.unique(clusters)
    cmap = matplotlib.colormaps["tab10" if len(ks) <= 10 else "tab20"]
    for i, k in enumerate(ks):
        pts = points[clusters == k]
        axes[0].scatter(pts[:, 0], pts[:, 1], s=3, color=cmap(i % cmap.N), label=str(k))
    axes[0].legend(title="cluster", markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[0].set(title="test rows by cluster (2-D projection of the clustering space)", xticks=[], yticks=[])
    if table is not None:
        t = np.asarray(table)
        axes[1].imshow(t, cmap="Blues")
        for (r, col), v in np.ndenumerate(t):
            axes[1].text(col, r, str(v), ha="center", va="center", fontsize=6,
                         color="white" if v > t.max() / 2 else "black")
        axes[1].set(xlabel="class", ylabel="cluster", title="test rows: cluster by class",
                    xticks=range(t.shape[1]), yticks=range(t.shape[0]))
    return fig
