"""The supervised stages: the softmax head, fine-tuning, and its random-init baseline.

``finetune`` and ``baseline`` train the same network with the same budget,
labeled rows, data order and noise/dropout seeds (``StagePlan.seed`` is the
same for both); the only difference is the starting weights. Both save their
weights and test predictions, scored by ``predict_classes`` at float32.
"""

from __future__ import annotations

import keras
import numpy as np

from ..config import training
from ..config.spec import PipelineSpec
from ..data import feed
from ..engine import layout
from ..engine.atomic import atomic_write_json
from ..engine.seeds import derive_seed
from ..engine.plan import StagePlan
from ..engine.store import Stage
from ..nn import inference, precision, train
from ..nn.blocks import stack_blocks
from ..nn.classifier import build_classifier, build_head, cap_weight_norms
from .context import (StageContext, fit_xy, last, plan_labeled_indices, plan_validation_indices,
                      pretrained_blocks, split_validation, training_record)


def stacked_classifier(spec: PipelineSpec, input_shape, n_classes, stages: dict[str, Stage] | None = None,
                       seed: int | None = None):
    """The fine-tune network: encoders (pretrained when ``stages`` holds the
    pretrain stages, else random: with ``seed``, each layer's weights drawn from
    its role alone), regularisers, softmax head."""
    fs = spec.finetune
    blocks = (pretrained_blocks(spec, input_shape, stages) if stages is not None
              else stack_blocks(spec.layers, input_shape, seed))
    model = build_classifier([b.encoder for b in blocks], input_shape, n_classes, fs.dropout, fs.input_dropout,
                             batch_norm=fs.batch_norm, noise=fs.noise, input_noise=fs.input_noise, seed=seed)
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


def trainable_classifier(spec: PipelineSpec, input_shape, n_classes, stages: dict[str, Stage] | None = None,
                         seed: int | None = None):
    """Built under the fine-tune compute dtype, max-norm attached; pretrained
    encoders and head when ``stages`` holds them (the baseline passes none, and
    its ``seed``)."""
    fs = spec.finetune
    with precision.compute_dtype(fs.precision):
        model, _ = stacked_classifier(spec, input_shape, n_classes, stages, None if stages is not None else seed)
    if stages is not None:
        model.get_layer("head").load_weights(stages["head"].file(layout.HEAD_WEIGHTS))
    if fs.max_norm > 0:
        cap_weight_norms(model, fs.max_norm)
    return model


def compile_classifier(model, optimizer, learning_rate, decay_steps=None, custom_step=False, fused="auto"):
    """``custom_step``: a SemiSupervisedTrainer, whose train_step computes its own losses and metrics.
    ``fused``: the optimizer's update as one XLA call (``nn/fused.py``), by
    default wherever the net is large enough for it to pay (``train.FUSED_MIN_SIZE``)."""
    train.compile_model(model, optimizer, learning_rate, None if custom_step else "sparse_categorical_crossentropy",
                        None if custom_step else ["accuracy"], decay_steps=decay_steps, fused=fused)


def unlabeled_indices(y: np.ndarray, labeled: np.ndarray) -> np.ndarray:
    """Training rows fine-tuning may read without their labels: all but the
    labeled subset (its validation rows included: they stay held out)."""
    return np.setdiff1d(np.arange(len(y)), labeled)


def _semi_supervised(spec: PipelineSpec, model, stages, steps: int, input_shape, seed: int, y_labeled):
    """``model`` wrapped to learn from unlabeled rows too; the decoders come
    pretrained with the encoders (random for the baseline), mirrored; the labeled
    rows' class frequencies are the prior of distribution alignment."""
    from ..nn.semisupervised import SemiSupervisedTrainer

    fs = spec.finetune
    encoders = [layer.name for layer in model.layers if layer.name.startswith("encoder_")]
    decoder = None
    if fs.reconstruction_weight > 0:
        with precision.compute_dtype(fs.precision):
            blocks = (pretrained_blocks(spec, input_shape, stages, decoders=True) if stages is not None
                      else stack_blocks(spec.layers, input_shape, seed))
            top_shape = blocks[-1].output_shape
            decoder = keras.Sequential([keras.Input(top_shape), *[b.decoder for b in reversed(blocks)]],
                                       name="decoders")
    return SemiSupervisedTrainer(model, top=encoders[-1], steps_per_epoch=steps, pseudo_labels=fs.pseudo_labels,
                                 pseudo_labels_start=fs.pseudo_labels_start, pseudo_labels_end=fs.pseudo_labels_end,
                                 pseudo_labels_targets=fs.pseudo_labels_targets,
                                 pseudo_labels_threshold=fs.pseudo_labels_threshold,
                                 decoder=decoder, reconstruction_weight=fs.reconstruction_weight,
                                 reconstruction_loss=spec.layers[0].loss, vat_weight=fs.vat_weight,
                                 vat_epsilon=fs.vat_epsilon, teacher_decay=fs.pseudo_labels_teacher_decay,
                                 alignment=fs.pseudo_labels_alignment,
                                 class_prior=np.bincount(y_labeled, minlength=model.output_shape[-1]))


