"""CLI artifacts as models: aepipe.load, `aepipe encode`, `aepipe export` to plain Keras."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import aepipe
from aepipe.data import sources as data_mod
from aepipe import config as spec_mod
from aepipe.cli import main
from aepipe.errors import StoreError
from conftest import FAST


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One small digits run shared by the tests here: artifacts dir, run dir, test split."""
    artifacts = tmp_path_factory.mktemp("export") / "artifacts"
    out = cli(artifacts, "run", *FAST, "--json", "-q")
    ds = data_mod.load(spec_mod.load(None).data)
    return artifacts, json.loads(out.stdout)["run_dir"], ds


def cli(artifacts, *args, expect=0):
    result = CliRunner().invoke(main, [*map(str, args), "--artifacts", str(artifacts)])
    assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def stage_dir(artifacts, prefix):
    (d,) = [p for p in (artifacts / "stages").iterdir() if p.name.startswith(prefix + "-")
            and not p.name.endswith(".partial")]
    return d


def test_load_run_dir_gives_the_classifier_the_run_evaluated(built):
    artifacts, run_dir, ds = built
    clf = aepipe.load(run_dir)
    assert type(clf).__name__ == "StackedAutoencoderClassifier"
    assert clf.n_features_in_ == 64 and list(clf.classes_) == list(range(10))
    metrics = json.loads((artifacts / "runs" / "digits").joinpath(run_dir.rsplit("/", 1)[1], "metrics.json")
                         .read_text())
    assert clf.score(ds.x_test, ds.classes[ds.y_test]) == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    assert clf.get_params()["layers"] == (48, 24) and clf.get_params()["random_state"] == 0


def test_load_stage_dirs(built):
    artifacts, _, ds = built
    assert type(aepipe.load(stage_dir(artifacts, "finetune"))).__name__ == "StackedAutoencoderClassifier"
    layers = {p: aepipe.load(p) for p in (artifacts / "stages").glob("pretrain-*")}
    assert sorted(len(est.spec_.layers) for est in layers.values()) == [1, 2]  # layer i: layers 0..i
    top, deepest = max(layers.items(), key=lambda item: len(item[1].spec_.layers))
    assert type(deepest).__name__ == "AutoencoderTransformer"
    assert [layer.units for layer in deepest.spec_.layers] == [48, 24]
    codes = np.load(top / "encodings" / "test.npy")
    np.testing.assert_array_equal(deepest.transform(ds.x_test), codes)  # the stage's own encodings
    with pytest.raises(StoreError, match="head stage"):
        aepipe.load(stage_dir(artifacts, "head"))
    with pytest.raises(StoreError, match="neither an aepipe run directory"):
        aepipe.load(artifacts)


def test_load_refuses_a_corrupt_stage(built, tmp_path):
    import shutil

    artifacts, _, _ = built
    copy = tmp_path / "artifacts"
    shutil.copytree(artifacts / "stages", copy / "stages")
    finetune = stage_dir(copy, "finetune")
    weights = finetune / "model.weights.h5"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match="does not match its sha256"):
        aepipe.load(finetune)


def test_encode_cli_writes_what_transform_gives(built, tmp_path):
    artifacts, _, ds = built
    x = tmp_path / "x.npy"
    np.save(x, ds.x_test)
    out = tmp_path / "codes.npy"
    result = cli(artifacts, "encode", *FAST, "--json", "-q", "-o", out, "-p", spec_path(tmp_path), x)
    assert json.loads(result.stdout)["shape"] == [len(ds.x_test), 24]
    transformer = top_transformer(artifacts)
    np.testing.assert_array_equal(np.load(out), transformer.transform(ds.x_test.astype(np.float32)))

    csv = tmp_path / "x.csv"
    csv.write_text(",".join(f"p{i}" for i in range(64)) + ",label\n"
                   + "\n".join(",".join(map(repr, map(float, row))) + ",3" for row in ds.x_test[:5]))
    cli(artifacts, "encode", *FAST, "-q", "-o", tmp_path / "c.npy", "--pipeline", spec_path(tmp_path), csv)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.load(out)[:5])


def test_encode_without_pipeline_uses_the_built_in_one(built, tmp_path):
    artifacts, _, ds = built
    x = tmp_path / "x.npy"
    np.save(x, ds.x_test[:7])
    cli(artifacts, "encode", *FAST, "-q", "-o", tmp_path / "lone.npy", x)  # no -p: the built-in pipeline
    cli(artifacts, "encode", *FAST, "-q", "-o", tmp_path / "both.npy", "-p", spec_path(tmp_path), x)
    np.testing.assert_array_equal(np.load(tmp_path / "lone.npy"), np.load(tmp_path / "both.npy"))
    assert "Missing argument 'INPUT'" in cli(artifacts, "encode", "-o", tmp_path / "o.npy", expect=2).stderr
    assert "Missing argument 'INPUT'" in cli(artifacts, "encode", "-o", tmp_path / "o.npy", "-p",
                                             spec_path(tmp_path), expect=2).stderr
    missing = cli(artifacts, "encode", "-o", tmp_path / "o.npy", tmp_path / "nope.npy", expect=2).stderr
    assert "nope.npy" in missing and "does not exist" in missing


