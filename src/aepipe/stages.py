"""What each stage does: inputs (data, upstream stages) -> files in its work dir.

Every function here writes only into ``workdir`` (the stage's partial
directory) and returns the extra manifest fields; publishing, locking and
skipping are the runner's job.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np

from . import feed, precision, train
from .blocks import build_classifier, build_head, cap_weight_norms, make_block
from .data import Dataset, check_unit_range
from .plan import StagePlan
from .spec import PipelineSpec
from .store import Stage, atomic_write_json


@dataclass
class StageContext:
    spec: PipelineSpec
    data: Dataset
    inputs: dict[str, Stage]  # upstream name -> published stage
    workdir: Path
    verbose: int = 0
    log: Callable[[str], None] = field(default=lambda msg: None)
    tensorboard: Path | None = None  # this stage's TensorBoard log dir (--tensorboard)


def split_validation(n: int, fraction: float) -> int:
    """Keras' ``validation_split`` rule: the last fraction is held out."""
    return int(np.ceil(n * (1.0 - fraction))) if fraction > 0 else n


def labeled_indices(y: np.ndarray, n_labels: int | None, seed: int) -> np.ndarray:
    """All training rows, or a seeded stratified subset in few-label mode."""
    if n_labels is None or n_labels >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n_labels, stratify=y, random_state=seed)
    return np.sort(idx)


def stack_blocks(spec: PipelineSpec, input_shape):
    """Fresh (random-init) blocks for every layer, each sized from the one below."""
    blocks, shape = [], tuple(input_shape)
    for i, layer in enumerate(spec.layers):
        block = make_block(layer, shape, i)
        blocks.append(block)
        shape = block.output_shape
    return blocks


def _fit_xy(model, x, y, params, ctx: StageContext, *, epochs, batch_size, seed, workdir):
    cut = split_validation(len(x), params["validation_split"])
    validation = (x[cut:], y[cut:]) if cut < len(x) else None
    callbacks = []
    if ctx.tensorboard is not None:  # the baseline trains in a sub-workdir: its logs go beside
        logdir = ctx.tensorboard if workdir == ctx.workdir else ctx.tensorboard / Path(workdir).name
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logdir), write_graph=False))
    return train.fit(model, x[:cut], y[:cut], epochs=epochs, batch_size=batch_size, seed=seed,
                     validation=validation, workdir=workdir, verbose=ctx.verbose, log=ctx.log,
                     callbacks=callbacks)


# ---------------------------------------------------------------- pretrain


def run_pretrain(plan: StagePlan, ctx: StageContext) -> dict:
    """greedy: train layer i on the codes below. joint / layer_matching: stage 0
    trains the deep autoencoder, stage i > 0 takes layer i out of it."""
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
    return (np.load(below.file("encodings/train.npy"), mmap_mode="r"),
            np.load(below.file("encodings/test.npy"), mmap_mode="r"))


def _compile_autoencoder(model, layer, loss):
    train.compile_model(model, layer.optimizer, layer.learning_rate, loss)


def _write_layer(block, x, x_test, workdir: Path) -> dict:
    """Weights, codes (train and test) and the test reconstruction error of one block."""
    t = time.perf_counter()
    _write_layer_weights(block, workdir)
    enc_dir = workdir / "encodings"
    enc_dir.mkdir(exist_ok=True)
    # streamed to disk chunk by chunk: neither input nor codes need to fit in memory
    codes_train = feed.encode_to_npy(block.encoder, x, enc_dir / "train.npy")
    codes_test = feed.encode_to_npy(block.encoder, x_test, enc_dir / "test.npy")
    return {"metrics": {"reconstruction_mse": feed.reconstruction_mse(block.decoder, codes_test, x_test)},
            "shapes": {"input": list(x.shape[1:]), "output": list(codes_train.shape[1:])},
            "encode_seconds": time.perf_counter() - t}


def _with_history(out: dict, history: dict, workdir: Path) -> dict:
    atomic_write_json(workdir / "history.json", history)
    out["metrics"].update(loss=_last(history, "loss"), val_loss=_last(history, "val_loss"))
    return out


