"""The scikit-learn faces: sklearn's own estimator checks, digits accuracy,
pickling, pandas output, errors like sklearn's, memory= reuse, joblib workers."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks

from aepipe import AutoencoderTransformer, StackedAutoencoderClassifier

# Tiny settings for sklearn's checks: one small layer, a few epochs; a
# larger learning rate lets the classifier clear check_classifiers_train's
# 0.83 accuracy on blobs in five epochs.
CHECKED = [AutoencoderTransformer(layers=(4,), epochs=1, unroll_epochs=1, batch_size=32, random_state=0),
           StackedAutoencoderClassifier(layers=(8,), epochs=5, learning_rate=0.01, batch_size=32, random_state=0)]

# every check passes: inference runs in fixed-shape row blocks (nn.inference.ROW_BLOCK), so a row's
# result no longer depends on its neighbours (check_methods_sample_order_invariance, issue 31)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@pytest.mark.slow  # most checks fit several Keras models (~5 s a fit on 2 shared cores)
@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# The checks that never fit, for the default run.
NO_FIT = {"check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
          "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params",
          "check_estimators_unfitted", "check_do_not_raise_errors_in_init_or_set_params",
          "check_estimator_tags_renamed", "check_valid_tag_types", "check_mixin_order",
          "check_estimator_sparse_tag", "check_fit1d", "check_transformers_unfitted"}


@pytest.mark.parametrize("estimator", CHECKED, ids=lambda e: type(e).__name__)
def test_sklearn_checks_that_need_no_fit(estimator):
    ran = set()
    for est, check in estimator_checks_generator(estimator, mark="skip"):
        name = getattr(check, "func", check).__name__
        if name in NO_FIT:
            check(est)
            ran.add(name)
    assert len(ran) >= 11


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def transformer(digits):
    X_train = digits[0]
    return AutoencoderTransformer(layers=(32, 8), epochs=3, random_state=0).fit(X_train)


NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def classifier(digits):
    X_train, _, y_train, _ = digits
    return StackedAutoencoderClassifier(layers=(64, 32), random_state=0).fit(X_train, NAMES[y_train])  # defaults


@pytest.mark.slow
def test_classifier_reaches_95_percent_on_digits_with_string_labels(classifier, digits):
    _, X_test, _, y_test = digits
    assert classifier.score(X_test, NAMES[y_test]) >= 0.95
    assert sorted(classifier.classes_) == sorted(NAMES)
    assert set(classifier.predict(X_test)) <= set(NAMES)
    proba = classifier.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(classifier.history_) == {"pretrain-0", "pretrain-1", "head", "finetune"}


def test_pickle_round_trip_is_bit_identical_and_holds_no_tensorflow(transformer, classifier, digits):
    X_test = digits[1]
    for est, method in ((transformer, "transform"), (classifier, "predict_proba")):
        blob = pickle.dumps(est)
        assert b"keras" not in blob and b"tensorflow" not in blob  # config + weight bytes only
        again = pickle.loads(blob)
        assert np.array_equal(getattr(again, method)(X_test), getattr(est, method)(X_test))


def test_transform_shapes_names_and_reconstruction(transformer, digits):
    X_test = digits[1]
    codes = transformer.transform(X_test)
    assert codes.shape == (len(X_test), 8) and codes.dtype == np.float64
    assert transformer.transform(X_test.astype(np.float32)).dtype == np.float32
    assert list(transformer.get_feature_names_out()) == [f"autoencodertransformer{i}" for i in range(8)]
    assert transformer.inverse_transform(codes).shape == X_test.shape
    assert transformer.score(X_test) < 0
    assert transformer.spec_.layers[0].loss == "binary_crossentropy"  # digits / 16 lie in [0, 1]


def test_keras_model_matches_transform_and_predict(transformer, classifier, digits):
    X_test = digits[1].astype(np.float32)
    # to float32 rounding: the estimators compute in fixed 256-row blocks (nn.inference), Keras on the whole batch
    np.testing.assert_allclose(np.asarray(transformer.keras_model_(X_test)), transformer.transform(X_test),
                               rtol=1e-5, atol=1e-6)
    theirs = np.asarray(classifier.keras_model_(X_test))
    np.testing.assert_allclose(theirs, classifier.predict_proba(X_test).astype(np.float32), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(classifier.classes_[theirs.argmax(1)], classifier.predict(X_test))


def test_set_output_pandas_names_columns(transformer, digits):
    pd = pytest.importorskip("pandas")
    X_test = pd.DataFrame(digits[1], columns=[f"px{i}" for i in range(64)])
    out = clone(transformer).set_output(transform="pandas").fit(X_test).transform(X_test)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"autoencodertransformer{i}" for i in range(8)]
    assert list(out.index) == list(X_test.index)


def test_clone_keeps_params_and_drops_fitted_state(transformer):
    twin = clone(transformer)
    assert twin.get_params() == transformer.get_params()
    assert not hasattr(twin, "encoder_weights_")


# ---------------------------------------------------------------- errors like sklearn's


def _message(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value).replace("LogisticRegression", "EST").replace("StackedAutoencoderClassifier", "EST")


@pytest.mark.parametrize("case", ["nan", "inf", "1d", "empty"])
def test_bad_fit_input_raises_what_sklearn_raises(case):
    X = np.random.RandomState(0).rand(20, 3)
    y = np.arange(20) % 2
    X = {"nan": np.where(X > 0.9, np.nan, X), "inf": np.where(X > 0.9, np.inf, X),
         "1d": X[:, 0], "empty": X[:0]}[case]
    y = y[:0] if case == "empty" else y
    ours = _message(lambda: StackedAutoencoderClassifier(epochs=1).fit(X, y))
    theirs = _message(lambda: LogisticRegression().fit(X, y))
    assert ours == theirs


def test_one_class_and_continuous_targets_are_refused():
    X = np.random.RandomState(0).rand(10, 3)
    with pytest.raises(ValueError, match="only one class"):
        StackedAutoencoderClassifier(epochs=1).fit(X, np.zeros(10))
    with pytest.raises(ValueError, match="Unknown label type"):
        StackedAutoencoderClassifier(epochs=1).fit(X, X[:, 0])


def test_wrong_feature_count_at_transform_time(transformer, classifier, digits):
    X = digits[1][:, :10]
    with pytest.raises(ValueError, match="X has 10 features, but AutoencoderTransformer is expecting 64"):
        transformer.transform(X)
    with pytest.raises(ValueError, match="X has 10 features, but StackedAutoencoderClassifier is expecting 64"):
        classifier.predict(X)


def test_bad_parameters_name_the_parameter():
    X = np.random.RandomState(0).rand(10, 3)
    with pytest.raises(ValueError, match="The 'epochs' parameter of AutoencoderTransformer must be"):
        AutoencoderTransformer(epochs=0).fit(X)
    with pytest.raises(ValueError, match="'layers' parameter .* positive int"):
        AutoencoderTransformer(layers=(8, 0)).fit(X)
    with pytest.raises(ValueError, match="kind: must be one of"):  # checked by the pipeline spec
        AutoencoderTransformer(kind="nope").fit(X)


def test_loss_auto_follows_the_data_range():
    X = np.random.RandomState(0).randn(40, 3)  # not in [0, 1]: no sigmoid / cross-entropy
    est = AutoencoderTransformer(layers=(2,), epochs=1, noise="gaussian", random_state=0).fit(X)
    layer = est.spec_.layers[0]
    assert (layer.loss, layer.decoder_activation, layer.noise.kind) == ("mse", "linear", "gaussian")
    with pytest.raises(ValueError, match="binary_crossentropy needs inputs in"):
        AutoencoderTransformer(layers=(2,), epochs=1, loss="binary_crossentropy").fit(X)


# ---------------------------------------------------------------- the engine underneath


def test_memory_reuses_cached_stages(tmp_path, monkeypatch):
    X = np.random.RandomState(0).rand(60, 5)
    y = np.arange(60) % 3
    params = dict(layers=(4,), epochs=2, random_state=0, memory=str(tmp_path))
    first = StackedAutoencoderClassifier(**params).fit(X, y)
    stages = sorted(p.name for p in (tmp_path / "stages").iterdir())
    assert [s.split("-")[0] for s in stages] == ["finetune", "head", "pretrain"]

    import aepipe.nn.train

    def no_training(*args, **kwargs):
        raise AssertionError("a cached stage was trained again")

    monkeypatch.setattr(aepipe.nn.train, "fit", no_training)
    second = StackedAutoencoderClassifier(**params).fit(X, y)
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == stages
    assert np.array_equal(second.predict_proba(X), first.predict_proba(X))


def test_same_random_state_same_weights_different_state_different_weights():
    X = np.random.RandomState(0).rand(30, 4)
    a = AutoencoderTransformer(layers=(3,), epochs=1, random_state=1).fit(X).transform(X)
    b = AutoencoderTransformer(layers=(3,), epochs=1, random_state=1).fit(X).transform(X)
    c = AutoencoderTransformer(layers=(3,), epochs=1, random_state=2).fit(X).transform(X)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_importing_aepipe_and_the_estimators_does_not_import_tensorflow():
    code = ("import sys, aepipe; assert 'sklearn' not in sys.modules; aepipe.AutoencoderTransformer; "
            "aepipe.load; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_grid_search_with_two_loky_workers_and_cross_val_score(digits):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X_train, X_test, y_train, y_test = digits
    grid = GridSearchCV(StackedAutoencoderClassifier(epochs=5, batch_size=32, random_state=0),
                        {"layers": [(32,), (32, 16)]}, cv=2, n_jobs=2).fit(X_train, y_train)
    assert grid.best_params_["layers"] in [(32,), (32, 16)]
    best = pickle.loads(pickle.dumps(grid.best_estimator_))
    assert np.array_equal(best.predict(X_test), grid.predict(X_test))
    scores = cross_val_score(StackedAutoencoderClassifier(layers=(32,), epochs=5, batch_size=32, random_state=0),
                             X_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7  # 5 epochs on 450 rows: working, not tuned


@pytest.mark.slow
def test_tsne_of_autoencoder_codes_keeps_digit_neighbourhoods(capsys):
    from sklearn.manifold import TSNE, trustworthiness
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    emb = make_pipeline(AutoencoderTransformer(layers=(48, 24), random_state=0),
                        TSNE(random_state=0)).fit_transform(X)
    raw = TSNE(random_state=0).fit_transform(X)
    scores = {name: (cross_val_score(KNeighborsClassifier(10), e, y, cv=5).mean(),
                     trustworthiness(X, e, n_neighbors=10)) for name, e in (("codes", emb), ("raw", raw))}
    with capsys.disabled():
        for name, (knn, trust) in scores.items():
            print(f"\nt-SNE of digits ({name}): 10-NN accuracy {knn:.3f}, trustworthiness {trust:.3f}", end="")
    assert emb.shape == (len(X), 2)
    knn, trust = scores["codes"]
    assert knn > 0.9 and trust > 0.9


def test_fit_leaves_the_callers_global_rng_state_as_it_was():
    import random

    X = np.random.RandomState(0).rand(30, 4)
    random.seed(11)
    np.random.seed(11)
    py, gen = random.getstate(), np.random.get_state()
    AutoencoderTransformer(layers=(3,), epochs=1, random_state=1).fit(X)
    assert random.getstate() == py
    after = np.random.get_state()
    assert after[0] == gen[0] and np.array_equal(after[1], gen[1]) and after[2:] == gen[2:]


def test_unlabeled_rows_are_pretrained_on_and_never_trained_on_as_labels(tmp_path):
    import json

    X = np.random.RandomState(0).rand(120, 6)
    y = np.where(np.arange(120) % 3 == 0, np.arange(120) % 2, -1)  # 40 labeled rows, 80 unlabeled
    clf = StackedAutoencoderClassifier(layers=(4,), epochs=2, random_state=0, memory=str(tmp_path)).fit(X, y)
    assert list(clf.classes_) == [0, 1]
    manifests = {p.name.split("-")[0]: json.loads((p / "manifest.json").read_text())
                 for p in (tmp_path / "stages").iterdir()}
    assert manifests["finetune"]["labeled_rows"] == 40
    assert manifests["pretrain"]["shapes"]["input"] == [6]
    assert len(np.load(tmp_path / "stages" / next(p.name for p in (tmp_path / "stages").iterdir()
                                                  if p.name.startswith("pretrain")) / "encodings/train.npy")) == 120
    with pytest.raises(ValueError, match="contains only one class"):
        StackedAutoencoderClassifier(layers=(4,), epochs=1).fit(X, np.full(120, -1))
    binary = StackedAutoencoderClassifier(layers=(4,), epochs=1, random_state=0).fit(X, np.where(y == 1, 1, -1))
    assert list(binary.classes_) == [-1, 1]  # with one other class, -1 is a class, not "unlabeled"


def test_a_transformer_and_a_classifier_on_the_same_X_share_their_pretraining(tmp_path):
    X = np.random.RandomState(0).rand(60, 5)
    params = dict(layers=(4, 3), activation="relu", epochs=2, random_state=0, memory=str(tmp_path))
    AutoencoderTransformer(**params, unroll_epochs=0).fit(X)  # the classifier's recipe: relu, no unroll
    before = sorted(p.name for p in (tmp_path / "stages").iterdir())
    StackedAutoencoderClassifier(**params).fit(X, np.arange(60) % 3)
    StackedAutoencoderClassifier(**params).fit(X, (np.arange(60) // 7) % 2)  # other labels, same inputs
    pretrain = sorted(p.name for p in (tmp_path / "stages").iterdir() if p.name.startswith("pretrain"))
    assert pretrain == before and len(pretrain) == 2


def test_convergence_warning_names_the_phase_only_when_the_budget_is_too_small():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X = np.random.RandomState(0).rand(80, 5)
    y = np.arange(80) % 2
    with pytest.warns(ConvergenceWarning, match="finetune used its whole budget of 2 epochs") as caught:
        short = StackedAutoencoderClassifier(layers=(4,), epochs=2, random_state=0).fit(X, y)
    phases = {str(w.message).split(": ")[1].split(" used")[0] for w in caught if w.category is ConvergenceWarning}
    assert phases == {"pretrain-0", "head", "finetune"}
    assert short.n_iter_ == 2 and short.n_iters_ == {"pretrain-0": 2, "head": 2, "finetune": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        enough = StackedAutoencoderClassifier(layers=(4,), epochs=300, tol=0.05, random_state=0).fit(X, y)
    assert all(n < 300 for n in enough.n_iters_.values())
    assert enough.loss_curve_ == enough.history_["finetune"]["loss"] and len(enough.loss_curve_) == enough.n_iter_


def test_default_batch_size_adapts_to_the_rows_and_no_change_rule_can_be_off(tmp_path):
    import json

    X = np.random.RandomState(0).rand(50, 3)
    t = AutoencoderTransformer(layers=(2,), epochs=3, unroll_epochs=0, n_iter_no_change=0, memory=str(tmp_path),
                               random_state=0).fit(X)
    assert t.spec_.layers[0].batch_size == "auto" and t.spec_.layers[0].n_iter_no_change == 0 and t.n_iter_ == 3
    # "auto" is the spec's, resolved by the stage from the rows it trains on: min(200, 50)
    manifest = json.loads(next(tmp_path.glob("stages/pretrain-*/manifest.json")).read_text())
    assert manifest["training"]["batch_size"] == 50
