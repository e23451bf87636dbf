"""What every stage gets (the spec, the data, its upstream stages, a work dir) and the helpers they share.

Every stage function writes only into ``ctx.workdir`` (the stage's partial
directory) and returns the extra manifest fields; publishing, locking and
skipping are the runner's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..nn import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np

from ..config import training
from ..config.spec import PipelineSpec
from ..data.sources import Dataset
from ..data.subset import stratified_subset
from ..engine import layout
from ..engine.store import Stage
from ..nn import train
from ..nn.blocks import stack_blocks
from ..nn.progress import EpochProgress


@dataclass
class StageContext:
    spec: PipelineSpec
    data: Dataset
    inputs: dict[str, Stage]  # upstream name -> published stage
    workdir: Path
    verbose: int = 0  # 0: no progress; 1: one updating line (a terminal); 2: one line per epoch
    log: Callable[[str], None] = field(default=lambda msg: None)
    tensorboard: Path | None = None  # this stage's TensorBoard log dir (--tensorboard)
    label: str = ""  # how progress names this stage, e.g. "[4/7] fine-tune"
    checkpoints: bool = True  # a checkpoint after every epoch, so a killed build resumes
    on_epoch: Callable[[int, dict], None] | None = None  # the run's observer (pipeline/observer.py)
    batch_size: int | None = None  # the minibatch fit_xy trained with (batch_size "auto" resolved)


def split_validation(n: int, fraction: float) -> int:
    """Keras' ``validation_split`` rule: the last fraction is held out."""
    return int(np.ceil(n * (1.0 - fraction))) if fraction > 0 else n


def plan_labeled_indices(plan, ctx) -> np.ndarray:
    """The labeled rows of a supervised stage: its ``labels`` drawn with its
    ``label_seed`` (else the pipeline's seed)."""
    seed = plan.params.get("label_seed")
    return labeled_indices(ctx.data.y_train, plan.params["labels"], ctx.spec.seed if seed is None else seed)


def plan_validation_indices(plan, ctx, labeled: np.ndarray) -> np.ndarray | None:
    """``data.validation_labels`` more labeled rows to validate on: a seeded stratified
    draw from the labeled training rows outside ``labeled``; None when not asked for
    (the last ``validation_split`` of ``labeled`` validates)."""
    n = plan.params.get("validation_labels")
    if not n:
        return None
    y = np.asarray(ctx.data.y_train)
    rest = np.setdiff1d(np.flatnonzero(y >= 0), labeled)
    seed = plan.params.get("label_seed")
    return rest[stratified_subset(y[rest], n, ctx.spec.seed if seed is None else seed)]


def labeled_indices(y: np.ndarray, n_labels: int | None, seed: int) -> np.ndarray:
    """The training rows supervised stages learn from: every labeled row (label
    -1 marks an unlabeled one), or a seeded stratified subset of ``n_labels``."""
    labeled = np.flatnonzero(np.asarray(y) >= 0)
    if n_labels is None or n_labels >= len(labeled):
        return labeled
    return labeled[stratified_subset(np.asarray(y)[labeled], n_labels, seed)]


def pretrained_blocks(spec: PipelineSpec, input_shape, stages: dict[str, Stage], decoders: bool = False,
                      unrolled: bool | None = None):
    """Blocks of every layer holding the weights of stages ``pretrain-i``, or of the
    ``unroll`` stage (``unrolled``; None: whenever ``stages`` has one): the one
    place pretrained weights are loaded from stage files."""
    blocks = stack_blocks(spec.layers, input_shape)
    if unrolled is None:
        unrolled = "unroll" in stages
    for i, block in enumerate(blocks):
        if unrolled:
            stage, where = stages["unroll"], f"{layout.layer_dir(i)}/"
        else:
            stage, where = stages[f"pretrain-{i}"], ""
        block.encoder.load_weights(stage.file(where + layout.ENCODER_WEIGHTS))
        if decoders:
            block.decoder.load_weights(stage.file(where + layout.DECODER_WEIGHTS))
    return blocks


def write_layer_weights(block, where: Path) -> None:
    """One block's encoder and decoder files, as ``pretrained_blocks`` reads them back."""
    where.mkdir(parents=True, exist_ok=True)
    block.encoder.save_weights(where / layout.ENCODER_WEIGHTS)
    block.decoder.save_weights(where / layout.DECODER_WEIGHTS)


def fit_xy(model, x, y, ctx: StageContext, *, section, seed, validation_split, unlabeled=None,
           validation=None) -> dict:
    """``train.fit`` with ``section``'s budget, batch size ("auto" resolved here) and stopping rule (a
    layer, ``[head]`` or ``[finetune]``), the last ``validation_split`` of the
    rows held out (or, given, ``validation`` rows apart), and TensorBoard logs
    when the run asked for them."""
    cut = split_validation(len(x), validation_split) if validation is None else len(x)
    section = training.for_rows(section, cut)  # batch_size "auto": min(200, the rows trained on)
    epochs, batch_size = section.epochs, section.batch_size
    ctx.batch_size = batch_size
    steps = getattr(section, "steps_per_epoch", 0) or None  # [finetune] only; None: one pass over the rows
    if validation is None:
        validation = (x[cut:], y[cut:]) if cut < len(x) else None
    callbacks = []
    if ctx.verbose:
        callbacks.append(EpochProgress(ctx.label, epochs, live=ctx.verbose == 1))
    if ctx.tensorboard is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(ctx.tensorboard), write_graph=False))
    if ctx.on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: ctx.on_epoch(epoch, dict(logs or {}))))
    return train.fit(model, x[:cut], y[:cut], epochs=epochs, batch_size=batch_size, seed=seed,
                     validation=validation, workdir=ctx.workdir if ctx.checkpoints else None, log=ctx.log,
                     callbacks=callbacks, unlabeled=unlabeled, steps_per_epoch=steps,
                     stop=train.StopRule.of(section))


def training_record(history: dict, section, ctx: StageContext | None = None) -> dict:
    """What a stage's manifest says of its training: the epochs it ran, whether
    its stopping rule ended it (False: it used its whole budget), and the
    minibatch it trained with (``ctx``: the stage's context, after ``fit_xy``)."""
    rule = train.StopRule.of(section)
    ran = len(history.get("loss", []))
    batch = {} if ctx is None or ctx.batch_size is None else {"batch_size": ctx.batch_size}
    return {"epochs_run": ran, "epochs": section.epochs,
            "converged": None if rule is None else bool(rule.converged(history)), **batch}


def last(history: dict, key: str):
    values = history.get(key) or [None]
    return values[-1]
