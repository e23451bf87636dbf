"""The cluster stages: the top codes clustered, and the same clustering from random weights.

``cluster`` reads the encoder it clusters (the unroll stage, else the greedy
stack) and the training inputs, never the labels: its key holds the inputs'
fingerprint only, and the run scores its assignments afterwards
(``analysis.clustering``). kmeans and gmm cluster the codes (or their UMAP
embedding); dec and idec start from k-means centers and refine the encoder
(``nn.clustering``). Test rows are assigned through the fitted model, as
``predict`` would. ``cluster-baseline`` does the same from random weights.
It also leaves k-means on the raw inputs and on PCA of the codes' width, so a
run compares all of them on the same rows.
"""

from __future__ import annotations

import numpy as np

from ..analysis.cluster_model import ClusterModel, references
from ..analysis.clustering import unlabeled_scores
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..errors import SpecError
from ..nn import inference, train
from ..nn.blocks import stack_blocks
from .context import StageContext, pretrained_blocks, write_layer_weights

MODEL_DIR = "cluster_model"
ASSIGNMENTS = "assignments"  # <name>-train.npy, <name>-test.npy
EMBEDDING_2D = "embedding_2d.npy"  # the test rows' clustering space projected to 2-D (clusters.png)


def run_cluster(plan: StagePlan, ctx: StageContext) -> dict:
    blocks = pretrained_blocks(ctx.spec, ctx.data.input_shape, ctx.inputs, decoders=True)
    return _cluster(plan, ctx, blocks, with_references=True)


def run_cluster_baseline(plan: StagePlan, ctx: StageContext) -> dict:
    return _cluster(plan, ctx, stack_blocks(ctx.spec.layers, ctx.data.input_shape, seed=plan.seed),
                    with_references=False)


def _cluster(plan: StagePlan, ctx: StageContext, blocks, with_references: bool) -> dict:
    c, data = ctx.spec.cluster, ctx.data
    if c.method in ("dec", "idec") and c.embed != "none":
        raise SpecError(f"cluster.embed = {c.embed!r} applies to kmeans and gmm; {c.method} refines the codes "
                        "themselves")
    train.seed_everything(plan.seed)
    x = np.asarray(data.x_train, dtype=np.float32)
    history = {}
    if c.method in ("dec", "idec"):
        history = _refine(plan, ctx, blocks, x)
    encoder = keras_encoder(blocks)
    (ctx.workdir / layout.ENCODINGS_TRAIN).parent.mkdir(exist_ok=True)
    codes = inference.encode_to_npy(encoder, x, ctx.workdir / layout.ENCODINGS_TRAIN)
    test_codes = inference.encode_to_npy(encoder, data.x_test, ctx.workdir / layout.ENCODINGS_TEST)
    codes, test_codes = np.asarray(codes).reshape(len(x), -1), np.asarray(test_codes).reshape(len(test_codes), -1)
    if c.method in ("dec", "idec"):
        from ..analysis.cluster_model import nearest

        model = ClusterModel("kmeans", {"centers": history.pop("centers")})
        train_labels = nearest(codes, model.arrays["centers"])
    else:
        model, train_labels = ClusterModel.fit(codes, c, plan.seed)
    model.save(ctx.workdir / MODEL_DIR)
    test_space = model.space(test_codes)
    assignments = {"clusters": {"train": train_labels, "test": model.predict(test_codes)}}
    if with_references:
        assignments.update(references(x, data.x_test, codes.shape[1], c.n_clusters, c.n_init, plan.seed))
    where = ctx.workdir / ASSIGNMENTS
    where.mkdir()
    for name, split in assignments.items():
        for part, labels in split.items():
            np.save(where / f"{name}-{part}.npy", np.asarray(labels, dtype=np.int64))
    np.save(ctx.workdir / EMBEDDING_2D, _project_2d(test_space, plan.seed))
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    scores = unlabeled_scores(test_space, assignments["clusters"]["test"], plan.seed)
    return {"metrics": {"unlabeled": scores, "n_clusters": c.n_clusters, "method": c.method,
                        "embed": c.embed, "refinement": {k: v for k, v in history.items() if k != "loss"}}}


def _refine(plan: StagePlan, ctx: StageContext, blocks, x: np.ndarray) -> dict:
    """DEC/IDEC: k-means centers on the starting codes, then the refinement; the
    refined layers' weights are saved as an unroll stage's are."""
    from ..analysis.cluster_model import kmeans
    from ..nn.clustering import build_refiner, refine

    c = ctx.spec.cluster
    idec = c.method == "idec"
    model = build_refiner(blocks, c.n_clusters, c.alpha, reconstruct=idec)
    codes = inference.predict(keras_encoder(blocks), x).reshape(len(x), -1)
    centers, _ = kmeans(codes, c.n_clusters, c.n_init, plan.seed)
    history = refine(model, x, centers, settings=c, seed=plan.seed, recon_loss=blocks[0].loss if idec else None,
                     workdir=ctx.workdir if ctx.checkpoints else None, log=ctx.log)
    for i, block in enumerate(blocks):
        write_layer_weights(block, ctx.workdir / layout.layer_dir(i))
    history["centers"] = np.asarray(model.get_layer("clustering").centers)
    return history


def keras_encoder(blocks):
    import keras

    return keras.Sequential([keras.Input(blocks[0].input_shape), *[b.encoder for b in blocks]])


def _project_2d(space: np.ndarray, seed: int) -> np.ndarray:
    """A 2-D view of the clustering space (PCA; the space itself when it is 2-D)."""
    if space.shape[1] <= 2 or len(space) < 2:  # nothing to project (or too few rows to fit a projection)
        return np.asarray(space[:, :2], dtype=np.float32)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(space).astype(np.float32)
