"""aepipe vs hand-written Keras on the seed 004 recipe, cold cache, same seed and epochs.

    python benchmarks/seed004.py [--epochs 50] [--mnist /path/to/mnist.npz]

Both run as fresh processes (so both pay the TensorFlow import) one after the
other on the same machine; prints both test accuracies, wall times and the ratio.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def timed(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--mnist", default=None, help="mnist.npz; default: where aepipe finds it (AEPIPE_MNIST, Keras' cache)")
    args = ap.parse_args()
    if args.mnist is None:
        from aepipe.config.spec import DataSpec
        from aepipe.data.sources import resolve_mnist

        args.mnist = str(resolve_mnist(DataSpec(source="mnist")))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "AEPIPE_MNIST": args.mnist}
    aepipe = [sys.executable, "-m", "aepipe.cli", "run", str(ROOT / "pipelines/mnist.toml"), "--json", "-q",
              "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false"]
    for part in ("pretrain", "head", "finetune"):
        aepipe += ["--set", f"{part}.epochs={args.epochs}"]

    t_keras, out = timed([sys.executable, str(HERE / "handwritten_seed004.py"), args.mnist, str(args.epochs)], env)
    keras_acc = json.loads(out.strip().splitlines()[-1])["test_accuracy"]
    artifacts = Path(tempfile.mkdtemp(prefix="aepipe-bench-"))
    try:
        t_aepipe, out = timed(aepipe + ["--artifacts", str(artifacts)], env)
        result = json.loads(out)
        t_cached, _ = timed(aepipe + ["--artifacts", str(artifacts)], env)
    finally:
        shutil.rmtree(artifacts, ignore_errors=True)
    print(f"seed 004 recipe, {args.epochs} epochs per stage, MNIST {args.mnist}")
    print(f"{'':24}{'test acc':>10}{'wall s':>10}")
    print(f"{'hand-written Keras':24}{100 * keras_acc:9.2f}%{t_keras:10.1f}")
    print(f"{'aepipe run (cold)':24}{100 * result['metrics']['test_accuracy']:9.2f}%{t_aepipe:10.1f}")
    print(f"{'aepipe run (cached)':24}{'':>10}{t_cached:10.1f}")
    print(f"wall ratio aepipe / hand-written: {t_aepipe / t_keras:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
