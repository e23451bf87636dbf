"""Data sources and the checks every source goes through."""

import numpy as np
import pytest

from aepipe.data import fingerprint as fingerprints
from aepipe.data import sources as data
from aepipe.errors import DataError
from aepipe.config import DataSpec


def test_digits_is_scaled_and_stratified():
    ds = data.load(DataSpec())
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape[1] == 64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert len(ds.x_test) == 450 and ds.n_classes == 10
    counts = np.bincount(ds.y_test)
    assert counts.max() - counts.min() <= 3  # stratified
    assert ds.fingerprint == data.load(DataSpec()).fingerprint  # fixed split


def test_npz_uint8_images_are_flattened_and_scaled(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "m.npz"
    np.savez(p, x_train=rng.integers(0, 256, (20, 4, 4), dtype=np.uint8), y_train=np.arange(20) % 3,
             x_test=rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), y_test=np.arange(6) % 3)
    ds = data.load(DataSpec(source=f"npz:{p}"))
    assert ds.x_train.shape == (20, 16) and ds.x_train.max() <= 1.0


def test_csv_with_string_labels(tmp_path):
    p = tmp_path / "d.csv"
    rows = ["a,b,label"] + [f"{i / 40},{(i % 5) / 5},{'cat' if i % 2 else 'dog'}" for i in range(40)]
    p.write_text("\n".join(rows))
    ds = data.load(DataSpec(source=f"csv:{p}"))
    assert list(ds.classes) == ["cat", "dog"] and ds.x_train.shape[1] == 2


def test_ragged_csv_names_the_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,x\n1,x\n")
    with pytest.raises(DataError, match="line 3: 2 fields, header has 3"):
        data.load(DataSpec(source=f"csv:{p}"))


def test_label_mismatch_and_single_class(tmp_path):
    p = tmp_path / "d.npz"
    x = np.zeros((10, 3), np.float32)
    np.savez(p, x_train=x, y_train=np.zeros(9), x_test=x, y_test=np.zeros(10))
    with pytest.raises(DataError, match="x_train has 10 rows but y_train has 9 labels"):
        data.load(DataSpec(source=f"npz:{p}"))
    np.savez(p, x_train=x, y_train=np.zeros(10), x_test=x, y_test=np.zeros(10))
    with pytest.raises(DataError, match="need at least 2"):
        data.load(DataSpec(source=f"npz:{p}"))


def test_unit_range_check_for_bce():
    with pytest.raises(DataError, match=r"binary_crossentropy needs inputs in \[0, 1\]"):
        data.check_unit_range(np.array([[0.0, 2.0]]), "layer 0")


def test_fingerprint_cache_by_size_and_mtime(tmp_path):
    p = tmp_path / "m.npz"
    x = np.random.default_rng(0).random((12, 3)).astype(np.float32)
    np.savez(p, x_train=x, y_train=np.arange(12) % 2, x_test=x, y_test=np.arange(12) % 2)
    spec = DataSpec(source=f"npz:{p}")
    cache = tmp_path / "fp.json"
    assert fingerprints.cached_fingerprint(spec, cache) is None
    fp = data.load(spec).fingerprint
    fingerprints.remember_fingerprint(spec, cache, fp)
    assert fingerprints.cached_fingerprint(spec, cache) == fp
    np.savez(p, x_train=x + 0.1, y_train=np.arange(12) % 2, x_test=x, y_test=np.arange(12) % 2)
    assert fingerprints.cached_fingerprint(spec, cache) is None  # the file changed


def _fake_mnist(path):
    """A tiny archive shaped as keras.datasets.mnist's mnist.npz (uint8 28x28 images, 10 classes)."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), y_train=np.arange(30) % 10,
             x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10))


def test_mnist_is_found_in_keras_home(tmp_path, monkeypatch):
    """KERAS_HOME is Keras' own setting for its cache: a copy there is found with nothing else set."""
    monkeypatch.delenv("AEPIPE_MNIST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    _fake_mnist(tmp_path / "kh" / "datasets" / "mnist.npz")
    assert data.resolve_mnist(DataSpec(source="mnist")) == tmp_path / "kh" / "datasets" / "mnist.npz"
    assert data.load(DataSpec(source="mnist")).x_train.shape == (30, 784)


def test_mnist_lookup_order_and_the_error_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.delenv("AEPIPE_MNIST", raising=False)
    with pytest.raises(DataError) as e:
        data.resolve_mnist(DataSpec(source="mnist"))
    msg = str(e.value)
    assert "\n" not in msg
    for place in ("data.path (not set)", "AEPIPE_MNIST (not set)", "$KERAS_HOME/datasets/mnist.npz",
                  str(tmp_path / "kh" / "datasets" / "mnist.npz"), "aepipe data mnist"):
        assert place in msg
    monkeypatch.delenv("KERAS_HOME")  # then Keras' default cache under HOME
    _fake_mnist(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz")
    assert data.resolve_mnist(DataSpec(source="mnist")) == tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
    _fake_mnist(tmp_path / "env.npz")  # AEPIPE_MNIST before Keras' cache, data.path before both
    monkeypatch.setenv("AEPIPE_MNIST", str(tmp_path / "env.npz"))
    assert data.resolve_mnist(DataSpec(source="mnist")) == tmp_path / "env.npz"
    _fake_mnist(tmp_path / "spec.npz")
    assert data.resolve_mnist(DataSpec(source="mnist", path=str(tmp_path / "spec.npz"))) == tmp_path / "spec.npz"


def test_data_mnist_command_reports_a_copy_already_in_keras_cache(tmp_path):
    """The command's download path needs the internet and is never run by tests; its cached path is."""
    import os
    import subprocess
    import sys

    _fake_mnist(tmp_path / "kh" / "datasets" / "mnist.npz")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "kh")}
    p = subprocess.run([sys.executable, "-m", "aepipe.cli", "data", "mnist"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert str(tmp_path / "kh" / "datasets" / "mnist.npz") in p.stdout and "already" in p.stdout
    assert "tensorflow" not in p.stderr.lower()
