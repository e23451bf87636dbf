"""StackedAutoencoderClassifier() against MLPClassifier() in a cross-validation, both with defaults.

    python benchmarks/estimator_speed.py [--repeats 3] [--folds 5]

The breast-cancer table (569 x 30) after StandardScaler, 5-fold
``cross_val_score`` of ``make_pipeline(StandardScaler(), estimator)`` with the
same folds for both, ``random_state=0`` for both (the only parameter given),
``n_jobs=None`` (one process, as ``GridSearchCV`` runs by default). Each
repeat times both, alternating which goes first (the machine may be shared,
so the ratio is taken per repeat and the figure is the median ratio); both
times are also given as best and median. Reports the CV accuracy of each (the
same every repeat: both are seeded) and, for aepipe, the epochs each stage
ran in the last fit. aepipe warms up first (one fit: TensorFlow's import and
first tracing are a process's once-only cost, not a fit's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from aepipe import StackedAutoencoderClassifier  # noqa: E402


def timed_cv(estimator, X, y, cv) -> tuple[float, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        scores = cross_val_score(make_pipeline(StandardScaler(), clone(estimator)), X, y, cv=cv)
        return time.perf_counter() - t, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    X, y = load_breast_cancer(return_X_y=True)
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    ests = {"MLPClassifier()": MLPClassifier(random_state=0),
            "StackedAutoencoderClassifier()": StackedAutoencoderClassifier(random_state=0)}
    with warnings.catch_warnings():  # warm-up: import, thread pools, first tracing
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        warm = make_pipeline(StandardScaler(), clone(ests["StackedAutoencoderClassifier()"])).fit(X, y)
        print(f"aepipe warm-up fit (whole table): {time.perf_counter() - t:.2f} s, "
              f"epochs run per stage {warm[-1].n_iters_}")
    times = {name: [] for name in ests}
    scores = {}
    for r in range(args.repeats):
        order = list(ests) if r % 2 == 0 else list(reversed(ests))
        for name in order:
            seconds, s = timed_cv(ests[name], X, y, cv)
            times[name].append(seconds)
            scores[name] = s
        print(f"repeat {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in ests))
    print(f"\nbreast cancer {X.shape[0]} x {X.shape[1]}, StandardScaler, {args.folds}-fold cross_val_score, "
          f"{args.repeats} repeats")
    print(f"{'estimator':34}{'best s':>8}{'median s':>10}{'CV accuracy':>13}{'± sd':>8}")
    for name in ests:
        print(f"{name:34}{min(times[name]):8.2f}{statistics.median(times[name]):10.2f}"
              f"{np.mean(scores[name]):13.4f}{np.std(scores[name]):8.4f}")
    ratios = [a / m for a, m in zip(times["StackedAutoencoderClassifier()"], times["MLPClassifier()"])]
    print(f"time ratio aepipe / MLP, per repeat: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
