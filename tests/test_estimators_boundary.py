"""Where the estimators meet the engine: the rows it validates on are a seeded
(stratified) draw, not the caller's last rows, and its click exceptions reach
scikit-learn callers as builtin kinds (ValueError, RuntimeError)."""

import fcntl
import os

import click
import numpy as np
import pytest
from sklearn.datasets import load_iris

import aepipe
from aepipe import AutoencoderTransformer, StackedAutoencoderClassifier
from aepipe.engine import layout
from aepipe.estimators import TrainingDivergedError
from aepipe.errors import LockBusy, StoreError, TrainingDiverged

SPLIT = 0.2  # 30 of iris' 150 rows


def _held_out_rows(memory, X, fraction):
    """The rows of X the engine held out, read from what it trained on:
    layer 0's codes of its training rows, in its order (the engine validates on
    the last ``fraction``), matched to the codes of X by the same weights."""
    from aepipe.stages.context import split_validation

    stage = next((memory / "stages").glob("pretrain-*"))
    seen = np.load(stage / layout.ENCODINGS_TRAIN)
    codes = aepipe.load(stage).transform(X.astype(np.float32))
    dist = ((seen[:, None, :] - codes[None, :, :]) ** 2).sum(-1)
    assert dist.min(axis=1).max() < 1e-8  # every row the engine saw is a row of X
    return dist.argmin(axis=1)[split_validation(len(X), fraction):]


def test_classifier_on_iris_sorted_by_class_validates_on_every_class(tmp_path):
    X, y = load_iris(return_X_y=True)  # 50 of each class, in class order: the last 30 rows are all class 2
    params = dict(layers=(6,), activation="tanh", epochs=1, validation_split=SPLIT, random_state=0)
    clf = StackedAutoencoderClassifier(**params, memory=str(tmp_path)).fit(X, y)
    assert np.bincount(y[_held_out_rows(tmp_path, X, SPLIT)]).tolist() == [10, 10, 10]  # stratified
    assert "val_accuracy" in clf.history_["finetune"]  # the same rows (all labeled) validate the fine-tune


def test_transformer_validates_on_a_seeded_shuffle(tmp_path):
    X, y = load_iris(return_X_y=True)
    held = {}
    for seed in (0, 1):
        memory = tmp_path / str(seed)
        AutoencoderTransformer(layers=(3,), activation="tanh", epochs=1, validation_split=SPLIT,
                               random_state=seed, memory=str(memory)).fit(X)
        held[seed] = set(_held_out_rows(memory, X, SPLIT).tolist())
        assert len(held[seed]) >= 29 and set(y[list(held[seed])]) == {0, 1, 2}  # iris has one duplicate pair
    assert held[0] != held[1]  # random_state seeds the draw


def test_unlabeled_rows_are_drawn_apart_and_the_labeled_tail_is_stratified():
    from aepipe.estimators.holdout import validation_last
    from aepipe.stages.context import split_validation

    y = np.repeat([0, 1, -1], [20, 20, 60])  # sorted: labeled first, then unlabeled
    order = validation_last(y, 0.25, seed=3, stratify=True)
    assert sorted(order.tolist()) == list(range(100))
    labeled = y[order][y[order] >= 0]  # the order the fine-tune sees its labeled rows in
    assert np.bincount(labeled[split_validation(40, 0.25):]).tolist() == [5, 5]
    tail = y[order][split_validation(100, 0.25):]  # what pretraining holds out
    assert (tail == -1).sum() == 15 and np.bincount(tail[tail >= 0]).tolist() == [5, 5]
    assert validation_last(y, 0.0, seed=3, stratify=True).tolist() == list(range(100))


# ---------------------------------------------------------------- errors


def _not_click(err):
    assert isinstance(err, (ValueError, RuntimeError)) and not isinstance(err, click.ClickException)


def test_a_diverged_fit_raises_a_runtime_error_not_a_click_exception():
    X = np.random.RandomState(0).randn(40, 4)  # unbounded: an MSE loss, which overflows
    with pytest.raises(TrainingDivergedError, match="stage pretrain-0 diverged: the loss became") as info:
        StackedAutoencoderClassifier(layers=(3,), epochs=2, learning_rate=1e30, batch_size=8,
                                     random_state=0).fit(X, np.arange(40) % 2)
    _not_click(info.value)
    assert isinstance(info.value.__cause__, TrainingDiverged) and info.value.stage == "pretrain-0"


def test_a_memory_that_is_a_file_raises_a_runtime_error(tmp_path):
    memory = tmp_path / "not-a-dir"
    memory.write_text("")
    with pytest.raises(RuntimeError, match="is a file, not a directory") as info:
        AutoencoderTransformer(layers=(2,), epochs=1, memory=str(memory)).fit(np.zeros((10, 3)))
    _not_click(info.value)
    assert isinstance(info.value.__cause__, StoreError)


def test_a_busy_stage_lock_becomes_a_runtime_error(tmp_path):
    """Fits wait for a lock, so LockBusy (``--no-wait``) is provoked on the store itself."""
    from aepipe.engine.store import Store
    from aepipe.estimators.base import sklearn_errors

    store = Store(tmp_path)
    store.locks.mkdir(parents=True)
    fd = os.open(store.locks / "pretrain-x.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="stage pretrain-x is being built") as info:
            with sklearn_errors(), store.stage_lock("pretrain-x", wait=False):
                pass
    finally:
        os.close(fd)
    _not_click(info.value)
    assert isinstance(info.value.__cause__, LockBusy)