def test_encode_bad_input_is_one_line(built, tmp_path):
    artifacts, _, ds = built
    x = tmp_path / "narrow.npy"
    np.save(x, ds.x_test[:, :10])
    result = cli(artifacts, "encode", *FAST, "-q", "-o", tmp_path / "o.npy", "-p", spec_path(tmp_path), x,
                 expect=1)
    assert "X has 10 features, but AutoencoderTransformer is expecting 64" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.npy").exists()


def top_transformer(artifacts):
    """aepipe.load of the top pretrain stage: the transformer of the whole stack."""
    return max((aepipe.load(p) for p in (artifacts / "stages").glob("pretrain-*")),
               key=lambda est: len(est.spec_.layers))


def spec_path(tmp_path):
    """The built-in digits pipeline as a file (PIPELINE comes before INPUT)."""
    p = tmp_path / "digits.toml"
    p.write_text(spec_mod.DEFAULT_PIPELINE_TOML)
    return p


# Plain Keras in a fresh process: aepipe is never imported there.
PLAIN_KERAS = textwrap.dedent("""
    import sys, numpy as np, keras
    model = keras.saving.load_model(sys.argv[1])          # safe_mode=True is the default
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], np.asarray(model(x, training=False)))
    np.save(sys.argv[3].replace(".npy", "-predict.npy"), model.predict(x, verbose=0))
    assert not any(m.startswith("aepipe") for m in sys.modules), "aepipe was imported"
""")


@pytest.mark.parametrize("encoder", [False, True], ids=["classifier", "encoder"])
def test_exported_model_predicts_in_plain_keras_what_aepipe_predicts(built, tmp_path, encoder):
    artifacts, run_dir, ds = built
    model_path = tmp_path / "model.keras"
    args = ["--encoder"] if encoder else []
    out = json.loads(cli(artifacts, "export", *FAST, *args, "-o", model_path, "--json", "-q").stdout)
    assert model_path.is_file() and out["model"] == ("encoder" if encoder else "classifier")

    x = ds.x_test.astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_KERAS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(script), str(model_path), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs, theirs_predict = np.load(tmp_path / "y.npy"), np.load(tmp_path / "y-predict.npy")

    if encoder:
        est = top_transformer(artifacts)
        ours = est.transform(x)
    else:
        est = aepipe.load(run_dir)
        ours = est.predict_proba(x).astype(np.float32)
        assert out["classes"] == est.classes_.tolist()
        np.testing.assert_array_equal(theirs_predict.argmax(1), est.predict(x))
        np.testing.assert_array_equal(theirs.argmax(1), est.predict(x))
    # to float32 rounding, as export's help promises: aepipe computes in fixed 256-row blocks (a row's
    # result is independent of its neighbours), plain Keras on the batch it is given
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theirs_predict, ours, rtol=1e-5, atol=1e-6)


def test_export_refuses_a_non_keras_suffix(built, tmp_path):
    artifacts, _, _ = built
    result = cli(artifacts, "export", *FAST, "-o", tmp_path / "model.h5", expect=2)
    assert "must end in .keras" in result.stderr


@pytest.mark.parametrize("command", ["encode", "export"])
def test_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "PIPELINE" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["joint", "layer_matching"])
def test_load_works_for_deep_pretraining_modes(mode, tmp_path):
    artifacts = tmp_path / "artifacts"
    out = json.loads(cli(artifacts, "run", *FAST, "--set", f"pretrain.mode={mode}", "--json", "-q").stdout)
    ds = data_mod.load(spec_mod.load(None).data)
    clf = aepipe.load(out["run_dir"])
    assert clf.spec_.pretrain.mode == mode
    assert clf.score(ds.x_test, ds.classes[ds.y_test]) == pytest.approx(out["metrics"]["test_accuracy"], abs=1e-12)
    paths = {s["name"]: s["path"] for s in out["stages"]}
    assert type(aepipe.load(paths["finetune"])).__name__ == "StackedAutoencoderClassifier"
    top = aepipe.load(paths["pretrain-1"])
    np.testing.assert_array_equal(top.transform(ds.x_test), np.load(f"{paths['pretrain-1']}/encodings/test.npy"))


@pytest.mark.slow
def test_clone_of_a_loaded_run_trains_the_same_recipe(tmp_path):
    from sklearn.base import clone

    artifacts = tmp_path / "artifacts"
    options = ["--set", "finetune.batch_norm=true", "--set", "finetune.noise=0.1", "--set", "finetune.dropout=0.2",
               "--set", "finetune.schedule=cosine", "--set", "finetune.max_norm=3.0"]
    out = json.loads(cli(artifacts, "run", *FAST, *options, "--json", "-q").stdout)
    loaded = aepipe.load(out["run_dir"])
    twin = clone(loaded)
    assert twin.get_params()["pipeline"] == loaded.get_params()["pipeline"]
    ds = data_mod.load(spec_mod.load(None).data)
    twin.fit(ds.x_train, ds.classes[ds.y_train])
    for section in ("finetune", "head", "pretrain", "layers"):
        assert getattr(twin.spec_, section) == getattr(loaded.spec_, section), section
    assert twin.spec_.finetune.batch_norm and len(twin.batch_norm_weights_) == 2
    with pytest.raises(ValueError, match=r"layers=\(8,\) conflicts with the pipeline, which gives \(48, 24\)"):
        clone(loaded).set_params(layers=(8,)).fit(ds.x_train, ds.classes[ds.y_train])