def _pretrain_greedy(plan: StagePlan, ctx: StageContext) -> dict:
    i = plan.params["index"]
    layer = ctx.spec.layers[i]
    x, x_test = _layer_input(ctx, i)
    if layer.loss == "binary_crossentropy":
        check_unit_range(x, f"layer {i} ({plan.name})")
    seed = train.derive_seed(ctx.spec.seed, plan.key)
    train.seed_everything(seed)
    block = make_block(layer, x.shape[1:], i)
    ae = block.build_autoencoder()
    _compile_autoencoder(ae, layer, block.loss)
    x = np.asarray(x, dtype=np.float32)
    history = _fit_xy(ae, x, x, plan.params, ctx, epochs=layer.epochs, batch_size=layer.batch_size,
                      seed=seed, workdir=ctx.workdir)
    out = _with_history(_write_layer(block, x, x_test, ctx.workdir), history, ctx.workdir)
    if block.kind == "variational":
        from .latent_plots import write_latent_plots

        out["plots"] = write_latent_plots(block, ctx.workdir, ctx.data.y_test, i == 0)
    return out


def _pretrain_deep(plan: StagePlan, ctx: StageContext) -> dict:
    """The whole stack as one model (``deep.BUILDERS[mode]``), trained with layer 0's
    settings; every layer's weights go to ``layers/<i>/``, layer 0's also to the top."""
    from .deep import BUILDERS

    spec, data = ctx.spec, ctx.data
    first = spec.layers[0]
    if first.loss == "binary_crossentropy":
        check_unit_range(data.x_train, f"layer 0 ({plan.name})")
    seed = train.derive_seed(spec.seed, plan.key)
    train.seed_everything(seed)
    blocks = stack_blocks(spec, data.input_shape)
    model = BUILDERS[plan.params["mode"]](blocks, spec)
    _compile_autoencoder(model, first, blocks[0].loss)
    x = np.asarray(data.x_train, dtype=np.float32)
    history = _fit_xy(model, x, x, plan.params, ctx, epochs=first.epochs, batch_size=first.batch_size,
                      seed=seed, workdir=ctx.workdir)
    for i, block in enumerate(blocks):
        (ctx.workdir / "layers" / str(i)).mkdir(parents=True, exist_ok=True)
        _write_layer_weights(block, ctx.workdir / "layers" / str(i))
    out = _write_layer(blocks[0], x, data.x_test, ctx.workdir)
    recon = train.predict(model, np.asarray(data.x_test, dtype=np.float32))
    out["metrics"]["layer_reconstruction_mse"] = out["metrics"]["reconstruction_mse"]
    out["metrics"]["reconstruction_mse"] = float(np.mean((recon - data.x_test) ** 2))  # the whole stack
    return _with_history(out, history, ctx.workdir)


def _write_layer_weights(block, where: Path) -> None:
    block.encoder.save_weights(where / "encoder.weights.h5")
    block.decoder.save_weights(where / "decoder.weights.h5")


def _layer_of_deep(plan: StagePlan, ctx: StageContext) -> dict:
    i = plan.params["index"]
    x, x_test = _layer_input(ctx, i)
    block = make_block(ctx.spec.layers[i], x.shape[1:], i)
    deep = ctx.inputs["pretrain-0"]
    block.encoder.load_weights(deep.file(f"layers/{i}/encoder.weights.h5"))
    block.decoder.load_weights(deep.file(f"layers/{i}/decoder.weights.h5"))
    return _write_layer(block, x, x_test, ctx.workdir)


# ---------------------------------------------------------------- head


def run_head(plan: StagePlan, ctx: StageContext) -> dict:
    top = ctx.inputs[plan.upstream[0]]
    codes = np.load(top.file("encodings/train.npy"), mmap_mode="r")
    idx = labeled_indices(ctx.data.y_train, plan.params["labels"], ctx.spec.seed)
    x, y = feed.take(codes, idx), ctx.data.y_train[idx]  # all labels: the memmap itself, streamed
    seed = train.derive_seed(ctx.spec.seed, plan.key)
    train.seed_everything(seed)
    hs = ctx.spec.head
    head = build_head(codes.shape[1:], ctx.data.n_classes)
    _compile_classifier(head, hs.optimizer, hs.learning_rate)
    history = _fit_xy(head, x, y, plan.params, ctx, epochs=hs.epochs, batch_size=hs.batch_size,
                      seed=seed, workdir=ctx.workdir)
    head.save_weights(ctx.workdir / "head.weights.h5")
    atomic_write_json(ctx.workdir / "history.json", history)
    return {"metrics": {"accuracy": _last(history, "accuracy"), "val_accuracy": _last(history, "val_accuracy")}}


