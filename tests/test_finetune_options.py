"""Fine-tune options beyond the optimizer: bfloat16 compute, max-norm, batch norm and noise."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from aepipe import config as spec_mod
from aepipe.data import feed
from aepipe.data import sources as data_mod
from aepipe.estimators import load as export
from aepipe.engine.store import Stage, Store
from aepipe.stages import supervised
from conftest import FAST


def _finetuned(result, spec):
    """The fine-tuned classifier of a ``run --json`` (64 digit pixels, 10 classes),
    loaded the way evaluate loads it."""
    path = next(Path(st["path"]) for st in json.loads(result.stdout)["stages"] if st["name"] == "finetune")
    stage = Stage(path, Store(path.parent.parent).verify(path))
    return supervised.load_classifier(spec, stage.file("model.weights.h5"), (64,), 10)


def test_bfloat16_builds_mixed_layers_with_a_float32_softmax():
    spec = spec_mod.loads("[[layers]]\nunits = 8\n[finetune]\nprecision = \"bfloat16\"\ndropout = 0.5\n")
    model = supervised.trainable_classifier(spec, (16,), 3)
    dense = model.get_layer("encoder_0").get_layer("dense")
    assert dense.compute_dtype == "bfloat16" and dense.kernel.dtype == "float32"
    assert model.get_layer("head").get_layer("softmax").compute_dtype == "float32"
    assert model(np.zeros((2, 16), np.float32)).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back


@pytest.mark.slow
def test_bfloat16_finetune_learns_like_float32_and_saves_float32(aepipe, artifacts):
    acc = {}
    for precision in ("float32", "bfloat16"):  # shared pretrain and head; only fine-tuning differs
        result = aepipe("run", *FAST, "--set", "finetune.epochs=4", "--set", f"finetune.precision={precision}",
                        "--json")
        acc[precision] = json.loads(result.stdout)["metrics"]["test_accuracy"]
    assert acc["float32"] > 0.6 and abs(acc["bfloat16"] - acc["float32"]) < 0.1, acc
    for stage_dir in (artifacts / "stages").glob("finetune-*"):
        import h5py

        with h5py.File(stage_dir / "model.weights.h5") as f:
            dtypes = set()
            f.visititems(lambda name, obj: dtypes.add(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
        assert {d for d in dtypes if d.kind == "f"} == {np.dtype("float32")}  # no bfloat16 weights


def _column_norms(model):
    return [np.linalg.norm(w, axis=0) for w in model.get_weights() if w.ndim == 2]


def test_max_norm_caps_every_units_incoming_weights(aepipe):
    cap = 0.6
    runs = {}
    for overrides in ([f"finetune.max_norm={cap}"], []):  # shared pretrain and head; only fine-tuning differs
        result = aepipe("run", *FAST, *[a for o in overrides for a in ("--set", o)], "--json")
        runs[bool(overrides)] = _column_norms(_finetuned(result, spec_mod.load(None, [*FAST[1::2], *overrides])))
    assert max(n.max() for n in runs[True]) <= cap * (1 + 1e-5)
    assert max(n.max() for n in runs[False]) > cap  # the cap bound: without it some unit is longer


def test_input_pipelines_do_not_autotune():
    """Autotuning's model thread stalls every iterator teardown (once per epoch)."""
    x = np.zeros((10, 3), np.float32)
    train_ds, _ = feed.training_batches(x, np.zeros(10, np.int32), batch_size=4, seed=0, start=0)
    val_ds = feed.validation_batches(x, np.zeros(10, np.int32), batch_size=4)
    for ds in (train_ds, val_ds):
        assert ds.options().autotune.enabled is False
    assert sum(len(b[0]) for b in val_ds) == 10


RESUMABLE = {"bfloat16-dropout-maxnorm": 'precision = "bfloat16"\ndropout = 0.3\nmax_norm = 1.0\n',
             "noisy-batchnorm": "batch_norm = true\nnoise = 0.3\ninput_noise = 0.3\n"}


@pytest.mark.slow
@pytest.mark.parametrize("finetune", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_finetune_resumes_bit_identically(tmp_path, finetune):
    """Two epochs, stop, two more from the checkpoint == four in one go: noise
    and dropout masks replay, batch-norm statistics come back."""
    from aepipe.nn import train

    spec = spec_mod.loads(f"[[layers]]\nunits = 16\n[[layers]]\nunits = 8\n[finetune]\n{finetune}")
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 12), dtype=np.float32), rng.integers(0, 3, 200).astype(np.int32)

    def build():  # as a new process would: same seed, fresh model
        keras.utils.set_random_seed(1)
        model = supervised.trainable_classifier(spec, (12,), 3)
        supervised.compile_classifier(model, "adam", 1e-2)
        return model

    def fit(model, workdir, epochs):
        train.fit(model, x, y, epochs=epochs, batch_size=16, seed=3, workdir=workdir)
        return model.get_weights()

    whole = fit(build(), tmp_path / "a", 4)
    fit(build(), tmp_path / "b", 2)
    resumed = fit(build(), tmp_path / "b", 4)  # picks up the epoch-2 checkpoint
    assert not np.array_equal(whole[0], fit(build(), tmp_path / "c", 2)[0])  # 2 epochs differ from 4
    for a, b in zip(whole, resumed):
        np.testing.assert_array_equal(a, b)


def test_noisy_batch_norm_net_is_stock_keras_and_loads_as_the_estimator_evaluate_scored(aepipe, tmp_path):
    noisy = ["finetune.batch_norm=true", "finetune.noise=0.3", "finetune.input_noise=0.2"]
    result = aepipe("run", *FAST, *[a for o in noisy for a in ("--set", o)], "--json")
    out = json.loads(result.stdout)
    model = _finetuned(result, spec_mod.load(None, [*FAST[1::2], *noisy]))  # the run's own spec
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["input_noise", "encoder_0", "batch_norm_0", "noise_0"] and names[-1] == "head"
    assert not np.allclose(model.get_layer("batch_norm_0").moving_variance, 1.0)  # statistics were learned

    ds = data_mod.load(spec_mod.load(None).data)
    clf = export.load(out["run_dir"])  # rebuilt from its weight lists, batch norm included
    score = clf.score(ds.x_test, ds.classes[ds.y_test])
    assert score == pytest.approx(out["metrics"]["test_accuracy"], abs=1e-12)
    x = ds.x_test[:50].astype(np.float32)
    path = export.save_keras(clf.keras_model_, tmp_path / "noisy.keras")
    plain = keras.saving.load_model(path)  # safe_mode: stock layers only
    np.testing.assert_array_equal(np.asarray(plain(x, training=False)), np.asarray(model(x, training=False)))
    np.testing.assert_array_equal(plain.predict(x, verbose=0), plain.predict(x, verbose=0))  # no noise at inference
