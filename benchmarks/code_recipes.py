"""Which autoencoder recipe gives codes that keep neighbours at least as well as PCA? Chosen on validation rows.

    python benchmarks/code_recipes.py [--seeds 0,1,2] [--only shipped,unroll,...]

The run's t-SNE table is computed on the test split, so recipes are never
chosen there. Here each seed splits the digits *training* rows (the 1,347 rows
``aepipe run`` trains on) into fitting rows and 25 % validation rows
(stratified, seeded); each candidate is trained on the fitting rows by the
same engine as ``aepipe run`` (through ``AutoencoderTransformer``), its
validation codes are embedded by the t-SNE stage's own function, and scored as
the stage scores them: 10-NN accuracy (5-fold CV) of the 2-D embedding and
trustworthiness, beside PCA of the same width fitted on the same rows. One
candidate changes one thing from the shipped recipe, so each line tests one
hypothesis (unroll, a linear code layer, the loss, the budget; "shipped" is
the greedy ReLU recipe the default pipeline had before); ``est-*``
lines are estimator defaults (``AutoencoderTransformer(layers=...)``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import train_test_split

from aepipe import AutoencoderTransformer
from aepipe.analysis import metrics
from aepipe.config import DEFAULT_PIPELINE_TOML, DataSpec, loads
from aepipe.data.sources import load as load_data
from aepipe.engine.plan import tsne_engine

UNROLL = ["unroll.epochs=30", "unroll.optimizer=adam", "unroll.batch_size=32", "unroll.baseline=false"]
# Every candidate starts from the default pipeline as it shipped before this screen (greedy ReLU
# layers); "tanh+joint" is today's default.
OLD_DEFAULT = ["pretrain.mode=greedy", "pretrain.activation=relu"]
PIPELINE_CANDIDATES = {  # name -> --set overrides of OLD_DEFAULT
    "shipped": [],
    "unroll": UNROLL,
    "linear-code": ["layers.1.activation=linear"],
    "linear-code+unroll": ["layers.1.activation=linear", *UNROLL],
    "mse-loss": ["layers.0.decoder_activation=linear", "layers.0.loss=mse"],
    "budget-x2": ["pretrain.epochs=60"],
    "code-12": ["layers.1.units=12"],
    "code-12+unroll": ["layers.1.units=12", *UNROLL],
    "code-8+unroll": ["layers.1.units=8", *UNROLL],
    "unroll-100-cosine": [*UNROLL, "unroll.epochs=100", "unroll.schedule=cosine"],
    "tanh+unroll": ["pretrain.activation=tanh", *UNROLL],
    "wide-first+unroll": ["layers.0.units=128", *UNROLL],
    "tanh": ["pretrain.activation=tanh"],
    "tanh+joint": ["pretrain.activation=tanh", "pretrain.mode=joint"],
    "tanh+tied": ["pretrain.activation=tanh", "pretrain.tied=true"],
    "tanh+tied+joint": ["pretrain.activation=tanh", "pretrain.tied=true", "pretrain.mode=joint"],
    "tanh+joint-x2": ["pretrain.activation=tanh", "pretrain.mode=joint", "pretrain.epochs=60"],
    "tanh+denoising": ["pretrain.activation=tanh", "pretrain.noise.kind=masking", "pretrain.noise.fraction=0.2"],
    "tanh+budget-x3": ["pretrain.activation=tanh", "pretrain.epochs=90"],
    "tanh+unroll-100": ["pretrain.activation=tanh", *UNROLL, "unroll.epochs=100"],
    "tanh+unroll-100-cosine": ["pretrain.activation=tanh", *UNROLL, "unroll.epochs=100", "unroll.schedule=cosine"],
    "tanh-x2+unroll-100": ["pretrain.activation=tanh", "pretrain.epochs=60", *UNROLL, "unroll.epochs=100"],
    "tied+unroll": ["pretrain.tied=true", *UNROLL],
    "denoising+unroll": ["pretrain.noise.kind=masking", "pretrain.noise.fraction=0.2", *UNROLL],
}
ESTIMATOR_CANDIDATES = {  # name -> AutoencoderTransformer parameters
    "est-default": {},
    "est-32": {"layers": (32,)},
    "est-32-tanh": {"layers": (32,), "activation": "tanh"},
    "est-48-24-unroll": {"layers": (48, 24), "unroll_epochs": 30},
    "est-tanh-64-48-24-unroll": {"layers": (64, 48, 24), "activation": "tanh", "unroll_epochs": 30},
    "est-tanh-64-48-24": {"layers": (64, 48, 24), "activation": "tanh"},
    "est-tanh-48-24": {"layers": (48, 24), "activation": "tanh"},
    "est-tanh-48-24-unroll": {"layers": (48, 24), "activation": "tanh", "unroll_epochs": 30},
}


def candidate(name: str, seed: int) -> AutoencoderTransformer:
    if name in PIPELINE_CANDIDATES:
        spec = loads(DEFAULT_PIPELINE_TOML, "<default>", [*OLD_DEFAULT, *PIPELINE_CANDIDATES[name]])
        return AutoencoderTransformer(pipeline=spec.to_dict(), random_state=seed)
    return AutoencoderTransformer(**ESTIMATOR_CANDIDATES[name], random_state=seed)


def scores(x: np.ndarray, y: np.ndarray, seed: int, engine: str) -> tuple[float, float]:
    emb = metrics.tsne(x, seed, engine=engine)
    return metrics.knn_accuracy(emb, y, seed), metrics.trustworthiness(x, emb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", default=",".join([*PIPELINE_CANDIDATES, *ESTIMATOR_CANDIDATES]))
    args = ap.parse_args()
    seeds, names = [int(s) for s in args.seeds.split(",")], args.only.split(",")
    engine = tsne_engine()
    data = load_data(DataSpec())  # the default pipeline's training rows; its test rows are never read
    rows: dict[str, list] = {}
    for seed in seeds:
        x_fit, x_val, _, y_val = train_test_split(data.x_train, data.y_train, test_size=0.25,
                                                  stratify=data.y_train, random_state=seed)
        pca_done: dict[int, tuple] = {}
        for name in names:
            t = time.perf_counter()
            codes = candidate(name, seed).fit(x_fit).transform(x_val)
            seconds = time.perf_counter() - t
            width = codes.shape[1]
            if width not in pca_done:
                pca = metrics.feature_sets(x_val, codes, ("pca",), seed)["pca"]
                pca_done[width] = scores(pca, y_val, seed, engine)
            knn, trust = scores(codes, y_val, seed, engine)
            rows.setdefault(name, []).append((knn, trust, *pca_done[width], width, seconds))
            print(f"seed {seed} {name}: width {width} knn {knn:.3f} trust {trust:.4f} | pca {pca_done[width][0]:.3f} "
                  f"{pca_done[width][1]:.4f} | fit {seconds:.0f}s", flush=True)
    print(f"\nt-SNE engine: {engine}; {len(x_val)} validation rows per seed; seeds {args.seeds}; mean (sd) over seeds\n")
    print("| recipe | width | 10-NN acc codes | 10-NN acc PCA | codes - PCA | trust codes | trust PCA | "
          "codes - PCA | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        a = np.array(r)
        cell = lambda v: f"{v.mean():.3f} ({v.std(ddof=1) if len(v) > 1 else 0:.3f})"  # noqa: E731
        print(f"| {name} | {int(a[0, 4])} | {cell(a[:, 0])} | {cell(a[:, 2])} | {cell(a[:, 0] - a[:, 2])} | "
              f"{cell(a[:, 1])} | {cell(a[:, 3])} | {cell(a[:, 1] - a[:, 3])} | {a[:, 5].mean():.0f} |")


if __name__ == "__main__":
    main()