# ---------------------------------------------------------------- finetune


def stacked_classifier(spec: PipelineSpec, input_shape, n_classes):
    """The fine-tune network with random weights: encoders, regularisers, softmax head."""
    fs = spec.finetune
    blocks = stack_blocks(spec, input_shape)
    model = build_classifier([b.encoder for b in blocks], input_shape, n_classes, fs.dropout, fs.input_dropout,
                             batch_norm=fs.batch_norm, noise=fs.noise, input_noise=fs.input_noise)
    return model, blocks


def trainable_classifier(spec: PipelineSpec, input_shape, n_classes, inputs: dict[str, Stage] | None = None):
    """Built under the fine-tune compute dtype, with pretrained weights when
    ``inputs`` holds the stages (the baseline passes none), max-norm attached."""
    fs = spec.finetune
    with precision.compute_dtype(fs.precision):
        model, blocks = stacked_classifier(spec, input_shape, n_classes)
    if inputs is not None:
        for i, block in enumerate(blocks):
            block.encoder.load_weights(inputs[f"pretrain-{i}"].file("encoder.weights.h5"))
        model.get_layer("head").load_weights(inputs["head"].file("head.weights.h5"))
    if fs.max_norm > 0:
        cap_weight_norms(model, fs.max_norm)
    return model


def _compile_classifier(model, optimizer, learning_rate, decay_steps=None):
    train.compile_model(model, optimizer, learning_rate, "sparse_categorical_crossentropy", ["accuracy"],
                        decay_steps=decay_steps)


def _train_classifier(model, plan: StagePlan, ctx: StageContext, seed: int, workdir) -> dict:
    """The fine-tune budget, shared by the pretrained net and its random-init baseline."""
    fs = ctx.spec.finetune
    idx = labeled_indices(ctx.data.y_train, plan.params["labels"], ctx.spec.seed)
    steps = math.ceil(split_validation(len(idx), plan.params["validation_split"]) / fs.batch_size)
    _compile_classifier(model, fs.optimizer, fs.learning_rate,
                        fs.epochs * steps if fs.schedule == "cosine" else None)
    return _fit_xy(model, feed.take(ctx.data.x_train, idx), ctx.data.y_train[idx], plan.params, ctx,
                   epochs=fs.epochs, batch_size=fs.batch_size, seed=seed, workdir=workdir)


def run_finetune(plan: StagePlan, ctx: StageContext) -> dict:
    seed = train.derive_seed(ctx.spec.seed, plan.key)
    train.seed_everything(seed)
    model = trainable_classifier(ctx.spec, ctx.data.input_shape, ctx.data.n_classes, ctx.inputs)
    history = _train_classifier(model, plan, ctx, seed, ctx.workdir)
    model.save_weights(ctx.workdir / "model.weights.h5")
    atomic_write_json(ctx.workdir / "history.json", history)
    return {"metrics": {"accuracy": _last(history, "accuracy"), "val_accuracy": _last(history, "val_accuracy")},
            "classes": ctx.data.classes.tolist()}


def load_finetuned(spec: PipelineSpec, finetune: Stage, input_shape, n_classes):
    model, _ = stacked_classifier(spec, input_shape, n_classes)  # float32: evaluation is exact
    model.load_weights(finetune.file("model.weights.h5"))
    return model


# ---------------------------------------------------------------- evaluate


def run_evaluate(plan: StagePlan, ctx: StageContext) -> dict:
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    data = ctx.data
    model = load_finetuned(ctx.spec, ctx.inputs["finetune"], data.input_shape, data.n_classes)
    proba = train.predict(model, data.x_test)
    pred = proba.argmax(axis=1)
    names = [str(c) for c in data.classes]
    metrics = {
        "test_accuracy": float(accuracy_score(data.y_test, pred)),
        "confusion_matrix": confusion_matrix(data.y_test, pred, labels=range(data.n_classes)).tolist(),
        "classification_report": classification_report(
            data.y_test, pred, labels=range(data.n_classes), target_names=names, output_dict=True,
            zero_division=0),
        "n_test": int(len(data.y_test)),
    }
    np.save(ctx.workdir / "predictions.npy", pred.astype(np.int32))
    if ctx.spec.evaluate.baseline:
        metrics.update(_baseline(plan, ctx))
    pictures, side = _pictures(ctx)
    metrics.update(pictures)
    atomic_write_json(ctx.workdir / "metrics.json", metrics)
    return {"metrics": metrics, "image_side": side}


