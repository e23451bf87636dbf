"""The in-memory training loop (nn/loop.py) trains exactly what ``model.fit`` over tf.data does."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from aepipe.nn import loop, train


def _digits(n=300):
    x, y = load_digits(return_X_y=True)
    return (x[:n] / 16).astype(np.float32), y[:n].astype(np.int32)


def _autoencoder():
    """Noise and a sigmoid decoder: the random layer is reseeded every epoch."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.GaussianNoise(0.2),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(64, activation="sigmoid")])
    train.compile_model(model, "adam", None, "binary_crossentropy")
    return model


def _classifier(optimizer="adam", decay_steps=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="tanh"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(10, activation="softmax")])
    train.compile_model(model, optimizer, None, "sparse_categorical_crossentropy", ["accuracy"],
                        decay_steps=decay_steps)
    return model


def _both(make, fit_kwargs):
    out = []
    for in_memory in (False, True):
        model = make()
        history = train.fit(model, **fit_kwargs, in_memory=in_memory)
        out.append((model.get_weights(), model.optimizer.variables, history))
    return out


def _assert_same(a, b):
    (wa, oa, ha), (wb, ob, hb) = a, b
    assert ha == hb  # every epoch's loss, metrics and validation figures, equal floats
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)
    for u, v in zip(oa, ob):  # the optimizer's step count and moments too
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_an_autoencoder_with_noise_and_a_stop_rule_trains_the_same_weights():
    x, _ = _digits()
    cut = 270
    a, b = _both(_autoencoder, dict(x=x[:cut], y=x[:cut], epochs=6, batch_size=64, seed=3,
                                    validation=(x[cut:], x[cut:]), stop=train.StopRule(1, tol=10.0)))
    assert len(a[2]["loss"]) < 6  # the stop rule ended it early, the same epoch in both
    assert "val_loss" in a[2]
    _assert_same(a, b)


def test_a_classifier_with_dropout_validation_and_a_short_last_batch_trains_the_same_weights():
    x, y = _digits()
    a, b = _both(lambda: _classifier(decay_steps=20), dict(x=x[:250], y=y[:250], epochs=4, batch_size=48, seed=7,
                                                          validation=(x[250:], y[250:])))
    assert set(a[2]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    _assert_same(a, b)


def test_steps_per_epoch_and_more_steps_than_one_execution_train_the_same_weights():
    x, y = _digits()
    old = train.STEPS_PER_EXECUTION
    train.STEPS_PER_EXECUTION = 3  # 10 steps an epoch: executions of 3, 3, 3 and 1
    try:
        a, b = _both(lambda: _classifier("sgd"), dict(x=x, y=y, epochs=3, batch_size=32, seed=2, steps_per_epoch=10))
    finally:
        train.STEPS_PER_EXECUTION = old
    _assert_same(a, b)


def test_fit_called_epoch_by_epoch_traces_once_and_trains_the_same_weights():
    x, y = _digits()
    out = []
    for in_memory in (False, True):
        model = _classifier()
        for _ in range(3):  # as benchmarks/throughput.py times it: one fit call per epoch
            train.fit(model, x, y, epochs=1, batch_size=64, seed=4, in_memory=in_memory)
        out.append(model)
    for u, v in zip(out[0].get_weights(), out[1].get_weights()):
        np.testing.assert_array_equal(u, v)
    assert len(loop._TRACED[out[1]][1]) == 1  # one set of traced functions, reused by every call
    train.compile_model(out[1], "sgd", None, "sparse_categorical_crossentropy")  # compiled anew: traced anew
    train.fit(out[1], x, y, epochs=1, batch_size=64, seed=4)
    assert isinstance(out[1].optimizer, keras.optimizers.SGD) and loop._TRACED[out[1]][0][0] is out[1].optimizer


def test_a_resumed_in_memory_fit_ends_where_an_uninterrupted_one_does(tmp_path):
    x, y = _digits()
    whole = _classifier()
    train.fit(whole, x, y, epochs=4, batch_size=64, seed=0)
    part = _classifier()
    train.fit(part, x, y, epochs=2, batch_size=64, seed=0, workdir=tmp_path)
    resumed = _classifier()
    history = train.fit(resumed, x, y, epochs=4, batch_size=64, seed=0, workdir=tmp_path)
    assert len(history["loss"]) == 4
    for u, v in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_only_in_memory_rows_on_one_device_take_the_loop(tmp_path, monkeypatch):
    x, y = _digits(100)
    model = _classifier()
    assert loop.eligible(model, x, y, (x, y))
    assert not loop.eligible(model, x, y, unlabeled=(x, 32))  # a semi-supervised trainer's paired batches
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert loop.eligible(model, mapped, y)  # small memmaps are read into memory by the feed too
    monkeypatch.setenv("AEPIPE_STREAM_MIN_BYTES", "1")
    assert not loop.eligible(model, mapped, y)  # streamed batch by batch from the file: tf.data


def test_a_non_finite_loss_still_fails_the_fit():
    from aepipe.errors import TrainingDiverged

    x, y = _digits(64)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(1)])
    train.compile_model(model, "sgd", 1e3, "mse")
    with pytest.raises(TrainingDiverged):
        train.fit(model, x * 100, y.astype(np.float32), epochs=20, batch_size=16, seed=0, in_memory=True)
