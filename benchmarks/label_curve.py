"""The few-label curve of a pipeline: one pretraining, several label counts, several
draws where labels are fewest; prints each variant, the label table and writes labels.png.

    AEPIPE_MNIST=/path/to/mnist.npz python benchmarks/label_curve.py \
        [--pipeline pipelines/mnist-few.toml] [--labels 600,100,1000,3000] [--draws 100=3] \
        [--artifacts DIR] [--set KEY=VALUE ...]

``aepipe sweep --grid data.labels=... --grid data.label_seed=...`` draws the same
curve but takes every label draw at every count (a grid is a product); this
runs 3 draws only where the issue asks for them (100 labels), in one store, so
the autoencoders are pretrained once. Variants run one after the other, each
timed: the wall seconds of a variant include only what it trained.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default=str(ROOT / "pipelines" / "mnist-few.toml"))
    ap.add_argument("--labels", default="600,100,1000,3000",
                    help="label counts in the order they run; the first pays for the pretraining, so its "
                         "seconds are a cold single run")
    ap.add_argument("--draws", default="100=3", help="COUNT=N[,COUNT=N]: label draws (label_seed 0..N-1) per count")
    ap.add_argument("--artifacts", default=None, help="store (default: a new temporary directory)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from aepipe.analysis.label_curve import format_label_table, label_curve, write_curve
    from aepipe.pipeline.sweep import run_variant, trained_counts

    draws = {int(k): int(v) for k, v in (item.split("=") for item in args.draws.split(",") if item)}
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="aepipe-curve-")
    rows, t0 = [], time.perf_counter()
    for labels in (int(v) for v in args.labels.split(",")):
        for seed in range(draws.get(labels, 1)):
            grid = {"data.labels": str(labels), "data.label_seed": str(seed)}
            name = f"curve-{labels}-s{seed}"
            row = run_variant(args.pipeline, [*args.overrides, f"data.labels={labels}", f"data.label_seed={seed}"],
                              name, grid, artifacts)
            trained = [s["name"] for s in row["stages"] if s["status"] != "cached"]
            print(f"{labels} labels, draw {seed}: pretrained {_pct(row['test_accuracy'])}, random init "
                  f"{_pct(row['baseline_test_accuracy'])}, random init plain {_pct(row['plain_baseline_test_accuracy'])}"
                  f" (validation {_pct(row['val_accuracy'])}); trained {', '.join(trained) or 'nothing'} in "
                  f"{row['seconds']:.0f} s", flush=True)
            rows.append(row)
    counts = trained_counts(rows)
    print(f"\nstages trained more than once: {sum(c > 1 for c in counts.values())}; "
          f"total {time.perf_counter() - t0:.0f} s\n")
    curve = label_curve(rows)
    print(format_label_table(curve))
    png = write_curve(curve, Path(artifacts) / "sweeps" / "label-curve", Path(args.pipeline).stem)
    print(f"\nlabels.png: {png}")
    return 0


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


if __name__ == "__main__":
    sys.exit(main())
