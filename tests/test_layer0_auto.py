"""Layer 0's "auto" decoder and loss follow the data: sigmoid + binary cross-entropy
for training inputs in [0, 1], else a linear decoder + MSE (config.resolve_layer0),
for the CLI and the estimators alike; for data in [0, 1] nothing changes, not a key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aepipe import config
from aepipe.cli import main
from aepipe.config.parse import load_raw
from aepipe.engine.plan import Fingerprint, plan
from aepipe.engine.store import Store
from aepipe.errors import DataError
from aepipe.pipeline.runner import Runner

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
TINY = ["--set", "pretrain.epochs=1", "--set", "head.epochs=1", "--set", "finetune.epochs=1"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _standardized_npz(path: Path) -> Path:
    """A small labeled table, standardized as scikit-learn's StandardScaler does: negative values."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (80, 5)).astype(np.float32)
    y = np.arange(80) % 2
    x[y == 1] += 1.0
    mean, std = x[:60].mean(axis=0), x[:60].std(axis=0)
    x = (x - mean) / std
    assert x.min() < 0
    np.savez(path, x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    return path


def _pipeline(tmp_path: Path, extra: str = "") -> Path:
    data = _standardized_npz(tmp_path / "scaled.npz")
    p = tmp_path / "table.toml"
    p.write_text(f'[data]\nsource = "npz:{data}"\n\n[[layers]]\nunits = 4\n{extra}\n[[layers]]\nunits = 2\n')
    return p


def test_cli_run_on_standardized_data_reconstructs_linearly(tmp_path):
    pipeline, art = _pipeline(tmp_path), tmp_path / "art"
    r = _invoke("run", "-q", "--json", "--artifacts", art, pipeline, *TINY)
    assert r.exit_code == 0, (r.stderr, r.exception)
    result = json.loads(r.stdout)
    layers = json.loads((Path(result["run_dir"]) / "spec.json").read_text())["layers"]
    assert [(la["decoder_activation"], la["loss"]) for la in layers] == [("linear", "mse"), ("linear", "mse")]
    stage = next(s for s in result["stages"] if s["name"] == "pretrain-0")
    recorded = json.loads((Path(stage["path"]) / "manifest.json").read_text())["params"]["layer"]
    assert (recorded["decoder_activation"], recorded["loss"]) == ("linear", "mse")
    # the keys are those of the same pipeline with linear + mse written out
    explicit = config.load(pipeline, [*TINY[1::2], "layers.0.decoder_activation=linear", "layers.0.loss=mse"])
    assert {s.name: s.key for s in Runner(explicit, Store(art)).plan()} == \
        {s["name"]: s["key"] for s in result["stages"]}

    # status records the range beside the data's fingerprint (fingerprints.json), and then
    # reads it from there: the data file, garbled at the same size and mtime, is never read
    r = _invoke("status", "--json", "--artifacts", art, pipeline, *TINY)
    assert r.exit_code == 0, (r.stderr, r.exception)
    cache = json.loads((art / "fingerprints.json").read_text())
    assert [e["in_unit_range"] for e in cache.values()] == [False]
    data = tmp_path / "scaled.npz"
    st = data.stat()
    data.write_bytes(b"\0" * st.st_size)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = _invoke("status", "--json", "--artifacts", art, pipeline, *TINY)
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert {s["status"] for s in json.loads(r.stdout)["stages"]} == {"cached"}


def test_explicit_cross_entropy_on_standardized_data_fails_in_one_line(tmp_path):
    pipeline, art = _pipeline(tmp_path, 'loss = "binary_crossentropy"\n'), tmp_path / "art"
    r = _invoke("run", "-q", "--artifacts", art, pipeline, *TINY)
    assert r.exit_code == 1, (r.exit_code, r.stderr, r.exception)  # bad data: 1 (test_bad_input.py)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "pretrain-0" in err and "binary_crossentropy needs inputs in [0, 1]" in err, err
    assert not list((art / "stages").iterdir())  # no stage, not even a partial one
    assert not (art / "runs").exists() or not list((art / "runs").rglob("run.json"))


def _todays_keys(path: Path | None, fp: Fingerprint) -> dict:
    """The keys of a pipeline with layer 0 resolved by the rule that held before the data
    had a say: an "auto" decoder is sigmoid, an "auto" loss binary cross-entropy after
    sigmoid, else mse; written out as --set, so the parser has nothing left to resolve."""
    raw, _ = load_raw(path)
    first = {**raw.get("pretrain", {}), **(raw.get("layers") or [{}])[0]}
    dec = first.get("decoder_activation", "auto")
    dec = "sigmoid" if dec == "auto" else dec
    loss = first.get("loss", "auto")
    loss = ("binary_crossentropy" if dec == "sigmoid" else "mse") if loss == "auto" else loss
    spec = config.load(path, [f"layers.0.decoder_activation={dec}", f"layers.0.loss={loss}"])
    assert not spec.layer0_auto
    return {s.name: s.key for s in plan(spec, fp)}


@pytest.mark.parametrize("path", [None, *sorted(PIPELINES.glob("*.toml"))], ids=lambda p: p.stem if p else "built-in")
def test_keys_for_data_in_the_unit_range_are_unchanged(path):
    fp = Fingerprint("i" * 64, "l" * 64)
    spec = config.load(path)
    resolved = config.resolve_layer0(spec, lambda: True)
    assert resolved.to_dict() == spec.to_dict()
    assert {s.name: s.key for s in plan(resolved, fp)} == _todays_keys(path, fp)


def test_the_digits_pipeline_resolves_from_its_data_to_the_same_keys(tmp_path):
    runner = Runner(config.load(PIPELINES / "digits.toml"), Store(tmp_path / "art"))
    assert runner.inputs.in_unit_range is True
    assert (runner.spec.layers[0].decoder_activation, runner.spec.layers[0].loss) == ("sigmoid", "binary_crossentropy")
    assert {s.name: s.key for s in runner.plan()} == _todays_keys(PIPELINES / "digits.toml", runner.fingerprint)


def test_an_explicit_layer_0_never_reads_the_data(tmp_path):
    missing = f"data.source=npz:{tmp_path / 'absent.npz'}"
    explicit = config.load(None, [missing, "layers.0.decoder_activation=linear"])  # loss follows: mse
    assert not explicit.layer0_auto
    assert Runner(explicit, Store(tmp_path / "art")).spec.layers[0].loss == "mse"
    with pytest.raises(DataError, match="absent.npz"):  # "auto" needs the range, so the data
        Runner(config.load(None, [missing]), Store(tmp_path / "art")).spec


def test_out_of_range_resolution_keeps_the_unroll_mirror_and_explicit_fields():
    spec = config.loads('[[layers]]\nunits = 8\nactivation = "tanh"\n[[layers]]\nunits = 4\n[unroll]\nepochs = 2\n')
    assert spec.layer0_auto == ("decoder_activation", "loss")
    out = config.resolve_layer0(spec, lambda: False)
    assert [(la.decoder_activation, la.loss) for la in out.layers] == [("linear", "mse"), ("tanh", "mse")]
    assert out.unroll.loss == "auto"  # layer 0's, so mse
    assert config.resolve_layer0(out, lambda: 1 / 0) is out  # settled: never asks again
    kept = config.loads('[[layers]]\nloss = "mae"\n')  # an explicit loss stays; the decoder follows the data
    assert [(la.decoder_activation, la.loss) for la in config.resolve_layer0(kept, lambda: False).layers] == \
        [("linear", "mae")]
    assert [(la.decoder_activation, la.loss) for la in config.resolve_layer0(kept, lambda: True).layers] == \
        [("sigmoid", "mae")]
    sigmoid = config.loads('[[layers]]\ndecoder_activation = "sigmoid"\n')  # asked for: stays, and so BCE
    assert not sigmoid.layer0_auto and sigmoid.layers[0].loss == "binary_crossentropy"
    with pytest.raises(Exception, match="layer0_auto: unknown key"):  # internal: never read from TOML
        config.loads('layer0_auto = ["loss"]\n')


def test_estimator_keys_for_unit_range_x_are_unchanged():
    """The estimators leave an "auto" layer 0 to the same rule; for X in [0, 1] it gives
    the spec the explicit sigmoid + binary cross-entropy they wrote before."""
    from aepipe import AutoencoderTransformer

    X = np.random.RandomState(0).rand(30, 4)
    d = AutoencoderTransformer(layers=(3, 2), random_state=0)._spec_dict(X, 0)
    before = {**d, "layers": [{**d["layers"][0], "decoder_activation": "sigmoid", "loss": "binary_crossentropy"},
                              *d["layers"][1:]]}
    now = config.resolve_layer0(config.from_dict(d), lambda: True)
    assert config.canonical_json(now) == config.canonical_json(config.from_dict(before))
