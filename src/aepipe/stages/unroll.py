"""The unroll stages (Hinton & Salakhutdinov 2006).

``unroll``: the greedy stack unrolled into one deep autoencoder (every encoder,
then every decoder in mirror order), started from the pretrained weights and
fine-tuned end to end to reconstruct the clean inputs (from noisy ones with
``unroll.input_noise``), with layer 0's loss. ``unroll_baseline``: the same
network, budget and seed from random init, so the report can say what the
greedy start bought. Both leave per-layer weights in ``layers/i/`` (the layout
of a joint pretraining stage) and the top codes, which encode, t-SNE, export
and the transformer then read.
"""

from __future__ import annotations

import keras
import numpy as np

from ..config import training
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..engine.store import Stage
from ..nn import inference, precision, train
from ..nn.blocks import stack_blocks
from ..nn.joint import build_joint
from .context import (StageContext, fit_xy, last, pretrained_blocks, split_validation, training_record,
                      write_layer_weights)


def run_unroll(plan: StagePlan, ctx: StageContext) -> dict:
    return _fine_tune_deep(plan, ctx, lambda: pretrained_blocks(ctx.spec, ctx.data.input_shape, ctx.inputs,
                                                                decoders=True, unrolled=False))


def run_unroll_baseline(plan: StagePlan, ctx: StageContext) -> dict:
    return _fine_tune_deep(plan, ctx, lambda: stack_blocks(ctx.spec.layers, ctx.data.input_shape))


def _fine_tune_deep(plan: StagePlan, ctx: StageContext, make_blocks) -> dict:
    """Train under the unroll compute dtype, save each layer's weights, then score
    and encode with float32 blocks read back from those files (exact figures,
    whatever the training precision)."""
    us, data = ctx.spec.unroll, ctx.data
    train.seed_everything(plan.seed)  # unroll and its twin: the same seed, data order and random draws
    with precision.compute_dtype(us.precision):
        blocks = make_blocks()
        model = build_joint(blocks, corrupt=False, input_noise=us.input_noise)
    loss = blocks[0].loss if us.loss == "auto" else us.loss
    x = np.asarray(data.x_train, dtype=np.float32)
    split = plan.params["validation_split"]
    rows = split_validation(len(x), split)
    steps = train.epoch_steps(rows, training.batch_size(us.batch_size, rows))
    train.compile_model(model, us.optimizer, us.learning_rate, loss,
                        decay_steps=(us.epochs - us.warmup) * steps if us.schedule == "cosine" else None,
                        warmup_steps=us.warmup * steps, weight_decay=us.weight_decay)
    history = fit_xy(model, x, x, ctx, section=us, seed=plan.seed, validation_split=split)
    for i, block in enumerate(blocks):
        write_layer_weights(block, ctx.workdir / layout.layer_dir(i))
    # the work dir read the way downstream stages will read the published stage
    blocks = pretrained_blocks(ctx.spec, data.input_shape, {"unroll": Stage(ctx.workdir, {})}, decoders=True,
                               unrolled=True)
    encoder = keras.Sequential([keras.Input(blocks[0].input_shape), *[b.encoder for b in blocks]])
    (ctx.workdir / layout.ENCODINGS_TRAIN).parent.mkdir(exist_ok=True)
    codes = inference.encode_to_npy(encoder, x, ctx.workdir / layout.ENCODINGS_TRAIN)
    inference.encode_to_npy(encoder, data.x_test, ctx.workdir / layout.ENCODINGS_TEST)
    mse = inference.reconstruction_mse(build_joint(blocks, corrupt=False), data.x_test, data.x_test)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    return {"metrics": {"reconstruction_mse": mse, "squared_error_per_example": mse * blocks[0].n_features,
                        "loss": last(history, "loss"), "val_loss": last(history, "val_loss")},
            "shapes": {"input": list(blocks[0].input_shape), "output": list(codes.shape[1:])},
            "training": training_record(history, us, ctx)}