def _pictures(ctx: StageContext) -> tuple[dict, int | None]:
    """What the run's plots need, stored with the stage so a cached rerun draws
    them without TensorFlow: reconstructions by depth (pretrained encoders and
    decoders), first-layer filters, t-SNE embeddings of raw / PCA / top codes."""
    from . import evaluate as ev

    data, spec = ctx.data, ctx.spec
    blocks = stack_blocks(spec, data.input_shape)
    for i, block in enumerate(blocks):
        block.encoder.load_weights(ctx.inputs[f"pretrain-{i}"].file("encoder.weights.h5"))
        block.decoder.load_weights(ctx.inputs[f"pretrain-{i}"].file("decoder.weights.h5"))
    x = np.asarray(data.x_test, dtype=np.float32)
    show = _examples(data.y_test, 10)
    codes, recons, mse = x, {}, {}
    for d, block in enumerate(blocks):
        codes = train.predict(block.encoder, codes)
        back = codes
        for below in reversed(blocks[:d + 1]):
            back = train.predict(below.decoder, back)
        recons[f"depth_{d}"] = back[show]
        mse[f"pretrain-{d}"] = ev.reconstruction_mse(x, back)
    np.savez(ctx.workdir / "reconstructions.npz", originals=x[show], **recons)
    side = ev.image_side(int(np.prod(data.input_shape)))
    kernel = next((w for w in blocks[0].encoder.get_weights() if w.ndim == 2), None)
    if side and kernel is not None and kernel.shape[0] == side * side:
        np.save(ctx.workdir / "filters.npy", kernel.T.astype(np.float32))
    out = {"reconstruction_mse_input": mse}
    if spec.evaluate.tsne:
        idx = ev.subsample(data.y_test, spec.evaluate.tsne_samples, spec.seed)
        top = np.load(ctx.inputs[f"pretrain-{len(blocks) - 1}"].file("encodings/test.npy"), mmap_mode="r")
        features = ev.feature_sets(x[idx], np.asarray(top[idx]), seed=spec.seed)
        out["tsne"], embeddings = ev.tsne_table(features, data.y_test[idx], spec.seed, ctx.log)
        np.savez(ctx.workdir / "tsne.npz", labels=data.y_test[idx], **embeddings)
    return out, side


def _examples(y: np.ndarray, n: int) -> np.ndarray:
    """The first test row of each class, then the next rows, ``n`` in all."""
    first = [int(np.flatnonzero(y == k)[0]) for k in np.unique(y)][:n]
    rest = [i for i in range(len(y)) if i not in set(first)][:max(0, n - len(first))]
    return np.array(first + rest)


def _baseline(plan: StagePlan, ctx: StageContext) -> dict:
    """The same network from random init, with the same fine-tune budget and labels."""
    ctx.log("baseline: the same network from random init")
    fs, data = ctx.spec.finetune, ctx.data
    seed = train.derive_seed(ctx.spec.seed, plan.key, "baseline")
    train.seed_everything(seed)
    model = trainable_classifier(ctx.spec, data.input_shape, data.n_classes)
    bdir = ctx.workdir / "baseline"
    bdir.mkdir(exist_ok=True)
    t = time.perf_counter()
    history = _train_classifier(model, plan, ctx, seed, bdir)
    seconds = time.perf_counter() - t
    pred = train.predict(model, data.x_test).argmax(axis=1)
    atomic_write_json(bdir / "history.json", history)
    return {"baseline_test_accuracy": float(np.mean(pred == data.y_test)),
            "baseline_epochs": fs.epochs, "baseline_seconds": seconds}


def _last(history: dict, key: str):
    values = history.get(key) or [None]
    return values[-1]


RUNNERS = {"pretrain": run_pretrain, "head": run_head, "finetune": run_finetune, "evaluate": run_evaluate}
