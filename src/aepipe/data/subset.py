"""Seeded, stratified subsets of a data set's rows (scikit-learn, no TensorFlow)."""

from __future__ import annotations

import numpy as np


def stratified_subset(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset of ``n`` rows (all rows if
    ``n`` covers them): the labeled rows of few-label mode, the t-SNE points."""
    if n is None or n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)
