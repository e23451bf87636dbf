"""The unroll stage (Hinton & Salakhutdinov 2006): the greedy stack unrolled into
one deep autoencoder, fine-tuned on reconstruction, and what reads it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from clirun import file_tables, run_json, statuses

from aepipe.config.parse import loads
from aepipe.engine.store import Store
from aepipe.pipeline.runner import Runner

UNROLL = """
[pretrain]
epochs = 4
optimizer = "adam"
[[layers]]
units = 32
[[layers]]
units = 8
activation = "linear"
[unroll]
epochs = 8
optimizer = "adam"
[head]
epochs = 1
[finetune]
epochs = 1
"""


@pytest.fixture(scope="module")
def unrolled(tmp_path_factory):
    art = tmp_path_factory.mktemp("unroll")
    result = Runner(loads(UNROLL), Store(art)).run("evaluate")
    return art, result, {s.name: Path(s.path) for s in result.stages}


def test_unroll_changes_every_layer_and_lowers_the_deep_reconstruction_error(unrolled):
    _, result, dirs = unrolled
    assert [s.name for s in result.stages] == ["pretrain-0", "pretrain-1", "unroll", "unroll-baseline", "head",
                                               "finetune", "evaluate"]
    for i in range(2):
        greedy = (dirs[f"pretrain-{i}"] / "encoder.weights.h5").read_bytes()
        assert (dirs["unroll"] / f"layers/{i}/encoder.weights.h5").read_bytes() != greedy
    r = result.metrics["reconstruction"]
    assert r["code_size"] == 8 and r["pca_components"] == 8
    assert r["unroll"] < r["greedy"]  # the end-to-end fine-tuning pays
    assert 0 < r["pca"] < r["greedy"] * 10
    # the unit: squared error summed over the 64 values of a digit, averaged over examples
    mse = json.loads((dirs["unroll"] / "manifest.json").read_text())["metrics"]["reconstruction_mse"]
    assert r["unroll"] == pytest.approx(64 * mse)


def test_pca_error_is_the_squared_error_per_example():
    from aepipe.analysis.metrics import pca_reconstruction

    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 20))
    x = rng.normal(size=(500, 3)) @ basis
    noise = rng.normal(scale=0.1, size=(200, 20))
    out = pca_reconstruction(x[:300], x[300:] + noise, 3)
    # rank-3 data: PCA-3 keeps the signal, so the error is the noise off the 3-D subspace, summed over values
    assert out["squared_error_per_example"] == pytest.approx(0.01 * 17, rel=0.15)
    assert pca_reconstruction(x[:300], x[300:], 3)["squared_error_per_example"] < 1e-8
    assert out["test_projection"].shape == (200, 2)


def test_the_random_init_twin_keys_on_the_network_not_on_pretraining(unrolled):
    art, result, _ = unrolled
    spec = loads(UNROLL, overrides=["pretrain.epochs=3"])
    plan = {s.name: s.key for s in Runner(spec, Store(art)).plan()}
    before = {s.name: s.key for s in result.stages}
    assert plan["unroll-baseline"] == before["unroll-baseline"]
    assert plan["unroll"] != before["unroll"]
    # the classifier's start is a graph choice: unroll itself keeps its key
    spec = loads(UNROLL, overrides=["unroll.classifier=true"])
    plan = {s.name: s for s in Runner(spec, Store(art)).plan()}
    assert plan["unroll"].key == before["unroll"]
    assert plan["head"].upstream == ("unroll",) and "unroll" in plan["finetune"].upstream
    assert plan["head"].key != before["head"]
    # t-SNE reads the unrolled codes; without unroll, the top greedy layer's
    spec = loads(UNROLL, overrides=["evaluate.tsne=true"])
    assert {s.name: s for s in Runner(spec, Store(art)).plan()}["tsne"].upstream == ("unroll",)
    spec = loads(UNROLL, overrides=["evaluate.tsne=true", "unroll.epochs=0"])
    plan = {s.name: s for s in Runner(spec, Store(art)).plan()}
    assert plan["tsne"].upstream == ("pretrain-1",) and "unroll" not in plan


def test_unroll_and_its_twin_share_seed_and_data_order(unrolled):
    art, _, _ = unrolled
    stages = {s.name: s for s in Runner(loads(UNROLL), Store(art)).plan()}
    assert stages["unroll"].seed == stages["unroll-baseline"].seed
    assert stages["unroll"].seed != stages["pretrain-0"].seed


def _unrolled_encoder(spec, unroll_dir: Path):
    import keras

    from aepipe.engine.store import Stage
    from aepipe.stages.context import pretrained_blocks

    blocks = pretrained_blocks(spec, (64,), {"unroll": Stage(unroll_dir, {})}, unrolled=True)
    return keras.Sequential([keras.Input((64,)), *[b.encoder for b in blocks]])


def test_transformer_encode_and_export_use_the_unrolled_encoder(unrolled, tmp_path, aepipe, artifacts):
    from sklearn.datasets import load_digits

    from aepipe import AutoencoderTransformer, load

    art, result, dirs = unrolled
    x = (load_digits().data[:50] / 16).astype(np.float32)
    want = np.asarray(_unrolled_encoder(loads(UNROLL), dirs["unroll"])(x))
    greedy = load(dirs["pretrain-1"])  # the greedy stack's stage: its own encoders
    assert not np.allclose(greedy.transform(x), want, atol=1e-3)
    transformer = load(dirs["unroll"])  # the unroll stage: the unrolled encoders
    assert isinstance(transformer, AutoencoderTransformer)
    assert transformer.spec_.unroll.epochs == 8
    assert np.allclose(transformer.transform(x), want, atol=1e-6)

    pipe = tmp_path / "unroll.toml"
    pipe.write_text(UNROLL)
    np.save(tmp_path / "x.npy", x)
    import shutil

    shutil.copytree(art, artifacts, dirs_exist_ok=True)
    aepipe("encode", tmp_path / "x.npy", "-o", tmp_path / "codes.npy", "-p", pipe)
    assert np.allclose(np.load(tmp_path / "codes.npy"), want, atol=1e-6)
    aepipe("export", pipe, "--encoder", "-o", tmp_path / "encoder.keras")
    import keras

    exported = keras.saving.load_model(tmp_path / "encoder.keras")
    assert np.allclose(np.asarray(exported(x)), want, atol=1e-6)


def test_transformer_unroll_epochs_fits_the_unrolled_stack():
    import warnings

    from sklearn.datasets import load_digits

    from aepipe import AutoencoderTransformer

    x = load_digits().data / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        greedy = AutoencoderTransformer(layers=(32, 8), epochs=4, unroll_epochs=0, random_state=0).fit(x)
        deep = AutoencoderTransformer(layers=(32, 8), epochs=4, unroll_epochs=8, random_state=0).fit(x)
    assert deep.n_iters_["unroll"] == 8 and deep.n_iter_ == 8
    assert deep.score(x) > greedy.score(x)  # score: minus the reconstruction MSE
    assert not np.allclose(deep.transform(x), greedy.transform(x))


def test_variational_layers_refuse_unroll(aepipe):
    r = aepipe("status", "--set", "layers.0.kind=variational", "--set", "unroll.epochs=3", expect=2)
    assert "unroll.epochs" in r.stderr and "variational" in r.stderr


def test_a_linear_code_layer_is_expressible():
    spec = loads(UNROLL)
    assert spec.layers[1].activation == "linear"


def test_unrolled_decoders_mirror_the_encoder():
    """Linear decoders above layer 0 would unroll into one affine map after the code."""
    assert loads(UNROLL).layers[1].decoder_activation == "relu"  # layer 0's activation
    assert loads(UNROLL, overrides=["layers.0.activation=tanh"]).layers[1].decoder_activation == "tanh"
    assert loads(UNROLL, overrides=["unroll.epochs=0"]).layers[1].decoder_activation == "linear"
    kept = loads(UNROLL, overrides=["layers.1.decoder_activation=linear"])
    assert kept.layers[1].decoder_activation == "linear" and kept.layers[0].decoder_activation == "sigmoid"


def test_warmup_climbs_to_the_rate_then_the_cosine_decays():
    import keras

    from aepipe.nn.train import make_optimizer

    def rate(opt, step):  # the schedule as the optimizer saves it (what a resumed run rebuilds)
        return float(keras.optimizers.schedules.deserialize(opt.get_config()["learning_rate"])(step))

    opt = make_optimizer("adam", 0.01, decay_steps=10, warmup_steps=5)
    assert rate(opt, 0) == 0 and rate(opt, 2) == pytest.approx(0.004)
    assert rate(opt, 5) == pytest.approx(0.01) and rate(opt, 10) == pytest.approx(0.005)
    assert rate(opt, 15) == pytest.approx(0, abs=1e-9)
    flat = make_optimizer("adam", 0.01, warmup_steps=4)  # constant schedule: stays at the rate
    assert rate(flat, 2) == pytest.approx(0.005) and rate(flat, 4) == rate(flat, 400) == pytest.approx(0.01)


def test_weight_decay_shrinks_the_weights_and_keys_the_unroll(tmp_path):
    import keras

    from aepipe.nn.train import make_optimizer

    opt = make_optimizer("adam", 0.1, weight_decay=0.5)
    w = keras.Variable(np.ones(3, dtype=np.float32))
    opt.apply_gradients([(np.zeros(3, dtype=np.float32), w)])  # no gradient: only the decay moves it
    assert np.allclose(np.asarray(w), 1 - 0.1 * 0.5)
    assert make_optimizer("adam").weight_decay is None and make_optimizer("adamw").weight_decay == 0.004
    keys = [{s.name: s.key for s in Runner(loads(UNROLL, overrides=o), Store(tmp_path)).plan()}
            for o in ([], ["unroll.weight_decay=0.01"])]
    assert keys[0]["unroll"] != keys[1]["unroll"] and keys[0]["unroll-baseline"] != keys[1]["unroll-baseline"]
    assert keys[0]["pretrain-1"] == keys[1]["pretrain-1"]


def test_a_warmup_as_long_as_the_unroll_is_an_error(aepipe):
    r = aepipe("status", "--set", "unroll.epochs=3", "--set", "unroll.warmup=3", expect=2)
    assert "unroll.warmup" in r.stderr and r.stderr.count("\n") == 1


def test_input_noise_trains_a_different_net_that_encodes_deterministically(unrolled):
    art, result, dirs = unrolled
    before = {s.name: s.key for s in result.stages}
    spec = loads(UNROLL, overrides=["unroll.input_noise=0.2"])
    noisy = Runner(spec, Store(art)).run("pretrain")  # the pretrain phase runs unroll and its twin too
    stages = {s.name: s for s in noisy.stages}
    assert stages["pretrain-1"].key == before["pretrain-1"] and stages["pretrain-1"].status == "cached"
    assert stages["unroll"].key != before["unroll"]
    path = Path(stages["unroll"].path)
    assert (path / "layers/0/encoder.weights.h5").read_bytes() != (
        dirs["unroll"] / "layers/0/encoder.weights.h5").read_bytes()
    # the noise is a training-time layer: the saved blocks encode without it, the same codes every time
    from sklearn.datasets import load_digits

    from aepipe import load

    x = (load_digits().data[:50] / 16).astype(np.float32)
    encoder = _unrolled_encoder(spec, path)
    codes = load(path).transform(x)
    assert np.allclose(codes, np.asarray(encoder(x)), atol=1e-6) and np.array_equal(codes, load(path).transform(x))
    assert not [layer.name for layer in encoder.layers if "noise" in layer.name]


UNROLL_PIPE = ("--set", "pretrain.epochs=2", "--set", "unroll.epochs=6", "--set", "unroll.batch_size=8",
               "--set", "unroll.optimizer=adam", "--set", "unroll.warmup=2", "--set", "unroll.schedule=cosine",
               "--set", "unroll.input_noise=0.1", "--set", "unroll.weight_decay=0.01", "--set", "head.epochs=1",
               "--set", "finetune.epochs=1", "--set", "evaluate.tsne=false", "--set", "unroll.baseline=true")  # schedule, noise, decay resume too


@pytest.fixture(scope="module")
def unroll_reference(tmp_path_factory):
    art = tmp_path_factory.mktemp("unroll-reference")
    ref = run_json(art, *UNROLL_PIPE)
    assert set(statuses(ref).values()) == {"trained"}
    return {"files": file_tables(art), "dirs": {s["name"]: Path(s["path"]).name for s in ref["stages"]}}


@pytest.mark.parametrize("stage", ["unroll", pytest.param("unroll-baseline", marks=pytest.mark.slow)])
def test_sigkill_mid_unroll_resumes_bit_identically(tmp_path, unroll_reference, stage):
    from test_resume import kill_during, rerun_and_compare

    proc, _, _, reached = kill_during(tmp_path, unroll_reference["dirs"][stage], 2, pipe=UNROLL_PIPE)
    assert proc.returncode == -signal.SIGKILL
    assert reached >= 2
    rerun_and_compare(tmp_path, unroll_reference, stage, reached, pipe=UNROLL_PIPE)


def test_the_2d_pipeline_draws_its_code_next_to_pca(aepipe):
    """mnist-hinton2006-2d.toml on digits, tiny budgets: the paper's Figure 3 in the run."""
    pipe = Path(__file__).parent.parent / "pipelines" / "mnist-hinton2006-2d.toml"
    r = aepipe("run", pipe, "--json", "-q", "--set", "data.source=digits", "--set", "pretrain.epochs=1",
               "--set", "unroll.epochs=3", "--set", "head.epochs=1", "--set", "finetune.epochs=1")
    out = json.loads(r.stdout)
    rec = out["metrics"]["reconstruction"]
    assert rec["code_size"] == 2 and rec["pca_components"] == 2 and "unroll" in rec
    assert "unroll_random_init" not in rec  # unroll.baseline = false in that pipeline
    png = Path(out["run_dir"]) / "code_scatter.png"
    assert png.stat().st_size > 10_000
    assert "code_scatter.png" in (Path(out["run_dir"]) / "report.md").read_text()


def test_an_unroll_runs_reconstructions_show_the_unrolled_autoencoder(unrolled, tmp_path):
    """reconstructions.png's last row is the unrolled autoencoder, not the greedy stack alone (issue 31)."""
    import json

    from aepipe.analysis.plots import _evaluate_plots
    from aepipe.engine.store import Stage

    _, _, paths = unrolled
    with np.load(paths["evaluate"] / "reconstructions.npz") as f:
        originals, unrolled_rows, deepest = f["originals"], f["unrolled"], f[f"depth_{len(f.files) - 3}"]
    assert unrolled_rows.shape == originals.shape
    assert np.mean((unrolled_rows - originals) ** 2) < np.mean((deepest - originals) ** 2)  # unroll helped
    ev = Stage(paths["evaluate"], json.loads((paths["evaluate"] / "manifest.json").read_text()))
    assert "reconstructions.png" in [p.name for p in _evaluate_plots(tmp_path, ev)]
