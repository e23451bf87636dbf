"""Which rows the estimators validate on: a seeded draw, as MLPClassifier's early_stopping takes.

The engine holds out the last ``validation_split`` of the rows it trains on
(``stages.context.split_validation``, Keras' rule): of every row when
pretraining or unrolling, of the labeled rows (y >= 0) for the head and the
fine-tune. A CLI data set is shuffled before it gets there, but estimators are
handed whatever order the caller has, and ``load_iris`` or ``load_wine`` come
sorted by class: the last rows are one class. So the estimators hand the engine
their rows in an order whose tails are the draw ``train_test_split(...,
stratify=y, random_state=...)`` would make, and leave the engine as it is.
"""

from __future__ import annotations

import numpy as np


def validation_last(y: np.ndarray, fraction: float, seed: int, stratify: bool) -> np.ndarray:
    """A permutation of the rows: a seeded draw of the engine's count of labeled
    validation rows last (stratified by ``y`` with ``stratify``, when every class
    can give one), and just before it a seeded draw of unlabeled rows (y == -1)
    to make up the held-out count of all rows. The other rows keep their order;
    no validation (``fraction`` 0): the rows as they are."""
    y = np.asarray(y)
    n = len(y)
    if fraction <= 0 or n == 0:
        return np.arange(n)
    from ..stages.context import split_validation  # the engine's own count (imports Keras)

    labeled, unlabeled = np.flatnonzero(y >= 0), np.flatnonzero(y < 0)
    n_labeled = len(labeled) - split_validation(len(labeled), fraction)
    held_labeled = labeled[_draw(y[labeled], n_labeled, seed, stratify)]
    # all rows' tail: the labeled draw and, before it, enough unlabeled rows (when
    # there are too few, the rows just before them in order fill it)
    n_unlabeled = min(max(n - split_validation(n, fraction) - n_labeled, 0), len(unlabeled))
    held_unlabeled = unlabeled[_draw(np.zeros(len(unlabeled)), n_unlabeled, seed, False)]
    held = np.concatenate([held_unlabeled, held_labeled])
    rest = np.setdiff1d(np.arange(n), held)
    return np.concatenate([rest, held]).astype(np.intp)


def _draw(labels: np.ndarray, k: int, seed: int, stratify: bool) -> np.ndarray:
    """Sorted positions of a seeded draw of ``k`` of ``labels``; stratified when
    asked and possible (every class has 2 rows, both sides have room for each)."""
    n = len(labels)
    if k <= 0:
        return np.arange(0)
    if k >= n:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    strata = labels if stratify and counts.min() >= 2 and min(k, n - k) >= len(counts) else None
    _, held = train_test_split(np.arange(n), test_size=k, stratify=strata, random_state=seed)
    return np.sort(held)
