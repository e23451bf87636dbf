"""The accuracy of one shipped pipeline: a cold `aepipe run`, its JSON metrics, in one line.

    python benchmarks/pipeline_accuracy.py PIPELINE.toml [--set K=V ...]

Runs `aepipe run PIPELINE --json -q` against a fresh artifacts directory (so
nothing is cached; removed afterwards), with $AEPIPE_MNIST pointing at the
data, and prints: the pipeline, its test accuracy, the random-init baseline's
(metrics key ``baseline_test_accuracy``, when the pipeline trains one), the
paired verdict (metrics key ``comparison``: ``verdict`` and ``p_value``, when
present) and the wall seconds of the run; then the whole-stack test
reconstruction as squared error per example (metrics key ``reconstruction``:
greedy stack, unrolled, unrolled from random init, PCA with as many components
as the code, fitted in the same run).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

AEPIPE = [sys.executable, "-m", "aepipe.cli"]


def _sd(v):
    m = sum(v) / len(v)
    return (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0


def pct(x):
    return "n/a" if x is None else f"{100 * x:.2f} %"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", metavar="PIPELINE.toml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                    help="passed on to `aepipe run --set` (repeatable)")
    ap.add_argument("--artifacts", default=None,
                    help="a store kept after the run, shared by several calls (e.g. one pretraining for two label "
                         "counts); default: a fresh temporary one, removed after")
    args = ap.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="aepipe-bench-")
    cmd = [*AEPIPE, "run", args.pipeline, "--json", "-q", "--artifacts", artifacts]
    for kv in args.overrides:
        cmd += ["--set", kv]
    try:
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t
    finally:
        if args.artifacts is None:
            shutil.rmtree(artifacts, ignore_errors=True)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        print(f"pipeline_accuracy: aepipe run {args.pipeline} failed (exit {proc.returncode})", file=sys.stderr)
        sys.exit(proc.returncode)
    # the JSON result: the last line that starts an object
    lines = [ln for ln in proc.stdout.splitlines() if ln.lstrip().startswith("{")]
    if not lines:
        sys.stdout.write(proc.stdout)
        sys.exit(f"pipeline_accuracy: aepipe run {args.pipeline} printed no JSON result")
    metrics = json.loads(lines[-1])["metrics"]
    comparison = metrics.get("comparison") or {}
    verdict = "paired: n/a"
    if comparison.get("verdict") is not None:
        p = comparison.get("p_value")
        verdict = f"paired: {comparison['verdict']}" + ("" if p is None else f" (p = {p:.3g})")
    print(f"{args.pipeline}: test {pct(metrics.get('test_accuracy'))}, "
          f"random init {pct(metrics.get('baseline_test_accuracy'))}, {verdict}, {seconds:.1f} s")
    if comparison:
        lo, hi = comparison["ci95"]
        print(f"  paired on {comparison['n']} test rows: only pretrained right {comparison['only_pretrained']}, "
              f"only random init right {comparison['only_baseline']}, difference "
              f"{100 * comparison['accuracy_difference']:+.2f} points (95 % interval {100 * lo:+.2f} to {100 * hi:+.2f})")
    rec = metrics.get("reconstruction") or {}
    names = {"greedy": "greedy stack", "unroll": "unrolled", "unroll_random_init": "unrolled from random init",
             "pca": f"PCA-{rec.get('pca_components')}"}
    if rec:
        print("  test squared error per example (summed over its values): "
              + ", ".join(f"{label} {rec[k]:.3f}" for k, label in names.items() if rec.get(k) is not None))
    findings = metrics.get("replicates") or {}
    for name, label in (("classifier", "test accuracy"), ("unroll", "squared error per example")):
        f = findings.get(name)
        if f and f["n"] > 1:
            scale = 100 if name == "classifier" else 1
            a, b = (f"{scale * sum(v) / len(v):.3f} ± {scale * _sd(v):.3f}" for v in (f["pretrained"], f["random_init"]))
            print(f"  over {f['n']} replicates (seeds {f['seeds'][0]}-{f['seeds'][-1]}), {label}: pretrained {a}, "
                  f"random init {b} (mean ± sample sd); {f['sentence']}")
            print("  per replicate (pretrained / random init): "
                  + ", ".join(f"seed {s} {scale * x:.3f} / {scale * y:.3f}"
                              for s, x, y in zip(f["seeds"], f["pretrained"], f["random_init"])))
    built = metrics.get("stages") or {}
    print("  stage build seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in built.items()))


if __name__ == "__main__":
    main()
