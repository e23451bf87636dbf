"""The catalogue of bad inputs, and disk-full / permission-denied writes.

Each one: the design's exit code (2 spec or usage, 1 data or runtime), one
line on stderr naming what and where, no traceback, and no stage directory.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from clirun import TINY, aepipe, assert_one_line_error, file_tables

from aepipe.cli import main

RNG = np.random.default_rng(0)
X = RNG.random((40, 6)).astype(np.float32)
Y = np.arange(40) % 2


def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return f"data.source=npz:{path}"


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _cases(d: Path):
    """(id, CLI args, exit code, what the message must name)"""
    good = {"x_train": X, "y_train": Y, "x_test": X[:10], "y_test": Y[:10]}
    nan = X.copy()
    nan[7, 2] = np.nan
    inf = X.copy()
    inf[3, 0] = np.inf
    (d / "adir").mkdir()
    return [
        ("missing-file", [str(d / "nope.toml")], 2, ["nope.toml", "not found"]),
        ("unreadable-file", [str(d / "adir")], 2, ["adir", "cannot read pipeline file"]),
        ("toml-syntax", [_write(d / "syntax.toml", 'name = "x"\n[[layers]]\nunits 32\n')], 2,
         ["syntax.toml", "TOML syntax error", "line 3, column 7"]),
        ("unknown-key", [_write(d / "unknown.toml", '[[layers]]\nunits = 32\nactivaton = "relu"\n')], 2,
         ["unknown.toml", "layers.0.activaton", "did you mean 'activation'"]),
        ("unknown-table", [_write(d / "table.toml", '[fintune]\nepochs = 3\n')], 2,
         ["table.toml", "fintune", "did you mean 'finetune'"]),
        ("wrong-type", [_write(d / "type.toml", '[[layers]]\nunits = "big"\n')], 2,
         ["type.toml", "layers.0.units", "expected int", "'big'"]),
        ("units-0", [_write(d / "units.toml", '[[layers]]\nunits = 0\n')], 2,
         ["units.toml", "layers.0.units", "positive"]),
        ("validation-split-1", ["--set", "data.validation_split=1.0"], 2, ["data.validation_split", "[0, 1)"]),
        ("validation-split-negative", ["--set", "data.validation_split=-0.1"], 2, ["data.validation_split"]),
        ("epochs-0", ["--set", "finetune.epochs=0"], 2, ["finetune.epochs", "positive"]),
        ("bad-set", ["--set", "layers.5.units=3"], 2, ["layers.5", "2 layers"]),
        ("nan", ["--set", _npz(d / "nan.npz", **{**good, "x_train": nan})], 1,
         ["nan.npz", "x_train row 7", "NaN or inf"]),
        ("inf", ["--set", _npz(d / "inf.npz", **{**good, "x_test": inf[:10]})], 1,
         ["inf.npz", "x_test row 3", "NaN or inf"]),
        ("wrong-shape", ["--set", _npz(d / "shape.npz", **{**good, "x_test": X[:10, :5]})], 1,
         ["shape.npz", "(6,)", "(5,)"]),
        ("wrong-dtype", ["--set", _npz(d / "dtype.npz", **{**good, "x_train": np.array(["a"] * 40)})], 1,
         ["dtype.npz", "numeric"]),
        ("empty", ["--set", _npz(d / "empty.npz", **{**good, "x_test": X[:0], "y_test": Y[:0]})], 1,
         ["empty.npz", "test set is empty"]),
        ("labels-missing", ["--set", _npz(d / "nolabels.npz", **{k: v for k, v in good.items()
                                                                  if k != "y_train"})], 1,
         ["nolabels.npz", "y_train"]),
        ("labels-wrong-length", ["--set", _npz(d / "short.npz", **{**good, "y_train": Y[:30]})], 1,
         ["short.npz", "40 rows", "30 labels"]),
        ("ragged-csv", ["--set", f"data.source=csv:{_write(d / 'ragged.csv', 'a,b,label' + chr(10) + '1,2,0' + chr(10) + '3,4' + chr(10))}"],
         1, ["ragged.csv", "line 3", "2 fields", "header has 3"]),
        ("csv-no-label-column", ["--set", f"data.source=csv:{_write(d / 'nolabel.csv', 'a,b' + chr(10) + '1,2' + chr(10))}"],
         1, ["nolabel.csv", "label"]),
        ("data-file-garbage", ["--set", f"data.source=npz:{_write(d / 'garbage.npz', 'not a zip file')}"], 1,
         ["garbage.npz", "cannot read"]),
        ("data-file-missing", ["--set", f"data.source=npz:{d / 'absent.npz'}"], 1, ["absent.npz", "not found"]),
        # an "auto" layer 0 reconstructs such data with a linear decoder and MSE (test_layer0_auto.py);
        # binary cross-entropy, asked for, cannot
        ("outside-unit-range", ["--set", _npz(d / "range.npz", **{**good, "x_train": X * 3}),
                                "--set", "layers.0.loss=binary_crossentropy"], 1,
         ["pretrain-0", "binary_crossentropy", "[0, 1]", "2.9"]),
    ]




@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return {c[0]: c for c in _cases(tmp_path_factory.mktemp("inputs"))}


NAMES = ["missing-file", "unreadable-file", "toml-syntax", "unknown-key", "unknown-table", "wrong-type",
         "units-0", "validation-split-1", "validation-split-negative", "epochs-0", "bad-set", "nan", "inf",
         "wrong-shape", "wrong-dtype", "empty", "labels-missing", "labels-wrong-length", "ragged-csv",
         "csv-no-label-column", "data-file-garbage", "data-file-missing", "outside-unit-range"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(cases, tmp_path, name):
    _, args, code, needles = cases[name]
    art = tmp_path / "art"
    r = _invoke("run", "-q", "--artifacts", art, *TINY, *args)  # args last: they win
    assert r.exit_code == code, (r.exit_code, r.stderr, r.exception)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    stages = art / "stages"
    assert not stages.exists() or not list(stages.iterdir())  # no stage, not even a partial one


def test_case_list_is_complete(cases):
    assert sorted(cases) == sorted(NAMES)


def test_a_real_process_prints_one_line_and_no_traceback(cases, tmp_path):
    _, args, _, needles = cases["toml-syntax"]
    p = aepipe("run", "--artifacts", tmp_path / "art", *args)
    assert_one_line_error(p, 2, *needles)
    assert not (tmp_path / "art").exists()


def test_artifacts_dir_that_is_a_file(tmp_path):
    f = tmp_path / "artifacts"
    f.write_text("not a directory")
    r = _invoke("run", "--artifacts", f, *TINY)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: artifacts directory {str(f)!r} is a file, not a directory"
    assert f.read_text() == "not a directory"


# ---------------------------------------------------------------- write failures


@pytest.fixture(scope="module")
def built(tiny_run):
    return tiny_run[0]


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_disk_full_while_writing_a_stage(built, tmp_path, monkeypatch):
    """ENOSPC on the first checkpoint of a new fine-tune stage: exit 1, one line,
    the published stages untouched, nothing half-written left behind."""
    from aepipe.engine import atomic
    from aepipe.nn import checkpoint  # imported before patching: checkpoint binds the name at import

    art = _copy(built, tmp_path / "art")
    before = file_tables(art)
    real = atomic.atomic_write_bytes

    def full(path, data):
        if ".partial" in str(path) and "finetune-" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(atomic, "atomic_write_bytes", full)
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full)
    r = _invoke("run", "-q", "--artifacts", art, *TINY, "--set", "finetune.epochs=4")
    assert r.exit_code == 1, (r.stderr, r.exception)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: cannot build stage finetune-") and "No space left on device" in err
    assert file_tables(art) == before
    assert not list((art / "stages").glob("*.partial"))  # no checkpoint was written: nothing to resume


def test_permission_denied_when_publishing(built, tmp_path, monkeypatch):
    """EACCES on the publishing rename: exit 1, one line, published stages
    untouched, and the finished checkpoint kept so a rerun resumes."""
    art = _copy(built, tmp_path / "art")
    before = file_tables(art)
    real = os.replace

    def denied(src, dst, *a, **kw):
        if str(src).endswith(".partial"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", denied)
    r = _invoke("run", "-q", "--artifacts", art, *TINY, "--set", "head.epochs=3")
    assert r.exit_code == 1, (r.stderr, r.exception)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Permission denied" in err and "head-" in err, err
    assert file_tables(art) == before
    partial, = (art / "stages").glob("head-*.partial")
    assert json.loads((partial / "checkpoint" / "state.json").read_text())["epoch"] == 3
    monkeypatch.setattr(os, "replace", real)
    r = _invoke("run", "--artifacts", art, "--json", *TINY, "--set", "head.epochs=3")
    assert r.exit_code == 0, r.stderr
    assert "resumed from epoch 3" in r.stderr
    assert {s["name"]: s["status"] for s in json.loads(r.stdout)["stages"]}["head"] == "resumed"
