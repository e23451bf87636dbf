"""The tsne stage: 2-D t-SNE of raw inputs, PCA codes and the top autoencoder codes, scored.

A stage of its own so that turning ``evaluate.tsne`` on or off trains nothing
else; it reads only the top codes of the test rows and, when the data has
labels, the test labels (which stratify the sample and score it by 10-NN
accuracy; without labels, trustworthiness alone scores it).
The engine (openTSNE or scikit-learn) was resolved when the stage was planned:
it is part of the key, because the two place points differently.
"""

from __future__ import annotations

import numpy as np

from ..analysis import metrics
from ..data.subset import stratified_subset
from ..engine import layout
from ..engine.plan import StagePlan
from .context import StageContext


def run_tsne(plan: StagePlan, ctx: StageContext) -> dict:
    data, seed = ctx.data, plan.params["seed"]
    top = ctx.inputs[plan.upstream[0]]
    idx = stratified_subset(data.y_test, plan.params["tsne_samples"], seed)
    codes = np.load(top.file(layout.ENCODINGS_TEST), mmap_mode="r")
    features = metrics.feature_sets(data.x_test[idx], np.asarray(codes[idx]), seed=seed)
    table, embeddings = metrics.tsne_table(features, data.y_test[idx], seed, ctx.log, plan.params["engine"])
    np.savez(ctx.workdir / layout.TSNE_EMBEDDINGS, labels=data.y_test[idx], **embeddings)
    return {"metrics": {"tsne": table}}
