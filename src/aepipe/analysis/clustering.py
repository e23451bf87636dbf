"""Scores of a clustering: with labels (accuracy after Hungarian matching, NMI,
ARI), without (silhouette, cluster sizes). No TensorFlow.

Labels only score here: they are read after the assignments exist, never by
the stage that makes them.
"""

from __future__ import annotations

import numpy as np


def contingency(clusters: np.ndarray, labels: np.ndarray, n_clusters: int | None = None) -> np.ndarray:
    """Counts of (cluster, class): rows clusters, columns classes."""
    clusters, labels = np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    k = max(int(clusters.max(initial=-1)) + 1, n_clusters or 0)
    c = max(int(labels.max(initial=-1)) + 1, 1)
    table = np.zeros((k, c), dtype=np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def matching(clusters: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Cluster -> class maximising the matched rows (the Hungarian method)."""
    from scipy.optimize import linear_sum_assignment

    table = contingency(clusters, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def cluster_accuracy(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose cluster is matched to their class, one cluster per class."""
    table = contingency(clusters, labels)
    match = matching(clusters, labels)
    return float(sum(table[r, c] for r, c in match.items()) / max(len(labels), 1))


def label_scores(clusters: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy (Hungarian), NMI and ARI of one clustering against the classes."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    clusters, labels = np.asarray(clusters), np.asarray(labels)
    return {"accuracy": cluster_accuracy(clusters, labels),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters))}


def unlabeled_scores(space: np.ndarray, clusters: np.ndarray, seed: int, sample: int = 5000) -> dict:
    """Silhouette (on a seeded sample of at most ``sample`` rows: it is quadratic)
    and the size of each cluster."""
    from sklearn.metrics import silhouette_score

    space = np.asarray(space, dtype=np.float64).reshape(len(clusters), -1)
    sizes = np.bincount(np.asarray(clusters, dtype=np.int64)).tolist()
    found = int(np.count_nonzero(sizes))
    silhouette = None
    if 1 < found < len(clusters):
        silhouette = float(silhouette_score(space, clusters, sample_size=min(sample, len(clusters)),
                                            random_state=seed))
    return {"silhouette": silhouette, "sizes": sizes}


def score_table(assignments: dict[str, dict[str, np.ndarray]], y_train, y_test) -> dict:
    """For every clustering (name -> {"train", "test"} assignments), its label
    scores on the training rows and on the test rows (through predict)."""
    out = {}
    for name, split in assignments.items():
        out[name] = {"train": label_scores(split["train"], y_train), "test": label_scores(split["test"], y_test)}
    return out


def stage_assignments(stage_dir, prefix: str = "") -> dict[str, dict[str, np.ndarray]]:
    """A cluster stage's assignments by clustering: ``{name: {"train", "test"}}``."""
    from pathlib import Path

    out: dict = {}
    for path in sorted((Path(stage_dir) / "assignments").glob("*.npy")):
        name, _, part = path.stem.rpartition("-")
        out.setdefault(prefix + name, {})[part] = np.load(path)
    return out


def run_scores(cluster_dir, baseline_dir, y_train, y_test) -> dict:
    """metrics.json's ``clustering``: every clustering of the run scored against the
    labels on the training rows and on the test rows, and the paired comparison of
    the pretrained clustering with its random-init twin on the test rows."""
    assignments = stage_assignments(cluster_dir)
    if baseline_dir is not None:
        assignments["random_init"] = stage_assignments(baseline_dir)["clusters"]
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    out = {"scores": score_table(assignments, y_train, y_test)}
    if baseline_dir is not None:  # rows each matched clustering gets right, pretrained vs random init
        from .metrics import paired_comparison

        mine = _matched(assignments["clusters"], y_train, y_test)
        twin = _matched(assignments["random_init"], y_train, y_test)
        out["comparison"] = paired_comparison(y_test, mine, twin)
    out["table"] = contingency(assignments["clusters"]["test"], y_test).tolist()
    return out


def _matched(split: dict, y_train, y_test) -> np.ndarray:
    """Test predictions as classes: each cluster named by the class the training
    rows matched it to (so no test label chooses the matching)."""
    match = matching(split["train"], y_train)
    return np.array([match.get(int(k), -1) for k in split["test"]])


def over_seeds(pairs: list[tuple[int, str, str]], y_test) -> dict:
    """``evaluate.replicates``: each replicate's (seed, cluster dir, twin dir) as one
    finding over seeds on the test rows' clustering accuracy (``replicates.across_seeds``)."""
    from .replicates import across_seeds

    mine = [cluster_accuracy(stage_assignments(a)["clusters"]["test"], y_test) for _, a, _ in pairs]
    twin = [cluster_accuracy(stage_assignments(b)["clusters"]["test"], y_test) for _, _, b in pairs]
    return across_seeds(mine, twin, [seed for seed, _, _ in pairs])