# ---------------------------------------------------------------- head


def run_head(plan: StagePlan, ctx: StageContext) -> dict:
    top = ctx.inputs[plan.upstream[0]]
    codes = np.load(top.file(layout.ENCODINGS_TRAIN), mmap_mode="r")
    idx = plan_labeled_indices(plan, ctx)
    x, y = feed.take(codes, idx), ctx.data.y_train[idx]  # all labels: the memmap itself, streamed
    val = plan_validation_indices(plan, ctx, idx)
    validation = None if val is None else (feed.take(codes, val), ctx.data.y_train[val])
    train.seed_everything(plan.seed)
    hs = ctx.spec.head
    head = build_head(codes.shape[1:], ctx.data.n_classes)
    # Keras' own update: a softmax layer is too small for the fused one to pay
    # (a 1000-10 head's step: 0.73 ms, fused 0.79 ms; nn/fused.py)
    compile_classifier(head, hs.optimizer, hs.learning_rate, fused=False)
    history = fit_xy(head, x, y, ctx, section=hs, seed=plan.seed, validation_split=plan.params["validation_split"],
                     validation=validation)
    head.save_weights(ctx.workdir / layout.HEAD_WEIGHTS)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    return {"metrics": {"accuracy": last(history, "accuracy"), "val_accuracy": last(history, "val_accuracy")},
            "training": training_record(history, hs, ctx)}


# ---------------------------------------------------------------- finetune and baseline


def _train_classifier(plan: StagePlan, ctx: StageContext, stages: dict[str, Stage] | None,
                      spec: PipelineSpec | None = None) -> dict:
    """Seed, build, train with the fine-tune budget, save weights and test predictions."""
    spec = ctx.spec if spec is None else spec
    fs, data = spec.finetune, ctx.data
    train.seed_everything(plan.seed)
    model = trainable_classifier(spec, data.input_shape, data.n_classes, stages, plan.seed)
    idx = plan_labeled_indices(plan, ctx)
    val = plan_validation_indices(plan, ctx, idx)  # None: the last validation_split of idx
    rows = split_validation(len(idx), plan.params["validation_split"]) if val is None else len(idx)
    steps = train.epoch_steps(rows, training.batch_size(fs.batch_size, rows), fs.steps_per_epoch)
    decay = fs.epochs * steps if fs.schedule == "cosine" else None
    trained, unlabeled = model, None
    if fs.semi_supervised:  # extra validation rows leave the unlabeled pool: never trained on, even unlabeled
        trained = _semi_supervised(spec, model, stages, steps, data.input_shape, plan.seed, data.y_train[idx])
        held = idx if val is None else np.concatenate([idx, val])
        unlabeled = (feed.take(data.x_train, unlabeled_indices(data.y_train, held)), fs.unlabeled_batch_size)
    train.seed_everything(derive_seed(plan.seed, "train"))  # the same for finetune and baseline: same draws
    compile_classifier(trained, fs.optimizer, fs.learning_rate, decay, custom_step=unlabeled is not None)
    validation = None if val is None else (feed.take(data.x_train, val), data.y_train[val])
    history = fit_xy(trained, feed.take(data.x_train, idx), data.y_train[idx], ctx, section=fs, seed=plan.seed,
                     validation_split=plan.params["validation_split"], unlabeled=unlabeled, validation=validation)
    model.save_weights(ctx.workdir / layout.MODEL_WEIGHTS)
    atomic_write_json(ctx.workdir / layout.HISTORY, history)
    pred = predict_classes(ctx.spec, ctx.workdir / layout.MODEL_WEIGHTS, data)
    np.save(ctx.workdir / layout.PREDICTIONS, pred)
    return {"metrics": {"accuracy": last(history, "accuracy"), "val_accuracy": last(history, "val_accuracy"),
                        "test_accuracy": float(np.mean(pred == data.y_test))},
            "classes": data.classes.tolist(), "labeled_rows": int(len(idx)),
            **({} if val is None else {"validation_rows": int(len(val))}),
            "training": training_record(history, fs, ctx)}


def run_finetune(plan: StagePlan, ctx: StageContext) -> dict:
    return _train_classifier(plan, ctx, ctx.inputs)


def run_baseline(plan: StagePlan, ctx: StageContext) -> dict:
    """``baseline`` fine-tunes as ``finetune`` does; ``baseline-plain`` without the
    options that learn from unlabeled inputs."""
    import dataclasses

    spec = ctx.spec
    if plan.name == "baseline-plain":
        spec = dataclasses.replace(spec, finetune=spec.finetune.plain())
    ctx.log(f"{plan.name}: the same network from random init, same labels, data order and seeds")
    return _train_classifier(plan, ctx, None, spec)
