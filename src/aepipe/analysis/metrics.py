"""Metrics: the paired comparison of two classifiers, and how good a 2-D embedding is.

Pure numpy + scikit-learn + scipy (no TensorFlow), so the ``tsne`` command,
the stages and the tests share one implementation.

The paired comparison answers "did pretraining help?" on the same test rows:
rows that only one of the two nets classifies correctly decide it (the exact
McNemar test, a two-sided binomial test on those rows), with a 95 % interval
for the difference in accuracy.

The t-SNE table answers "did the autoencoder learn a better space than the raw
pixels, or than PCA of the same width?" with two numbers per feature set:

- ``knn_accuracy``: cross-validated accuracy of a 10-nearest-neighbour
  classifier on the 2-D embedding (how well classes separate in the picture);
- ``trustworthiness``: ``sklearn.manifold.trustworthiness`` with 10 neighbours
  (how faithfully the picture keeps each point's neighbours of the feature space).
"""

from __future__ import annotations

import time

import numpy as np

FEATURES = ("raw", "pca", "ae")
N_NEIGHBORS = 10


def feature_sets(x_raw: np.ndarray, codes: np.ndarray | None, which=FEATURES, seed: int = 0) -> dict:
    """Raw inputs, PCA codes as wide as the autoencoder codes, and the autoencoder codes."""
    x_raw = np.asarray(x_raw, dtype=np.float32).reshape(len(x_raw), -1)
    out = {}
    for name in which:
        if name == "raw":
            out["raw"] = x_raw
        elif name == "pca":
            from sklearn.decomposition import PCA

            width = x_raw.shape[1] if codes is None else np.asarray(codes).reshape(len(codes), -1).shape[1]
            width = min(width, *x_raw.shape)
            out["pca"] = PCA(n_components=width, random_state=seed).fit_transform(x_raw).astype(np.float32)
        elif name == "ae":
            if codes is None:
                raise ValueError("feature set 'ae' needs autoencoder codes")
            out["ae"] = np.asarray(codes, dtype=np.float32).reshape(len(codes), -1)
        else:
            raise ValueError(f"unknown feature set {name!r}; choose from {', '.join(FEATURES)}")
    return out


TSNE_THREADS = 2  # openTSNE's threads on large sets (its embedding is the same with 1 or 2: checked)
TSNE_THREADED_FROM = 2000  # below this many points a second thread costs more in syncing than it saves


def tsne(x: np.ndarray, seed: int = 0, perplexity: float = 30.0, engine: str = "sklearn") -> np.ndarray:
    """t-SNE to 2-D, PCA-initialised, perplexity capped for tiny sets: openTSNE
    (``engine="opentsne"``: Barnes-Hut below 10,000 points, FFT-interpolated above)
    or scikit-learn's Barnes-Hut. The two give different embeddings of the same rows."""
    perplexity = min(perplexity, max(1.0, (len(x) - 1) / 3))
    if engine == "opentsne":
        from openTSNE import TSNE as OpenTSNE

        threads = TSNE_THREADS if len(x) >= TSNE_THREADED_FROM else 1
        return np.asarray(OpenTSNE(n_components=2, perplexity=perplexity, initialization="pca",
                                   random_state=seed, n_jobs=threads).fit(np.asarray(x, dtype=np.float64)))
    if engine != "sklearn":
        raise ValueError(f"unknown t-SNE engine {engine!r}; choose from opentsne, sklearn")
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed,
                n_jobs=TSNE_THREADS).fit_transform(x)


