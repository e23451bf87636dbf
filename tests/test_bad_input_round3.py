"""Bad inputs of the newer commands (issue 31), as a user hits them: a real
``aepipe`` process, one line on stderr naming what and where, the design's exit
code, and nothing written."""

from __future__ import annotations

import subprocess

import numpy as np
from clirun import AEPIPE, TINY, aepipe, assert_one_line_error, env, start


def test_tune_study_name_stays_inside_the_artifacts_directory(tmp_path):
    art = tmp_path / "art"
    for bad in ("../../escaped", "/tmp/abs", "a/b", ".hidden"):
        p = aepipe("tune", "--artifacts", art, "--study", bad, "--space", "layers.0.units=int:8:16", "-n", "1")
        assert_one_line_error(p, 2, "--study", repr(bad), "one path component")
    assert not art.exists() and not (tmp_path.parent / "escaped.db").exists()


def test_encode_refuses_a_missing_output_directory(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 64), np.float32))
    out = tmp_path / "no" / "such" / "codes.npy"
    p = aepipe("encode", "--artifacts", tmp_path / "art", tmp_path / "x.npy", "-o", out)
    assert_one_line_error(p, 2, "-o", str(out), "does not exist")
    assert not (tmp_path / "no").exists() and not (tmp_path / "art" / "stages").exists()


def _closed_stdout(*args, cwd=None) -> subprocess.CompletedProcess:
    """``aepipe ARGS | head -c 0``: the reader has gone before aepipe writes."""
    p = start(*args, cwd=cwd)
    p.stdout.close()
    _, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(args, p.returncode, "", err)


def test_a_closed_stdout_is_silent(tiny_run, tmp_path):
    art, result = tiny_run
    run = result["run_dir"]
    for args in (("status", "--artifacts", art, *TINY), ("runs", "--artifacts", art),
                 ("diff", "--artifacts", art, run, run)):
        p = _closed_stdout(*args)
        assert (p.returncode, p.stderr) == (141, ""), (args, p.returncode, p.stderr)


def test_status_without_a_store_says_so_and_creates_none(tmp_path):
    p = subprocess.run([AEPIPE, "status"], capture_output=True, text=True,
                       env=env(), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "no artifact store at 'artifacts'" in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_set_blames_the_key_typed(tmp_path):
    p = aepipe("status", "--artifacts", tmp_path, "--set", "pretrain.epochs=abc")
    err = assert_one_line_error(p, 2, "pretrain.epochs", "expected int", "'abc'")
    assert "layers.0" not in err
    p = aepipe("status", "--artifacts", tmp_path, "--set", "pretrain.noise.kind=gauss")
    assert_one_line_error(p, 2, "pretrain.noise.kind", "did you mean 'gaussian'")


def test_set_capitalised_boolean_hints_at_toml(tmp_path):
    p = aepipe("status", "--artifacts", tmp_path, "--set", "evaluate.tsne=False")
    assert_one_line_error(p, 2, "evaluate.tsne", "expected bool", "false")


def _mnist(tmp_path, value):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([AEPIPE, "run", "--artifacts", tmp_path / "art",
                           "--set", "data.source=mnist"], capture_output=True, text=True, timeout=300,
                          env={**env(), "AEPIPE_MNIST": str(value), "HOME": str(home)})


def test_aepipe_mnist_missing_names_the_variable_and_the_path(tmp_path):
    p = _mnist(tmp_path, tmp_path / "nope" / "mnist.npz")
    assert_one_line_error(p, 1, "AEPIPE_MNIST is set", str(tmp_path / "nope" / "mnist.npz"), "not a file")
    assert not (tmp_path / "art" / "stages").exists()


def test_aepipe_mnist_pointing_at_an_npy_file(tmp_path):
    np.save(tmp_path / "mnist.npy", np.zeros((3, 4)))
    p = _mnist(tmp_path, tmp_path / "mnist.npy")
    err = assert_one_line_error(p, 1, "AEPIPE_MNIST is set", "mnist.npy", "not an .npz archive")
    assert "TypeError" not in err
    p = aepipe("run", "--artifacts", tmp_path / "art", "--set", f"data.source=npz:{tmp_path / 'mnist.npy'}")
    assert_one_line_error(p, 1, "mnist.npy", "not an .npz archive")


def test_sweep_checks_every_grid_value_against_the_data_before_training(tmp_path):
    art = tmp_path / "art"
    p = aepipe("sweep", "--artifacts", art, *TINY, "--grid", "data.labels=20,3000")
    assert_one_line_error(p, 2, "--grid data.labels=3000", "3000 labeled examples", "1347")
    assert not (art / "stages").exists()  # the 20-label variant did not train first


def test_tsne_samples_below_the_classes_fails_before_training(tmp_path):
    art = tmp_path / "art"
    p = aepipe("run", "--artifacts", art, *TINY, "--set", "evaluate.tsne=true", "--set", "evaluate.tsne_samples=5")
    err = assert_one_line_error(p, 2, "evaluate.tsne_samples", "5 is fewer than the 10 classes")
    assert "ValueError" not in err and not (art / "stages").exists()
    p = aepipe("sweep", "--artifacts", art, *TINY, "--set", "evaluate.tsne=true",
               "--grid", "evaluate.tsne_samples=50,5")
    assert_one_line_error(p, 2, "--grid evaluate.tsne_samples=5", "fewer than the 10 classes")
    assert not (art / "stages").exists()
