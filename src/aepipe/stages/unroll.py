"""The unroll stages (Hinton & Salakhutdinov 2006).

``unroll``: the greedy stack unrolled into one deep autoencoder (every encoder,
then every decoder in mirror order), started from the pretrained weights and
fine-tuned end to end on reconstruction of the clean inputs, with layer 0's
loss. ``unroll_baseline``: the same network, budget and seed from random init,
so the report can say what the greedy start bought. Both leave per-layer
weights in ``layers/i/`` (the layout of a joint pretraining stage) and the
top codes, which encode, t-SNE, export and the transformer then read.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..nn import inference, train
from ..nn.blocks import stack_blocks
from ..nn.joint import build_joint
from .context import StageContext, fit_xy, last, pretrained_blocks, split_validation, training_record


def run_unroll(plan: StagePlan, ctx: StageContext) -> dict:
    train.seed_everything(plan.seed)
    blocks = pretrained_blocks(ctx.spec, ctx.data.input_shape, ctx.inputs, decoders=True, unrolled=False)
    return _fine_tune_deep(plan, ctx, blocks)


def run_unroll_baseline(plan: StagePlan, ctx: StageContext) -> dict:
    train.seed_everything(plan.seed)  # the same seed as unroll: same data order, same random draws
    return _fine_tune_deep(plan, ctx, stack_blocks(ctx.spec.layers, ctx.data.input_shape))


def _fine_tune_deep(plan: StagePlan, ctx: StageContext, blocks) -> dict:
    us, data = ctx.spec.unroll, ctx.data
    model = build_joint(blocks, corrupt=False)
    x = np.asarray(data.x_train, dtype=np.float32)
    split = plan.params["validation_split"]
    steps = math.ceil(split_validation(len(x), split) / us.batch_size)
    train.compile_model(model, us.optimizer, us.learning_rate, blocks[0].loss,
                        decay_steps=us.epochs * steps if us.schedule == "cosine" else None)
    history = fit_xy(model, x, x, ctx, section=us, seed=plan.seed, validation_split=split)
    for i, block in enumerate(blocks):
        where = ctx.workdir / layout.layer_dir(i)
        where.mkdir(parents=True, exist_ok=True)
        block.encoder.save_weights(where / layout.ENCODER_WEIGHTS)
        block.decoder.save_weights(where / layout.DECODER_WEIGHTS)
    encoder = keras.Sequential([keras.Input(blocks[0].input_shape), *[b.encoder for b in blocks]])
    (ctx.workdir / layout.ENCODINGS_TRAIN).parent.mkdir(exist_ok=True)
    codes = inference.encode_to_npy(encoder, x, ctx.workdir / layout.ENCODINGS_TRAIN)
    inference.encode_to_npy(encoder, data.x_test, ctx.workdir / layout.ENCODINGS_TEST)
    mse = inference.reconstruction_mse(model, data.x_test, data.x_test)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    return {"metrics": {"reconstruction_mse": mse, "squared_error_per_example": mse * blocks[0].n_features,
                        "loss": last(history, "loss"), "val_loss": last(history, "val_loss")},
            "shapes": {"input": list(blocks[0].input_shape), "output": list(codes.shape[1:])},
            "training": training_record(history, us)}
