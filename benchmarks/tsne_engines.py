"""openTSNE against scikit-learn's Barnes-Hut t-SNE on MNIST's 10,000 test images, in one run.

    AEPIPE_MNIST=/path/to/mnist.npz python benchmarks/tsne_engines.py [--points 10000] [--seed 0] \
        [--codes CODES.npy]

The input is PCA-50 of the test pixels (fitted on the training pixels), the
usual t-SNE preprocessing, or with ``--codes`` an autoencoder's codes of the
10,000 test images in their order (``aepipe encode -p PIPELINE`` of them, or a
stage's ``encodings/test.npy``). Each engine embeds the same rows through the tsne stage's own
function (``aepipe.analysis.metrics.tsne``) and is scored as the stage scores
it: seconds of the fit, 10-NN accuracy (5-fold CV) of the 2-D embedding and
trustworthiness (10 neighbours). The speed figure is the ratio of the two
times in this run, on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from sklearn.decomposition import PCA

from aepipe.analysis import metrics
from aepipe.config import DataSpec
from aepipe.data.sources import load as load_data

ENGINES = ("opentsne", "sklearn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=10_000, help="test rows embedded (the first N)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codes", default=None, help="an .npy of codes of the test images (default: PCA-50 of them)")
    args = ap.parse_args()
    data = load_data(DataSpec(source="mnist"))
    if args.codes:
        codes = np.load(args.codes)
        x, what = codes[: args.points].reshape(args.points, -1).astype(np.float32), f"{codes.shape[1]}-wide codes"
    else:
        pca = PCA(n_components=50, random_state=args.seed).fit(data.x_train.reshape(len(data.x_train), -1))
        x, what = pca.transform(data.x_test[: args.points].reshape(args.points, -1)).astype(np.float32), "PCA-50"
    y = data.y_test[: args.points]
    print(f"t-SNE of {what} of {len(x)} MNIST test images; {os.cpu_count()} CPUs, {platform.processor() or '?'}; "
          f"seed {args.seed}\n")
    print("| engine | seconds | 10-NN accuracy | trustworthiness |")
    print("|---|---|---|---|")
    seconds = {}
    for engine in ENGINES:
        t = time.perf_counter()
        emb = metrics.tsne(x, args.seed, engine=engine)
        seconds[engine] = time.perf_counter() - t
        print(f"| {engine} | {seconds[engine]:.1f} | {metrics.knn_accuracy(emb, y, args.seed):.3f} | "
              f"{metrics.trustworthiness(x, emb):.4f} |", flush=True)
    print(f"\nscikit-learn / openTSNE time: {seconds['sklearn'] / seconds['opentsne']:.2f}x")


if __name__ == "__main__":
    main()
