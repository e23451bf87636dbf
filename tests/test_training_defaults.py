"""One home for the training defaults (issue 32): the spec's are the estimators' (MLPClassifier's
rules), "auto" batches are resolved by each stage from its rows, and an estimator and the minimal
TOML pipeline with the same parameters are the same stages with the same weights."""

import inspect

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aepipe import AutoencoderClusterer, AutoencoderTransformer, StackedAutoencoderClassifier, config
from aepipe.config import training
from aepipe.data.fingerprint import fingerprint
from aepipe.data.sources import Dataset
from aepipe.engine import layout
from aepipe.engine.plan import Fingerprint, plan
from aepipe.engine.store import Store
from aepipe.pipeline.runner import Runner
from aepipe.stages.supervised import load_classifier

MINIMAL = "[[layers]]\nunits = 16\n[[layers]]\nunits = 8\n"
TRAINING_PARAMS = ("optimizer", "batch_size", "epochs", "tol", "n_iter_no_change", "early_stopping")


def test_a_spec_without_training_fields_trains_as_the_estimators_do():
    spec = config.loads(MINIMAL)
    for section in (*spec.layers, spec.unroll, spec.head, spec.finetune):
        assert (section.optimizer, section.batch_size, section.n_iter_no_change, section.tol,
                section.early_stopping) == ("adam", "auto", 10, 1e-4, False)
    assert [layer.epochs for layer in spec.layers] == [200, 200] and spec.head.epochs == spec.finetune.epochs == 200
    assert all(layer.noise.kind == "gaussian" and layer.noise.stddev == 0.1 for layer in spec.layers)
    for cls in (StackedAutoencoderClassifier, AutoencoderTransformer, AutoencoderClusterer):
        params = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
        assert {k: params[k] for k in TRAINING_PARAMS} == {k: getattr(spec.head, k) for k in TRAINING_PARAMS}, cls
        assert params["noise"] == spec.layers[0].noise.kind


def test_auto_batch_is_min_200_rows_as_mlpclassifier():
    assert [training.batch_size("auto", n) for n in (0, 1, 135, 200, 1213)] == [1, 1, 135, 200, 200]
    assert training.batch_size(32, 10) == 32
    assert config.loads('[head]\nbatch_size = "auto"').head.batch_size == "auto"
    assert config.loads(MINIMAL, overrides=["finetune.batch_size=auto"]).finetune.batch_size == "auto"


def test_the_stages_resolve_auto_from_their_rows_and_stop_on_tolerance(tmp_path):
    """Digits: pretraining sees the 1213 rows before the validation split (batch 200), the head and
    fine-tune the 135 of 150 labels (batch 135); a loose tol stops pretraining early by the default
    rule (n_iter_no_change 10)."""
    text = ("[data]\nlabels = 150\n[pretrain]\ntol = 0.05\n[[layers]]\nunits = 8\n"
            "[head]\nepochs = 2\n[finetune]\nepochs = 2\n[evaluate]\ntsne = false\n")
    spec = config.loads(text, default_name="minimal")
    store = Store(tmp_path / "art")
    runner = Runner(spec, store)
    runner.run("finetune")
    stages = {s.name: store.load(s.kind, s.key).manifest["training"] for s in runner.plan()
              if s.kind in ("pretrain", "head", "finetune")}
    assert stages["pretrain-0"]["batch_size"] == 200
    assert stages["pretrain-0"]["converged"] is True and 11 <= stages["pretrain-0"]["epochs_run"] < 200
    assert stages["head"]["batch_size"] == stages["finetune"]["batch_size"] == 135


def _digits(n=300):
    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16).astype(np.float32), y[:n]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # budgets of 2 epochs
def test_an_estimator_and_the_minimal_pipeline_are_the_same_stages_and_weights(tmp_path):
    X, y = _digits()
    est = StackedAutoencoderClassifier(layers=(16, 8), epochs=2, random_state=3).fit(X, y)
    # the same parameters as a pipeline: only what differs from the spec's defaults is written
    text = f"seed = 3\n[data]\nvalidation_split = 0.0\n[pretrain]\nepochs = 2\n{MINIMAL}[head]\nepochs = 2\n" \
           "[finetune]\nepochs = 2\n"
    spec = config.loads(text, default_name="minimal")
    fp = Fingerprint("inputs", "labels")
    assert {s.name: s.key for s in plan(spec, fp)} == {s.name: s.key for s in plan(est.spec_, fp)}
    # trained from the files of a fresh store, on the rows the estimator saw: bit-identical weights
    classes, encoded = np.unique(y, return_inverse=True)
    ds = Dataset("arrays", X, encoded.astype(np.int32), X, encoded.astype(np.int32), classes=classes)
    ds.fingerprint = fingerprint(ds)
    store = Store(tmp_path / "art")
    runner = Runner(spec, store, data=ds)
    runner.run("finetune")
    finetune = next(s for s in runner.plan() if s.kind == "finetune")
    model = load_classifier(spec, store.load("finetune", finetune.key).file(layout.MODEL_WEIGHTS), (64,), 10)
    for i, weights in enumerate(est.encoder_weights_):
        for a, b in zip(model.get_layer(f"encoder_{i}").get_weights(), weights):
            np.testing.assert_array_equal(a, b)
    assert est.n_iters_ == {"pretrain-0": 2, "pretrain-1": 2, "head": 2, "finetune": 2}
