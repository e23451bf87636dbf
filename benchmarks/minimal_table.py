"""A minimal pipeline on a table no recipe was chosen on, against MLPClassifier and the estimator.

    python benchmarks/minimal_table.py [--seeds 0,1,2] [--rows 4000] [--scaler minmax|standard] [--old-defaults]

The table: ``make_classification`` with 40 features (20 informative, 10
redundant), 10 classes of 2 clusters each, 4000 rows, table seed 31207 (used by
no recipe or test; nothing in aepipe was tuned on it), a stratified 75/25 split
(split seed 0), then a scaler fitted on the training rows, the test rows getting
the same transform (unclipped): ``MinMaxScaler`` (``--scaler minmax``, the
default) or ``StandardScaler`` (``--scaler standard``, scikit-learn's usual
preprocessing). Nothing else changes with the scaler: layer 0's "auto"
decoder and loss follow the data (sigmoid + binary cross-entropy for training
inputs in [0, 1], else linear + MSE), so the pipeline and the estimator are
written the same for both. It is written as an ``.npz`` with x_train,
y_train, x_test, y_test, as ``data.source = "npz:PATH"`` reads it.

For each seed, test accuracy of:
- ``MLPClassifier()`` and ``MLPClassifier((100, 100))``, scikit-learn defaults;
- ``StackedAutoencoderClassifier(layers=(100, 100))``, defaults;
- ``aepipe run`` (the CLI, a fresh artifacts directory) of the minimal pipeline
  ``data.source = "npz:PATH"`` and two ``[[layers]] units = 100`` lines, with
  ``--set seed=S`` and nothing else: the spec's defaults;
- with ``--old-defaults``, the same pipeline with the spec's training defaults
  before issue 32 written out (rmsprop, batch 256, 50 epochs, no stopping rule,
  no pretraining noise), for comparison.

Every model gets the seed as its ``random_state`` / ``seed``; the table and
split stay the same. Prints one line per fit, then a markdown table of mean ±
sample standard deviation over the seeds and the mean wall seconds of a fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler, StandardScaler

TABLE_SEED = 31207
AEPIPE = [sys.executable, "-m", "aepipe.cli"]
MINIMAL = 'data.source = "npz:{path}"\n\n[[layers]]\nunits = 100\n\n[[layers]]\nunits = 100\n'
OLD_DEFAULTS = [f"{section}.{key}={value}" for section in ("pretrain", "head", "finetune")
                for key, value in (("optimizer", "rmsprop"), ("batch_size", 256), ("epochs", 50),
                                   ("n_iter_no_change", 0))] + ["pretrain.noise.kind=none"]


SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler}


def make_table(rows: int, path: Path, scaler: str = "minmax") -> tuple:
    X, y = make_classification(n_samples=rows, n_features=40, n_informative=20, n_redundant=10, n_classes=10,
                               n_clusters_per_class=2, random_state=TABLE_SEED)
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    fitted = SCALERS[scaler]().fit(x_train)
    x_train, x_test = fitted.transform(x_train).astype(np.float32), fitted.transform(x_test).astype(np.float32)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return x_train, y_train, x_test, y_test


def run_pipeline(toml: Path, seed: int, work: Path, overrides=()) -> float:
    """``aepipe run`` of ``toml`` on a fresh store; the test accuracy it reports."""
    artifacts = Path(tempfile.mkdtemp(prefix="store-", dir=work))
    cmd = [*AEPIPE, "run", str(toml), "--json", "-q", "--artifacts", str(artifacts), "--set", f"seed={seed}"]
    for kv in overrides:
        cmd += ["--set", kv]
    proc = subprocess.run(cmd, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, stdout=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"minimal_table: {' '.join(cmd)} failed (exit {proc.returncode})\n{proc.stdout}")
    return float(json.loads(proc.stdout)["metrics"]["test_accuracy"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--scaler", choices=sorted(SCALERS), default="minmax",
                    help="the scaler fitted on the training rows (default minmax)")
    ap.add_argument("--old-defaults", action="store_true", help="also the pipeline with the pre-issue-32 defaults")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    from aepipe import StackedAutoencoderClassifier

    with tempfile.TemporaryDirectory(prefix="minimal-table-") as tmp:
        work = Path(tmp)
        x_train, y_train, x_test, y_test = make_table(args.rows, work / "table.npz", args.scaler)
        toml = work / "minimal.toml"
        toml.write_text(MINIMAL.format(path=work / "table.npz"), encoding="utf-8")
        print(f"table: make_classification(n_samples={args.rows}, n_features=40, n_informative=20, n_redundant=10, "
              f"n_classes=10, n_clusters_per_class=2, random_state={TABLE_SEED}), train {len(y_train)} / test "
              f"{len(y_test)} rows, {SCALERS[args.scaler].__name__} on the training rows")
        print("minimal pipeline:\n    " + MINIMAL.format(path="table.npz").strip().replace("\n", "\n    "))
        rows = {
            "MLPClassifier()": lambda s: MLPClassifier(random_state=s).fit(x_train, y_train).score(x_test, y_test),
            "MLPClassifier((100, 100))": lambda s: MLPClassifier((100, 100), random_state=s).fit(
                x_train, y_train).score(x_test, y_test),
            "StackedAutoencoderClassifier(layers=(100, 100))": lambda s: StackedAutoencoderClassifier(
                layers=(100, 100), random_state=s).fit(x_train, y_train).score(x_test, y_test),
            "`aepipe run` minimal pipeline (spec defaults)": lambda s: run_pipeline(toml, s, work),
        }
        if args.old_defaults:
            rows["`aepipe run` minimal pipeline, pre-issue-32 defaults"] = lambda s: run_pipeline(
                toml, s, work, OLD_DEFAULTS)
        scores = {label: [] for label in rows}
        seconds = {label: [] for label in rows}
        for seed in seeds:
            for label, fit in rows.items():
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    acc = float(fit(seed))
                seconds[label].append(time.perf_counter() - t)
                scores[label].append(acc)
                print(f"seed {seed}  {label:55} test accuracy {acc:.4f}  {seconds[label][-1]:6.1f} s", flush=True)
    print()
    print(f"| model (seeds {args.seeds}) | test accuracy, mean ± sd | per seed | s per fit |")
    print("|---|---|---|---|")
    for label in rows:
        v = np.array(scores[label])
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        print(f"| {label} | {v.mean():.4f} ± {sd:.4f} | {', '.join(f'{x:.4f}' for x in v)} | "
              f"{np.mean(seconds[label]):.0f} |")
    mlp, minimal = np.mean(scores["MLPClassifier()"]), np.mean(scores["`aepipe run` minimal pipeline (spec defaults)"])
    print(f"\nminimal pipeline - MLPClassifier(): {minimal - mlp:+.4f} (mean over seeds; target >= 0)")


if __name__ == "__main__":
    main()
