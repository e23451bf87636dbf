"""The pretrain stages: each leaves one layer's encoder, decoder and codes.

greedy: stage i trains layer i on the codes of stage i-1. joint and
layer_matching: stage 0 trains the deep autoencoder, stage i > 0 takes layer
i's weights out of it and encodes the codes below. Labels are never read here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.ranges import feature_range
from ..data.sources import check_unit_range
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..nn import inference, train
from ..nn.blocks import make_block, stack_blocks
from ..nn.joint import BUILDERS
from .context import StageContext, fit_xy, last, training_record, write_layer_weights


def run_pretrain(plan: StagePlan, ctx: StageContext) -> dict:
    if plan.params["mode"] == "greedy":
        return _pretrain_greedy(plan, ctx)
    if plan.params["index"] == 0:
        return _pretrain_deep(plan, ctx)
    return _layer_of_deep(plan, ctx)


def _layer_input(ctx: StageContext, i: int):
    """What layer i reads: the data, or the codes stage i-1 stored (memory-mapped)."""
    if i == 0:
        return ctx.data.x_train, ctx.data.x_test
    below = ctx.inputs[f"pretrain-{i - 1}"]
    return (np.load(below.file(layout.ENCODINGS_TRAIN), mmap_mode="r"),
            np.load(below.file(layout.ENCODINGS_TEST), mmap_mode="r"))


def _write_layer(block, x, x_test, workdir: Path) -> dict:
    """Weights, codes (train and test) and the test reconstruction error of one block."""
    t = time.perf_counter()
    write_layer_weights(block, workdir)
    (workdir / layout.ENCODINGS_TRAIN).parent.mkdir(exist_ok=True)
    # streamed to disk chunk by chunk: neither input nor codes need to fit in memory
    codes_train = inference.encode_to_npy(block.encoder, x, workdir / layout.ENCODINGS_TRAIN)
    codes_test = inference.encode_to_npy(block.encoder, x_test, workdir / layout.ENCODINGS_TEST)
    return {"metrics": {"reconstruction_mse": inference.reconstruction_mse(block.decoder, codes_test, x_test)},
            "shapes": {"input": list(x.shape[1:]), "output": list(codes_train.shape[1:])},
            "encode_seconds": time.perf_counter() - t}


def _with_history(out: dict, history: dict, ctx: StageContext, layer) -> dict:
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    out["metrics"].update(loss=last(history, "loss"), val_loss=last(history, "val_loss"))
    out["training"] = training_record(history, layer, ctx)
    return out


def _fit_autoencoder(model, layer, loss, x, plan: StagePlan, ctx: StageContext) -> dict:
    train.compile_model(model, layer.optimizer, layer.learning_rate, loss)
    return fit_xy(model, x, x, ctx, section=layer, seed=plan.seed, validation_split=plan.params["validation_split"])


def _pretrain_greedy(plan: StagePlan, ctx: StageContext) -> dict:
    i = plan.params["index"]
    layer = ctx.spec.layers[i]
    x, x_test = _layer_input(ctx, i)
    if layer.loss == "binary_crossentropy":
        check_unit_range(x, f"layer {i} ({plan.name})")
    train.seed_everything(plan.seed)
    block = make_block(layer, x.shape[1:], i)
    x = np.asarray(x, dtype=np.float32)
    history = _fit_autoencoder(block.build_autoencoder(), layer, block.loss, x, plan, ctx)
    out = _with_history(_write_layer(block, x, x_test, ctx.workdir), history, ctx, layer)
    if i == 0:  # what later inputs are checked against (data.ranges)
        out["input_range"] = feature_range(x)
    if block.kind == "variational" and i == 0:
        _write_latent_manifold(block, ctx.workdir)
    return out


def _pretrain_deep(plan: StagePlan, ctx: StageContext) -> dict:
    """The whole stack as one model (``joint.BUILDERS[mode]``), trained with layer 0's
    settings; every layer's weights go to ``layers/<i>/``, layer 0's also to the top."""
    spec, data = ctx.spec, ctx.data
    first = spec.layers[0]
    if first.loss == "binary_crossentropy":
        check_unit_range(data.x_train, f"layer 0 ({plan.name})")
    train.seed_everything(plan.seed)
    blocks = stack_blocks(spec.layers, data.input_shape)
    model = BUILDERS[plan.params["mode"]](blocks, spec)
    x = np.asarray(data.x_train, dtype=np.float32)
    history = _fit_autoencoder(model, first, blocks[0].loss, x, plan, ctx)
    for i, block in enumerate(blocks):
        write_layer_weights(block, ctx.workdir / layout.layer_dir(i))
    out = _write_layer(blocks[0], x, data.x_test, ctx.workdir)
    out["metrics"]["layer_reconstruction_mse"] = out["metrics"]["reconstruction_mse"]
    out["metrics"]["reconstruction_mse"] = inference.reconstruction_mse(model, data.x_test, data.x_test)
    out["input_range"] = feature_range(x)
    return _with_history(out, history, ctx, first)


def _layer_of_deep(plan: StagePlan, ctx: StageContext) -> dict:
    i = plan.params["index"]
    x, x_test = _layer_input(ctx, i)
    block = make_block(ctx.spec.layers[i], x.shape[1:], i)
    deep = ctx.inputs["pretrain-0"]
    block.encoder.load_weights(deep.file(f"{layout.layer_dir(i)}/{layout.ENCODER_WEIGHTS}"))
    block.decoder.load_weights(deep.file(f"{layout.layer_dir(i)}/{layout.DECODER_WEIGHTS}"))
    return _write_layer(block, x, x_test, ctx.workdir)


def _write_latent_manifold(block, workdir: Path, n: int = 15) -> None:
    """For a 2-D latent that decodes straight to one-channel images: the decoded
    n x n grid spanning the central 98 % of the test latents (rows: z[1] from
    high to low, so the picture reads like the scatter)."""
    from ..analysis.latent_plots import manifold_figure
    from ..analysis.plots import save
    from ..config.shapes import image_shape

    z = np.load(workdir / layout.ENCODINGS_TEST)
    img = image_shape(block.input_shape)
    if z.shape[1] != 2 or img is None or img[-1] != 1:
        return
    lo, hi = np.percentile(z[:, :2], [1, 99])
    grid = np.linspace(lo, hi, n)
    zx, zy = np.meshgrid(grid, grid[::-1])
    points = np.stack([zx.ravel(), zy.ravel()], axis=1).astype(np.float32)
    tiles = inference.predict(block.decoder, points).reshape(n, n, img[0], img[1])
    save(manifold_figure(tiles, grid), workdir / layout.LATENT_MANIFOLD)
