"""The training helper: every epoch sees each row once, in the order (seed, epoch) fixes."""

import keras
import numpy as np
import pytest

from aepipe.data import feed
from aepipe.nn import train


SEEN = []  # module level: Keras would wrap a list stored on a layer into a tracked copy


class Record(keras.layers.Layer):
    """Passes inputs through and keeps what it saw while training (eager only)."""

    def call(self, x, training=False):
        if training:
            SEEN.append(np.array(x).ravel())
        return x


def _expected_order(n, batch_size, seed, epoch):
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    dataset, epoch_var = feed.training_batches(x, x,
                                               batch_size=batch_size, seed=seed, start=0)
    epoch_var.assign(epoch)
    return np.concatenate([np.asarray(xb).ravel() for xb, _ in dataset])


def test_epochs_follow_seeded_order_even_with_steps_per_execution():
    n, batch, epochs = 100, 16, 3  # 7 batches an epoch: not a multiple of steps_per_execution
    SEEN.clear()
    model = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(1)])
    # a tiny rate: on inputs up to 99 the default one diverges, which fit reports as an error
    model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse", run_eagerly=True, steps_per_execution=4)
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    history = train.fit(model, x, np.zeros(n, np.float32), epochs=epochs, batch_size=batch, seed=5)
    assert len(history["loss"]) == epochs
    seen = np.concatenate(SEEN)
    assert len(seen) == n * epochs
    orders = seen.reshape(epochs, n)
    for e in range(epochs):
        assert sorted(orders[e].tolist()) == list(range(n))  # each row once per epoch
        np.testing.assert_array_equal(orders[e], _expected_order(n, batch, 5, e))
    assert not np.array_equal(orders[0], orders[1])


def test_derive_seed_is_stable_and_31_bit():
    assert train.derive_seed(0, "abc") == train.derive_seed(0, "abc")
    assert train.derive_seed(0, "abc") != train.derive_seed(1, "abc")
    assert 0 <= train.derive_seed("x") < 2 ** 31


def test_cosine_schedule_decays_to_zero():
    opt = train.make_optimizer("adam", None, decay_steps=100)
    schedule = opt._learning_rate
    assert abs(float(schedule(0)) - 0.001) < 1e-9  # Adam's default start
    assert float(schedule(100)) < 1e-9
    assert train.make_optimizer("sgd", 0.5).learning_rate == 0.5  # no decay: a plain rate


def test_stop_rule_follows_mlpclassifiers_no_improvement_count():
    rule = train.StopRule(n_iter_no_change=2, tol=0.1)
    assert not rule.converged({"loss": [1.0, 0.5, 0.45, 0.42]})  # two epochs without a 0.1 gain
    assert rule.converged({"loss": [1.0, 0.5, 0.45, 0.42, 0.41]})  # a third: more than n_iter_no_change
    assert not rule.converged({"loss": [1.0, 0.5, 0.45, 0.42, 0.3]})  # a real gain resets the count
    assert train.StopRule(2, 0.1, "val_loss").converged({"loss": [1] * 9, "val_loss": [1.0, 1.0, 1.0, 1.0]})


