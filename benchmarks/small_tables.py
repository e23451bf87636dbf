"""The estimators with their default parameters on small tables, next to scikit-learn's own.

    python benchmarks/small_tables.py [--tables breast_cancer,wine,iris] [--folds 5]

For each table, 5-fold stratified cross-validated accuracy after MinMaxScaler of:
- ``MLPClassifier()`` and ``StackedAutoencoderClassifier()``, both with default parameters;
- ``AutoencoderTransformer()`` + ``LogisticRegression()`` against ``PCA(n_components=<the
  same width, at most the feature count>)`` + ``LogisticRegression()``, and
  LogisticRegression alone;
and the slowest single fit of each aepipe estimator, in seconds. Every estimator
gets ``random_state=0``; aepipe's ConvergenceWarnings are counted, not shown.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from aepipe import AutoencoderTransformer, StackedAutoencoderClassifier

TABLES = {"breast_cancer": load_breast_cancer, "wine": load_wine, "iris": load_iris}


def score(estimator, X, y, folds: int) -> tuple[float, float, int]:
    """(mean CV accuracy, slowest fit in seconds, ConvergenceWarnings raised)."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        out = cross_validate(make_pipeline(MinMaxScaler(), *estimator), X, y, cv=cv)
    n_warned = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float(np.mean(out["test_score"])), float(np.max(out["fit_time"])), n_warned


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    width = AutoencoderTransformer().layers[-1]
    print(f"{'table':15}{'rows x cols':>12}  {'estimator':44}{'accuracy':>9}{'max fit s':>10}{'warned':>7}")
    for name in args.tables.split(","):
        X, y = TABLES[name](return_X_y=True)
        rows = {
            "MLPClassifier()": [MLPClassifier(random_state=0)],
            "StackedAutoencoderClassifier()": [StackedAutoencoderClassifier(random_state=0)],
            "AutoencoderTransformer() + LogisticRegression": [AutoencoderTransformer(random_state=0),
                                                               LogisticRegression(max_iter=1000)],
            f"PCA({min(width, X.shape[1])}) + LogisticRegression": [PCA(min(width, X.shape[1]), random_state=0),
                                                                     LogisticRegression(max_iter=1000)],
            "LogisticRegression": [LogisticRegression(max_iter=1000)],
        }
        t0 = time.perf_counter()
        for label, est in rows.items():
            acc, slowest, warned = score(est, X, y, args.folds)
            print(f"{name:15}{f'{X.shape[0]} x {X.shape[1]}':>12}  {label:44}{acc:9.4f}{slowest:10.1f}{warned:7d}")
        print(f"{name}: {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