def knn_accuracy(embedding: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """Mean 5-fold stratified cross-validated accuracy of 10-NN on the embedding."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = max(2, min(folds, int(np.bincount(np.asarray(y)).min())))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    k = min(N_NEIGHBORS, len(y) - len(y) // folds - 1)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), embedding, y, cv=cv).mean())


def trustworthiness(x: np.ndarray, embedding: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness as tw

    k = min(N_NEIGHBORS, len(x) // 2 - 1)
    return float(tw(x, embedding, n_neighbors=k))


def tsne_table(features: dict, y: np.ndarray, seed: int = 0, log=None, engine: str = "sklearn") -> tuple[dict, dict]:
    """t-SNE of each feature set: ``({name: {knn_accuracy, trustworthiness, seconds,
    dims, points, engine}}, {name: embedding})``. ``seconds`` is the t-SNE fit alone;
    ``knn_accuracy`` is None without labels (``y`` all -1)."""
    labeled = bool(np.all(np.asarray(y) >= 0))
    table, embeddings = {}, {}
    for name, x in features.items():
        if log:
            log(f"t-SNE ({engine}) of {name} features {tuple(x.shape)}")
        t = time.perf_counter()
        emb = tsne(x, seed, engine=engine)
        seconds = time.perf_counter() - t
        embeddings[name] = emb.astype(np.float32)
        table[name] = {"knn_accuracy": knn_accuracy(emb, y, seed) if labeled else None,
                       "trustworthiness": trustworthiness(x, emb),
                       "seconds": round(seconds, 2), "dims": int(x.shape[1]), "points": int(len(x)), "engine": engine}
    return table, embeddings


def image_side(n_features: int) -> int | None:
    """The side of a square image with ``n_features`` pixels (8 for digits, 28 for MNIST), else None."""
    side = int(round(np.sqrt(n_features)))
    return side if side * side == n_features and side >= 4 else None


ALPHA = 0.05  # the paired test's significance level: below it, the verdict is helped or hurt


def paired_comparison(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """Net A (pretrained) against net B (random init) on the same test rows.

    ``only_a`` / ``only_b``: rows only A / only B classifies correctly. The
    p-value is the exact McNemar test (``scipy.stats.binomtest`` of only_a in
    only_a + only_b at 1/2). The 95 % interval of the accuracy difference
    (only_a - only_b) / n is the exact (Clopper-Pearson) interval of A's share
    of those discordant rows, scaled to the difference: unlike a Wald interval
    it agrees with the exact test when few rows disagree. The verdict is
    ``helped`` / ``hurt`` when p < 0.05, else ``within noise``.
    """
    from scipy.stats import binomtest

    y, a, b = (np.asarray(v).ravel() for v in (y, pred_a, pred_b))
    right_a, right_b = a == y, b == y
    only_a, only_b, n = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b)), len(y)
    discordant = only_a + only_b
    diff = (only_a - only_b) / n
    if discordant:
        test = binomtest(only_a, discordant, 0.5)
        p, share = float(test.pvalue), test.proportion_ci(confidence_level=1 - ALPHA, method="exact")
        ci = [discordant / n * (2 * share.low - 1), discordant / n * (2 * share.high - 1)]
    else:
        p, ci = 1.0, [0.0, 0.0]
    verdict = "within noise" if p >= ALPHA else ("helped" if diff > 0 else "hurt")
    return {"n": n, "only_pretrained": only_a, "only_baseline": only_b, "both": int(np.sum(right_a & right_b)),
            "neither": int(np.sum(~right_a & ~right_b)), "accuracy_difference": float(diff),
            "ci95": [float(ci[0]), float(ci[1])], "p_value": p, "verdict": verdict}


PCA_MAX_ROWS = 100_000  # PCA is fitted on at most this many training rows (a seeded subset)


def pca_reconstruction(x_train, x_test, n_components: int, seed: int = 0) -> dict:
    """PCA with ``n_components`` fitted on the training inputs: its test squared
    error per example (summed over values), and the test rows' projection (the
    first two components). The exact SVD where it is affordable, so the figure
    does not move with a random start."""
    from sklearn.decomposition import PCA

    xtr = np.asarray(x_train, dtype=np.float32).reshape(len(x_train), -1)
    if len(xtr) > PCA_MAX_ROWS:
        xtr = xtr[np.sort(np.random.default_rng(seed).choice(len(xtr), PCA_MAX_ROWS, replace=False))]
    xte = np.asarray(x_test, dtype=np.float32).reshape(len(x_test), -1)
    k = max(1, min(n_components, *xtr.shape))
    solver = "full" if xtr.shape[1] <= 4096 else "randomized"
    pca = PCA(n_components=k, svd_solver=solver, random_state=seed).fit(xtr)
    z = pca.transform(xte)
    recon = pca.inverse_transform(z)
    error = float(np.mean(np.sum(np.square(recon.astype(np.float64) - xte), axis=1)))
    return {"squared_error_per_example": error, "components": int(k), "test_projection": z[:, :2]}