def test_a_resumed_fit_stops_at_the_epoch_an_uninterrupted_one_does(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype(np.float32)
    rule = train.StopRule(n_iter_no_change=2, tol=0.05)

    def model():
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
        train.compile_model(m, "adam", 0.01, "mse")
        return m

    straight = model()
    full = train.fit(straight, x, x, epochs=200, batch_size=16, seed=3, stop=rule)
    assert 3 < len(full["loss"]) < 200  # the rule ended it
    first = model()
    train.fit(first, x, x, epochs=3, batch_size=16, seed=3, workdir=tmp_path, stop=rule)  # "killed" after 3
    resumed = model()
    again = train.fit(resumed, x, x, epochs=200, batch_size=16, seed=3, workdir=tmp_path, stop=rule)
    assert again == full
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_steps_per_epoch_cycles_through_fresh_shuffles_of_the_rows():
    n, batch = 10, 4
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    dataset, epoch_var = feed.training_batches(x, x, batch_size=batch, seed=3, start=0, steps=7)
    assert int(dataset.cardinality()) == 7
    order = np.concatenate([np.asarray(xb).ravel() for xb, _ in dataset])
    assert len(order) == 7 * batch  # every batch full: 28 rows through 3 shuffles of 10
    rounds = [order[:10], order[10:20]]
    assert all(sorted(r.tolist()) == list(range(n)) for r in rounds)
    assert not np.array_equal(rounds[0], rounds[1])
    # one round keyed (seed, epoch): the order of a plain epoch
    plain, _ = feed.training_batches(x, x, batch_size=5, seed=3, start=0)
    one, _ = feed.training_batches(x, x, batch_size=5, seed=3, start=0, steps=2)
    np.testing.assert_array_equal(np.concatenate([np.asarray(b).ravel() for b, _ in one]),
                                  np.concatenate([np.asarray(b).ravel() for b, _ in plain]))
    epoch_var.assign(1)
    assert not np.array_equal(np.concatenate([np.asarray(b).ravel() for b, _ in dataset]), order)


def test_stages_count_the_steps_fit_feeds(monkeypatch):
    """The schedules' epoch length (stages), fit's and the dataset's agree, one
    step short of ceil(n / batch) where data_parallel drops the rows left over."""
    import inspect

    from aepipe.nn import distribution
    from aepipe.stages import supervised, unroll

    for n, batch, replicas, steps in [(100, 16, 1, None), (101, 10, 2, None), (103, 10, 2, None),
                                      (100, 10, 2, None), (101, 10, 2, 7), (5, 8, 1, None)]:
        monkeypatch.setattr(distribution, "replicas", lambda r=replicas: r)
        x = np.zeros((n, 1), np.float32)
        dataset, _ = feed.training_batches(x, x, batch_size=batch, seed=0, start=0, replicas=replicas, steps=steps)
        fed = int(dataset.cardinality())
        assert fed == len(list(dataset)) == train.epoch_steps(n, batch, steps) == feed.epoch_steps(n, batch, replicas, steps)
    monkeypatch.setattr(distribution, "replicas", lambda: 2)
    assert train.epoch_steps(101, 10) == 10  # two replicas: 100 rows kept, 10 steps, not ceil(101 / 10)
    for source in (inspect.getsource(supervised), inspect.getsource(unroll)):
        assert "train.epoch_steps(" in source and "math.ceil" not in source


# ---------------------------------------------------------------- the fused optimizer update (nn/fused.py)


def _dense_net(dims, precision="float32", max_norm=0.0, dropout=0.0):
    """A softmax net as the fine-tune stage builds one: compute dtype, float32 softmax, max-norm."""
    from aepipe.nn.classifier import cap_weight_norms
    from aepipe.nn.precision import compute_dtype

    keras.utils.set_random_seed(0)
    with compute_dtype(precision):
        layers = [keras.Input((dims[0],))]
        for d in dims[1:-1]:
            layers += [keras.layers.Dense(d, activation="relu"), keras.layers.Dropout(dropout, seed=1)]
        layers.append(keras.layers.Dense(dims[-1], activation="softmax", dtype="float32"))
        model = keras.Sequential(layers)
    if max_norm:
        cap_weight_norms(model, max_norm)
    return model


def _state(model):
    return [np.asarray(v) for v in [*model.weights, *model.optimizer.variables]]


@pytest.mark.parametrize("optimizer,options", [
    ("adam", {"decay_steps": 5}), ("adamw", {"warmup_steps": 2, "decay_steps": 6}), ("sgd", {}),
    ("rmsprop", {}), ("nadam", {"weight_decay": 0.01}), ("adam", {"precision": "bfloat16"})])
def test_the_fused_update_is_keras_update_to_float_rounding(optimizer, options):
    """The same steps of train_step (traced, as the training loop runs it) with
    Keras' update and with the fused one: equal to float32 rounding, max-norm
    constraints and learning-rate schedules included."""
    import tensorflow as tf

    options = dict(options)
    precision = options.pop("precision", "float32")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((32, 12), dtype=np.float32))
    y = tf.constant(rng.integers(0, 3, 32).astype(np.int32))
    states = {}
    for fused in (False, True):
        model = _dense_net([12, 16, 8, 3], precision, max_norm=0.5)
        train.compile_model(model, optimizer, 0.05, "sparse_categorical_crossentropy", ["accuracy"], fused=fused,
                            **options)
        step = tf.function(model.train_step, autograph=False)
        for _ in range(4):
            step((x, y))
        assert bool(model.optimizer._fused_calls if fused else True)  # the fused path ran
        assert int(model.optimizer.iterations) == 4
        states[fused] = _state(model)
    assert type(model.optimizer).__name__ == f"Fused{type(train.make_optimizer(optimizer)).__name__}"
    for a, b in zip(states[False], states[True]):
        np.testing.assert_allclose(b, a, rtol=2e-6, atol=1e-7 * max(1.0, float(np.max(np.abs(a)))))
    kernels = [w for w in states[True][:6] if w.ndim == 2]
    assert all(np.linalg.norm(k, axis=0).max() <= 0.5 + 1e-6 for k in kernels)  # max-norm held


