"""Few labels: fine-tuning that also learns from the unlabeled inputs
(pseudo-labels, reconstruction through the decoders, virtual adversarial
training), its keys, its baselines,
its resume, and the classifier's y == -1 rows."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from clirun import run_json, statuses

from aepipe import config
from aepipe.engine.plan import Fingerprint, plan

FEW = ("--set", "data.labels=150", "--set", "pretrain.epochs=3", "--set", "head.epochs=2",
       "--set", "finetune.epochs=6", "--set", "evaluate.baseline=true", "--set", "evaluate.tsne=false")
OPTIONS = ("--set", "finetune.pseudo_labels=3", "--set", "finetune.pseudo_labels_start=1",
           "--set", "finetune.pseudo_labels_end=3", "--set", "finetune.reconstruction_weight=1",
           "--set", "finetune.unlabeled_batch_size=64")


def _keys(*overrides) -> dict:
    spec = config.load(None, ["data.labels=150", "evaluate.baseline=true", *overrides])
    return {s.name: s.key for s in plan(spec, Fingerprint("inputs", "labels"))}


def _set(pairs) -> list[str]:
    return [v for k, v in zip(pairs[::2], pairs[1::2]) if k == "--set"]


def test_options_enter_the_finetune_and_baseline_keys_never_pretraining():
    plain, pseudo = _keys(), _keys("finetune.pseudo_labels=3")
    recon = _keys("finetune.reconstruction_weight=0.5")
    vat = _keys("finetune.vat_weight=1")
    for other in (pseudo, recon, vat):
        assert [other[f"pretrain-{i}"] for i in range(2)] == [plain[f"pretrain-{i}"] for i in range(2)]
        assert other["head"] == plain["head"]
        assert other["finetune"] != plain["finetune"] and other["baseline"] != plain["baseline"]
        # the plain random-init net of a run with options is the baseline of the run without them
        assert other["baseline-plain"] == plain["baseline"]
    assert "baseline-plain" not in plain
    assert len({pseudo["finetune"], recon["finetune"], vat["finetune"]}) == 3
    assert _keys("finetune.vat_epsilon=1") == plain  # the radius only keys a run that uses it
    steps = _keys("finetune.steps_per_epoch=50")
    assert steps["finetune"] != plain["finetune"] and steps["baseline"] != plain["baseline"]
    assert steps["head"] == plain["head"]
    assert _keys("finetune.vat_weight=1", "finetune.vat_epsilon=1")["finetune"] != vat["finetune"]
    # the ramp and the unlabeled batch only key a run that uses them
    assert _keys("finetune.pseudo_labels_start=5") == plain
    assert _keys("finetune.unlabeled_batch_size=32") == plain
    assert _keys("finetune.pseudo_labels_targets=clean", "finetune.pseudo_labels_threshold=0.9") == plain
    clean = _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_targets=clean")
    assert clean["finetune"] != pseudo["finetune"]
    assert _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_targets=clean",
                 "finetune.pseudo_labels_threshold=0.9")["finetune"] != clean["finetune"]
    assert _keys(*_set(OPTIONS)) != _keys(*_set(OPTIONS), "finetune.pseudo_labels_end=4")
    # the teacher and alignment key only a run with pseudo-labels; the decay only a mean teacher's
    assert _keys("finetune.pseudo_labels_targets=mean_teacher", "finetune.pseudo_labels_alignment=true") == plain
    teacher = _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_targets=mean_teacher")
    aligned = _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_alignment=true")
    assert len({teacher["finetune"], aligned["finetune"], pseudo["finetune"], clean["finetune"]}) == 4
    assert _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_teacher_decay=0.9") == pseudo
    assert _keys("finetune.pseudo_labels=3", "finetune.pseudo_labels_targets=mean_teacher",
                 "finetune.pseudo_labels_teacher_decay=0.9")["finetune"] != teacher["finetune"]


def test_the_pseudo_label_weight_ramps_as_in_lee_2013():
    from aepipe.nn.semisupervised import ramp

    got = [float(ramp(np.float32(e), 3.0, 100, 600)) for e in (0, 99, 100, 350, 600, 900)]
    assert got == pytest.approx([0, 0, 0, 1.5, 3, 3])
    assert [float(ramp(np.float32(e), 2.0, 4, 4)) for e in (3, 4)] == [0, 2]


@pytest.fixture(scope="module")
def few_runs(tmp_path_factory):
    """The same few-label pipeline with both options, then without them, in one store."""
    art = tmp_path_factory.mktemp("few")
    with_options = run_json(art, *FEW, *OPTIONS)
    without = run_json(art, *FEW)
    return art, with_options, without


def _stage_dir(result, name) -> Path:
    return Path(next(s["path"] for s in result["stages"] if s["name"] == name))


@pytest.mark.slow
def test_options_change_the_fine_tune_and_share_pretraining(few_runs):
    art, with_options, without = few_runs
    assert statuses(with_options)["baseline-plain"] == "trained"
    got = statuses(without)
    assert got["pretrain-0"] == got["pretrain-1"] == got["head"] == "cached"
    assert got["finetune"] == "trained"
    assert got["baseline"] == "cached"  # it is the run with options' baseline-plain
    weights = [(_stage_dir(r, "finetune") / "model.weights.h5").read_bytes() for r in (with_options, without)]
    assert weights[0] != weights[1]
    history = json.loads((_stage_dir(with_options, "finetune") / "history.json").read_text())
    assert len(history["pseudo_label_loss"]) == 6 and all(v > 0 for v in history["pseudo_label_loss"])
    rec = history["reconstruction_loss"]
    assert rec[-1] < rec[0]  # the decoders keep learning the unlabeled inputs
    assert "vat_loss" in history and not any(history["vat_loss"])  # off
    assert "val_accuracy" in history and "val_pseudo_label_loss" not in history
    m = with_options["metrics"]
    assert {"baseline_test_accuracy", "plain_baseline_test_accuracy", "plain_comparison"} <= set(m)
    plain = json.loads((_stage_dir(with_options, "baseline-plain") / "manifest.json").read_text())
    assert m["plain_baseline_test_accuracy"] == plain["metrics"]["test_accuracy"]
    assert m["plain_baseline_test_accuracy"] != m["baseline_test_accuracy"]


def test_report_and_summary_name_all_three_nets(few_runs):
    _, with_options, _ = few_runs
    report = (Path(with_options["run_dir"]) / "report.md").read_text()
    assert "random init, fine-tuned on the labeled rows alone" in report


# batch 8: epochs long enough to kill one mid-stage; dropout: its RNG must come back too
PIPE = ("--set", "data.labels=150", "--set", "pretrain.epochs=3", "--set", "head.epochs=2",
        "--set", "finetune.epochs=6", "--set", "finetune.batch_size=8", "--set", "finetune.dropout=0.2",
        "--set", "finetune.steps_per_epoch=20",  # 17 batches of labeled rows: epochs cycle into a new shuffle
        "--set", "finetune.vat_weight=1",
        # the teacher's weights and the running mean of alignment must come back too
        "--set", "finetune.pseudo_labels_targets=mean_teacher", "--set", "finetune.pseudo_labels_alignment=true",
        "--set", "evaluate.baseline=false", "--set", "evaluate.tsne=false", *OPTIONS)


@pytest.fixture(scope="module")
def few_reference(tmp_path_factory):
    from clirun import file_tables

    art = tmp_path_factory.mktemp("few-reference")
    result = run_json(art, *PIPE)
    finetune = next(Path(s["path"]) for s in result["stages"] if s["name"] == "finetune")
    history = json.loads((finetune / "history.json").read_text())
    assert len(history["vat_loss"]) == 6 and all(v > 0 for v in history["vat_loss"])
    return {"dirs": {s["name"]: Path(s["path"]).name for s in result["stages"]}, "files": file_tables(art)}


@pytest.mark.slow
def test_sigkill_mid_semi_supervised_fine_tune_resumes_bit_identically(tmp_path, few_reference):
    from test_resume import kill_during, rerun_and_compare

    proc, _, _, reached = kill_during(tmp_path, few_reference["dirs"]["finetune"], 2, pipe=PIPE)
    assert proc.returncode == -signal.SIGKILL
    rerun_and_compare(tmp_path, few_reference, "finetune", reached, pipe=PIPE)


def _digits_few(n_labeled=200, seed=0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    y_semi = y.copy()
    rng = np.random.default_rng(seed)
    unlabeled = rng.permutation(len(y))[n_labeled:]
    y_semi[unlabeled] = -1
    return X, y, y_semi


def test_classifier_learns_from_rows_labeled_minus_one():
    from aepipe.estimators import StackedAutoencoderClassifier

    X, y, y_semi = _digits_few()
    kw = dict(layers=(32,), epochs=4, finetune_epochs=12, random_state=0, batch_size=32)
    plain = StackedAutoencoderClassifier(**kw).fit(X, y_semi)
    # pseudo-labels ramp in after 4 epochs, as Lee 2013 waits for a net worth copying: from epoch 0, a
    # net at chance teaches itself one class on some seeds (confirmation bias), whatever the code
    semi = StackedAutoencoderClassifier(**kw, pseudo_labels=1.0, pseudo_labels_ramp=(4, 12),
                                        reconstruction_weight=1.0).fit(X, y_semi)
    assert list(semi.classes_) == list(range(10))  # -1 is "unlabeled", not a class
    ft = semi.history_["finetune"]
    assert all(v > 0 for v in ft["pseudo_label_loss"]) and "reconstruction_loss" in ft
    vat = StackedAutoencoderClassifier(**kw, vat_weight=1.0).fit(X, y_semi)
    assert all(v > 0 for v in vat.history_["finetune"]["vat_loss"])
    assert not np.allclose(vat.predict_proba(X[:50]), plain.predict_proba(X[:50]))
    assert "pseudo_label_loss" not in plain.history_["finetune"]
    assert not np.allclose(semi.predict_proba(X[:50]), plain.predict_proba(X[:50]))
    assert semi.get_params()["pseudo_labels_ramp"] == (4, 12)
    assert semi.score(X, y) > 0.2  # a working classifier, not noise (10 classes)


@pytest.mark.parametrize("targets", ["dropout", "clean"])
def test_the_confidence_threshold_masks_unsure_pseudo_labels(targets):
    import keras

    from aepipe.nn.semisupervised import SemiSupervisedTrainer

    def trainer(threshold):
        keras.utils.set_random_seed(0)
        clf = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="encoder_0"),
                                keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax")])
        t = SemiSupervisedTrainer(clf, top="encoder_0", steps_per_epoch=1, pseudo_labels=2.0,
                                  pseudo_labels_start=0, pseudo_labels_end=0, pseudo_labels_targets=targets,
                                  pseudo_labels_threshold=threshold)
        t.compile(optimizer="adam")
        return t

    rng = np.random.default_rng(0)
    x, u, y = rng.normal(size=(4, 8)), rng.normal(size=(32, 8)), np.array([0, 1, 2, 0])
    data = ((x.astype("float32"), u.astype("float32")), y)
    masked = trainer(1.0).train_step(data)  # an untrained net is never fully sure: every row masked
    kept = trainer(0.0).train_step(data)
    assert float(masked["pseudo_label_loss"]) == 0.0
    assert float(kept["pseudo_label_loss"]) > 0.1
    assert float(kept["loss"]) > float(masked["loss"])  # the weighted pseudo-label term is in the loss


def test_the_virtual_adversarial_direction_changes_the_prediction_more_than_a_random_one():
    import keras
    from keras import ops

    from aepipe.nn.semisupervised import SemiSupervisedTrainer, _unit

    keras.utils.set_random_seed(0)
    clf = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="tanh", name="encoder_0"),
                            keras.layers.Dense(3, activation="softmax")])
    t = SemiSupervisedTrainer(clf, top="encoder_0", steps_per_epoch=1, vat_weight=1.0, vat_epsilon=0.5)
    x = ops.convert_to_tensor(np.random.default_rng(0).normal(size=(64, 8)).astype("float32") * 2)
    clean = clf(x)
    adversarial = float(t._vat_loss(x, clean))
    random_step = x + 0.5 * _unit(ops.convert_to_tensor(np.random.default_rng(1).normal(size=(64, 8)), "float32"))
    random = float(ops.mean(keras.losses.kl_divergence(clean, clf(random_step))))
    assert adversarial > 2 * random > 0


def test_vat_alone_trains_on_the_unlabeled_rows_and_its_probe_is_seeded():
    import keras

    from aepipe.nn.semisupervised import SemiSupervisedTrainer

    def step():
        keras.utils.set_random_seed(0)
        clf = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="encoder_0"),
                                keras.layers.Dense(3, activation="softmax")])
        t = SemiSupervisedTrainer(clf, top="encoder_0", steps_per_epoch=1, vat_weight=1.0)
        t.compile(optimizer="adam")
        rng = np.random.default_rng(0)
        data = ((rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=(32, 8)).astype("float32")),
                np.array([0, 1, 2, 0]))
        logs = t.train_step(data)
        return float(logs["vat_loss"]), float(logs["pseudo_label_loss"]), [w.numpy() for w in clf.weights]

    (vat, pseudo, weights), (vat2, _, weights2) = step(), step()
    assert vat > 0 and pseudo == 0.0
    assert vat == vat2 and all(np.array_equal(a, b) for a, b in zip(weights, weights2))


def _tiny_trainer(**options):
    import keras

    from aepipe.nn.semisupervised import SemiSupervisedTrainer

    keras.utils.set_random_seed(0)
    clf = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="encoder_0"),
                            keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax")])
    t = SemiSupervisedTrainer(clf, top="encoder_0", steps_per_epoch=1, pseudo_labels=2.0, pseudo_labels_start=0,
                              pseudo_labels_end=0, **options)
    t.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    data = ((rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=(32, 8)).astype("float32")),
            np.array([0, 1, 2, 0]))
    return t, clf, data


def test_the_mean_teacher_is_the_moving_average_of_the_weights_and_no_optimizer_moves_it():
    t, clf, data = _tiny_trainer(pseudo_labels_targets="mean_teacher", teacher_decay=0.75)
    start = [w.numpy() for w in clf.weights]
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(start, t.teacher.weights))  # starts as the net
    assert not any(v is w for v in t.trainable_variables for w in t.teacher.weights)
    t.train_step(data)
    after = [w.numpy() for w in clf.weights]
    assert not all(np.array_equal(a, b) for a, b in zip(start, after))
    for s0, s1, teacher in zip(start, after, t.teacher.weights):
        np.testing.assert_allclose(teacher.numpy(), 0.75 * s0 + 0.25 * s1, rtol=1e-5, atol=1e-7)
    frozen, clf2, data2 = _tiny_trainer(pseudo_labels_targets="mean_teacher", teacher_decay=1.0)
    first = [w.numpy() for w in frozen.teacher.weights]
    for _ in range(3):
        frozen.train_step(data2)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(first, frozen.teacher.weights))


def test_distribution_alignment_takes_rows_from_an_over_predicted_class():
    from keras import ops

    from aepipe.nn import semisupervised

    t, _, data = _tiny_trainer(pseudo_labels_targets="clean", alignment=True, class_prior=[2, 1, 1])
    np.testing.assert_allclose(t.mean_prediction.numpy(), [0.5, 0.25, 0.25])  # starts at the labeled prior
    t.mean_prediction.assign(np.array([0.5, 0.25, 0.25], "float32"))
    t.prior = ops.convert_to_tensor(np.full(3, 1 / 3, "float32"))  # say the classes are balanced after all
    source = np.array([[0.5, 0.45, 0.05], [0.9, 0.05, 0.05]], "float32")
    aligned = ops.convert_to_numpy(t._align(ops.convert_to_tensor(source)))
    m = semisupervised.ALIGNMENT_MOMENTUM
    expected_mean = m * np.array([0.5, 0.25, 0.25]) + (1 - m) * source.mean(axis=0)
    np.testing.assert_allclose(t.mean_prediction.numpy(), expected_mean, rtol=1e-6)
    np.testing.assert_allclose(aligned.sum(axis=1), 1, rtol=1e-6)
    assert aligned[0].argmax() == 1  # a close call goes to the class the net under-predicts
    assert aligned[1].argmax() == 0  # a sure one stays
    logs = t.train_step(data)
    assert float(logs["pseudo_label_loss"]) > 0
