"""The supervised stages: the softmax head, fine-tuning, and its random-init baseline.

``finetune`` and ``baseline`` train the same network with the same budget,
labeled rows, data order and noise/dropout seeds (``StagePlan.seed`` is the
same for both); the only difference is the starting weights. Both save their
weights and test predictions, scored by ``predict_classes`` at float32.
"""

from __future__ import annotations

import math

import numpy as np

from ..config.spec import PipelineSpec
from ..data import feed
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.plan import StagePlan
from ..engine.store import Stage
from ..nn import inference, precision, train
from ..nn.blocks import stack_blocks
from ..nn.classifier import build_classifier, build_head, cap_weight_norms
from .context import (StageContext, fit_xy, last, plan_labeled_indices, pretrained_blocks, split_validation,
                      training_record)


def stacked_classifier(spec: PipelineSpec, input_shape, n_classes, stages: dict[str, Stage] | None = None):
    """The fine-tune network: encoders (pretrained when ``stages`` holds the
    pretrain stages, else random), regularisers, softmax head."""
    fs = spec.finetune
    blocks = (pretrained_blocks(spec, input_shape, stages) if stages is not None
              else stack_blocks(spec.layers, input_shape))
    model = build_classifier([b.encoder for b in blocks], input_shape, n_classes, fs.dropout, fs.input_dropout,
                             batch_norm=fs.batch_norm, noise=fs.noise, input_noise=fs.input_noise)
    return model, blocks


def load_classifier(spec: PipelineSpec, weights, input_shape, n_classes):
    """A trained classifier from its weights file, at float32 (evaluation is exact)."""
    model, _ = stacked_classifier(spec, input_shape, n_classes)
    model.load_weights(weights)
    return model


def predict_classes(spec: PipelineSpec, weights, data) -> np.ndarray:
    """The one scoring function: test-set class indices of the net saved in ``weights``."""
    model = load_classifier(spec, weights, data.input_shape, data.n_classes)
    return inference.predict(model, data.x_test).argmax(axis=1).astype(np.int32)


def trainable_classifier(spec: PipelineSpec, input_shape, n_classes, stages: dict[str, Stage] | None = None):
    """Built under the fine-tune compute dtype, max-norm attached; pretrained
    encoders and head when ``stages`` holds them (the baseline passes none)."""
    fs = spec.finetune
    with precision.compute_dtype(fs.precision):
        model, _ = stacked_classifier(spec, input_shape, n_classes, stages)
    if stages is not None:
        model.get_layer("head").load_weights(stages["head"].file(layout.HEAD_WEIGHTS))
    if fs.max_norm > 0:
        cap_weight_norms(model, fs.max_norm)
    return model


def compile_classifier(model, optimizer, learning_rate, decay_steps=None):
    train.compile_model(model, optimizer, learning_rate, "sparse_categorical_crossentropy", ["accuracy"],
                        decay_steps=decay_steps)


# ---------------------------------------------------------------- head


def run_head(plan: StagePlan, ctx: StageContext) -> dict:
    top = ctx.inputs[plan.upstream[0]]
    codes = np.load(top.file(layout.ENCODINGS_TRAIN), mmap_mode="r")
    idx = plan_labeled_indices(plan, ctx)
    x, y = feed.take(codes, idx), ctx.data.y_train[idx]  # all labels: the memmap itself, streamed
    train.seed_everything(plan.seed)
    hs = ctx.spec.head
    head = build_head(codes.shape[1:], ctx.data.n_classes)
    compile_classifier(head, hs.optimizer, hs.learning_rate)
    history = fit_xy(head, x, y, ctx, section=hs, seed=plan.seed, validation_split=plan.params["validation_split"])
    head.save_weights(ctx.workdir / layout.HEAD_WEIGHTS)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    return {"metrics": {"accuracy": last(history, "accuracy"), "val_accuracy": last(history, "val_accuracy")},
            "training": training_record(history, hs)}


# ---------------------------------------------------------------- finetune and baseline


def _train_classifier(plan: StagePlan, ctx: StageContext, stages: dict[str, Stage] | None) -> dict:
    """Seed, build, train with the fine-tune budget, save weights and test predictions."""
    fs, data = ctx.spec.finetune, ctx.data
    train.seed_everything(plan.seed)  # the same for finetune and baseline: same random draws
    model = trainable_classifier(ctx.spec, data.input_shape, data.n_classes, stages)
    idx = plan_labeled_indices(plan, ctx)
    steps = math.ceil(split_validation(len(idx), plan.params["validation_split"]) / fs.batch_size)
    compile_classifier(model, fs.optimizer, fs.learning_rate, fs.epochs * steps if fs.schedule == "cosine" else None)
    history = fit_xy(model, feed.take(data.x_train, idx), data.y_train[idx], ctx, section=fs, seed=plan.seed,
                     validation_split=plan.params["validation_split"])
    model.save_weights(ctx.workdir / layout.MODEL_WEIGHTS)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    pred = predict_classes(ctx.spec, ctx.workdir / layout.MODEL_WEIGHTS, data)
    np.save(ctx.workdir / layout.PREDICTIONS, pred)
    return {"metrics": {"accuracy": last(history, "accuracy"), "val_accuracy": last(history, "val_accuracy"),
                        "test_accuracy": float(np.mean(pred == data.y_test))},
            "classes": data.classes.tolist(), "labeled_rows": int(len(idx)), "training": training_record(history, fs)}


def run_finetune(plan: StagePlan, ctx: StageContext) -> dict:
    return _train_classifier(plan, ctx, ctx.inputs)


def run_baseline(plan: StagePlan, ctx: StageContext) -> dict:
    ctx.log("baseline: the same network from random init, same labels, data order and seeds")
    return _train_classifier(plan, ctx, None)