def test_fused_auto_fuses_large_nets_only_and_never_under_a_strategy():
    import tensorflow as tf

    small = _dense_net([12, 16, 3])
    large = _dense_net([784, 200, 10])  # 159k weights
    opt = train.make_optimizer("adam", fused="auto")
    assert not opt.fuses(small.trainable_variables) and opt.fuses(large.trainable_variables)
    assert train.make_optimizer("adam", fused=True).fuses(small.trainable_variables)
    assert type(train.make_optimizer("adam")) is keras.optimizers.Adam  # pretraining and unrolling: Keras'
    with pytest.raises(ValueError, match="fused"):
        train.make_optimizer("adam", fused="yes")
    # a config round trip keeps the threshold
    again = type(opt).from_config(opt.get_config())
    assert again.fused_min_size == train.FUSED_MIN_SIZE and again.name == "adam"
    # made under a tf.distribute strategy: the strategy's own update
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = _dense_net([12, 16, 3])
        train.compile_model(model, "adam", None, "sparse_categorical_crossentropy", fused=True)
        assert not model.optimizer.fuses(model.trainable_variables)
        rng = np.random.default_rng(0)
        model.fit(rng.random((32, 12), dtype=np.float32), rng.integers(0, 3, 32), batch_size=16, verbose=0)
    assert not model.optimizer._fused_calls and int(np.asarray(model.optimizer.iterations)) == 2


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_fine_tune_with_the_fused_update_resumes_bit_identically(tmp_path, monkeypatch, precision):
    """The supervised stages' compile with the fused update forced on a small net:
    cosine schedule, adamw's weight decay... two epochs, a checkpoint, two more
    == four in one go."""
    from aepipe.stages import supervised

    monkeypatch.setattr(train, "FUSED_MIN_SIZE", 0)
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 12), dtype=np.float32), rng.integers(0, 3, 200).astype(np.int32)

    def fit(workdir, epochs):
        model = _dense_net([12, 16, 8, 3], precision, max_norm=1.0, dropout=0.2)
        supervised.compile_classifier(model, "adamw", 1e-2, decay_steps=4 * 13)
        train.fit(model, x, y, epochs=epochs, batch_size=16, seed=3, workdir=workdir)
        assert model.optimizer._fused_calls and np.isfinite(model.get_weights()[0]).all()
        return model.get_weights()

    whole = fit(tmp_path / "a", 4)
    fit(tmp_path / "b", 2)
    resumed = fit(tmp_path / "b", 4)
    for a, b in zip(whole, resumed):
        np.testing.assert_array_equal(a, b)


def test_the_semi_supervised_trainer_takes_the_fused_update_and_resumes_bit_identically(tmp_path):
    """Its train_step calls ``optimizer.apply`` itself: the fused update reaches it."""
    from aepipe.nn.semisupervised import SemiSupervisedTrainer

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8), dtype=np.float32), rng.integers(0, 3, 64).astype(np.int32)
    x_u = rng.random((256, 8), dtype=np.float32)

    def fit(workdir, epochs, fused=True):
        clf = _dense_net([8, 16, 3], dropout=0.5)
        clf.layers[0].name = "encoder_0"
        t = SemiSupervisedTrainer(clf, top="encoder_0", steps_per_epoch=4, pseudo_labels=1.0, pseudo_labels_start=0,
                                  pseudo_labels_end=2)
        train.compile_model(t, "adam", 1e-2, None, fused=fused)
        train.fit(t, x, y, epochs=epochs, batch_size=16, seed=3, workdir=workdir, unlabeled=(x_u, 64))
        assert bool(getattr(t.optimizer, "_fused_calls", None)) == fused
        return clf.get_weights()

    whole = fit(tmp_path / "a", 4)
    fit(tmp_path / "b", 2)
    for a, b, plain in zip(whole, fit(tmp_path / "b", 4), fit(tmp_path / "c", 4, fused=False)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, plain, rtol=1e-4, atol=1e-6)
