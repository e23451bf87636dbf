"""Data sets: the embedded digits default, MNIST from a path, and user files.

Every source ends as float32 arrays with a fixed train/test split, checked for
NaN/inf, shape and label problems before any stage directory is created, and
a fingerprint (sha256 of the arrays) that goes into every stage key.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config.spec import DataSpec
from ..engine.plan import Fingerprint
from ..errors import DataError
from . import feed

@dataclass
class Dataset:
    """Arrays ready for training, plus what identifies them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray  # class indices; -1 marks an unlabeled row (scikit-learn's convention)
    x_test: np.ndarray
    y_test: np.ndarray
    fingerprint: Fingerprint | None = None
    classes: np.ndarray = field(default=None)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load(spec: DataSpec, cache_dir: Path | None = None) -> Dataset:
    """Load and check the data a pipeline names."""
    from .fingerprint import fingerprint

    source = spec.source
    kind, _, arg = source.partition(":")
    if kind == "digits":
        ds = _digits(spec)
    elif kind == "mnist":
        ds = _npz(resolve_mnist(spec), "mnist")
    elif kind == "sequences":
        ds = _sequences(spec)
    elif kind == "npz":
        ds = _npz(Path(arg).expanduser(), source)
    elif kind == "npy":
        ds = _npy(Path(arg).expanduser(), spec, source)
    elif kind == "csv":
        ds = _csv(Path(arg).expanduser(), spec, source)
    else:  # the spec validates source; this is a guard for programmatic use
        raise DataError(f"unknown source kind {kind!r}", source)
    if not spec.labeled:  # -1 marks an unlabeled row; whatever labels the source has are never read
        ds.y_train, ds.y_test = np.full(len(ds.x_train), -1, np.int32), np.full(len(ds.x_test), -1, np.int32)
    check(ds)
    if spec.labeled:
        ds.y_train, ds.y_test, ds.classes = _encode_labels(ds.y_train, ds.y_test, source)
    else:
        ds.classes = np.array([], dtype=np.int32)
    ds.fingerprint = fingerprint(ds)
    return ds


def keras_mnist_path() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps its copy: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(home).expanduser() / "datasets" / "mnist.npz"


def resolve_mnist(spec: DataSpec) -> Path:
    """data.path, else AEPIPE_MNIST, else Keras' cache; a path the user set must exist.

    The error lists every place looked at, with the path each one gave, so a
    user sees at once which setting was empty and which pointed nowhere.
    """
    for what, value in (("data.path", spec.path), ("AEPIPE_MNIST", os.environ.get("AEPIPE_MNIST"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise DataError(f"{what} is set to {value!r}, but {str(path)!r} is not a file (it must name "
                                "mnist.npz, as keras.datasets.mnist downloads it)", "mnist")
            if not zipfile.is_zipfile(path):
                raise DataError(f"{what} is set to {value!r}, which is not an .npz archive (it must name "
                                "mnist.npz, as keras.datasets.mnist downloads it)", "mnist")
            return path
    keras_copy = keras_mnist_path()
    if keras_copy.is_file():
        return keras_copy
    cache = "$KERAS_HOME/datasets/mnist.npz" if os.environ.get("KERAS_HOME") else "~/.keras/datasets/mnist.npz"
    raise DataError(f"MNIST not found; looked at data.path (not set), AEPIPE_MNIST (not set) and Keras' cache "
                    f"{cache} ({str(keras_copy)!r}: no such file). Run `aepipe data mnist` to download it into "
                    "Keras' cache, or set data.path or AEPIPE_MNIST to your copy of mnist.npz")


def _digits(spec: DataSpec) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=spec.test_size,
                                                      stratify=y if spec.labeled else None, random_state=0)
    return Dataset("digits", x_tr, y_tr, x_te, y_te)


def make_sequences(n: int = 1600, timesteps: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic sequences (n, timesteps, 2) in [0, 1] for seq2seq autoencoders.

    Four classes of waveform (sine, square, triangle, sawtooth) with random
    frequency, phase and amplitude plus a little noise; the second feature is
    the same wave a quarter period later, so the two channels are related the
    way multichannel sensor data is.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    t = np.linspace(0.0, 1.0, timesteps, dtype=np.float64)
    freq = rng.uniform(1.0, 3.0, size=(n, 1))
    phase = rng.uniform(0.0, 1.0, size=(n, 1))
    amp = rng.uniform(0.5, 1.0, size=(n, 1))
    waves = []
    for shift in (0.0, 0.25):
        u = (freq * t + phase + shift) % 1.0  # position within the period
        shapes = np.stack([np.sin(2 * np.pi * u), np.sign(np.sin(2 * np.pi * u)),
                           4 * np.abs(u - 0.5) - 1, 2 * u - 1])  # each in [-1, 1]
        w = shapes[y, np.arange(n)] * amp + rng.normal(0.0, 0.05, size=(n, timesteps))
        waves.append(np.clip(0.5 + 0.45 * w, 0.0, 1.0))
    return np.stack(waves, axis=-1).astype(np.float32), y


def _sequences(spec: DataSpec) -> Dataset:
    from sklearn.model_selection import train_test_split

    x, y = make_sequences()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=spec.test_size,
                                                      stratify=y if spec.labeled else None, random_state=0)
    return Dataset("sequences", x_tr, y_tr, x_te, y_te)


def as_float(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 images are scaled to [0, 1]; anything else is taken as it is."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif not np.issubdtype(x.dtype, np.number):
        raise DataError(f"inputs must be numeric, got dtype {x.dtype}", source)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 3 and x.shape[1] == x.shape[2]:  # (n, h, w) images -> flat vectors
        x = x.reshape(len(x), -1)
    return x


def _npz(path: Path, source: str) -> Dataset:
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):  # a .npy file: one array, not the four
            raise DataError(f"{path} is a .npy array, not an .npz archive of x_train, y_train, x_test, y_test "
                            "(use data.source = \"npy:...\" for one array of inputs)", source)
        with f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks arrays {', '.join(missing)} "
                                "(needs x_train, y_train, x_test, y_test)", source)
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        raise DataError(f"file not found: {path}", source) from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}", source) from None
    return Dataset(source, as_float(arrays["x_train"], source), arrays["y_train"],
                   as_float(arrays["x_test"], source), arrays["y_test"])


def npy_label_path(path: Path, spec: DataSpec) -> Path:
    """``data.label_path``, else ``<stem>.labels.npy`` beside the inputs."""
    if spec.label_path:
        return Path(spec.label_path).expanduser()
    return path.with_name(f"{path.stem}.labels.npy")


def _npy(path: Path, spec: DataSpec, source: str) -> Dataset:
    """Inputs memory-mapped from one ``.npy`` (never read whole when float32),
    labels from a second; the last ``test_size`` of the rows is the test set."""
    label_path = npy_label_path(path, spec)
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"file not found: {path}", source) from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}", source) from None
    try:
        y = np.load(label_path, allow_pickle=False) if spec.labeled else np.full(len(x), -1, np.int32)
    except FileNotFoundError:
        raise DataError(f"labels file not found: {label_path} (set data.label_path, or data.labeled = false for data without labels)", source) from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {label_path}: {e}", source) from None
    if x.ndim < 2:
        raise DataError(f"{path} has shape {x.shape}; expected one row per example", source)
    if len(y) != len(x):
        raise DataError(f"{path} has {len(x)} rows but {label_path} has {len(y)} labels", source)
    if x.dtype != np.float32:  # uint8 images are scaled, other types converted: in memory
        x = as_float(np.asarray(x), source)
    elif x.ndim == 3 and x.shape[1] == x.shape[2]:
        x = x.reshape(len(x), -1)  # a view: still memory-mapped
    cut = len(x) - int(np.ceil(len(x) * spec.test_size))
    return Dataset(source, x[:cut], y[:cut], x[cut:], y[cut:])


def _csv(path: Path, spec: DataSpec, source: str) -> Dataset:
    import csv

    from sklearn.model_selection import train_test_split

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DataError(f"file not found: {path}", source) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}", source) from None
    if len(rows) < 2:
        raise DataError(f"{path} has no data rows", source)
    header = rows[0]
    if spec.labeled and spec.label_column not in header:
        raise DataError(f"{path}: no label column {spec.label_column!r} (set data.label_column, or "
                        "data.labeled = false for data without labels)", source)
    li = header.index(spec.label_column) if spec.label_column in header else -1
    xs, ys = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {n}: {len(row)} fields, header has {len(header)}", source)
        try:
            xs.append([float(v) for i, v in enumerate(row) if i != li])
        except ValueError:
            raise DataError(f"{path} line {n}: non-numeric value", source) from None
        ys.append(row[li] if li >= 0 else -1)
    x = np.asarray(xs, dtype=np.float32)
    y = np.asarray(ys)
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=spec.test_size,
                                                      stratify=y if spec.labeled else None, random_state=0)
    except ValueError as e:
        raise DataError(f"{path}: cannot split into train/test ({e})", source) from None
    return Dataset(source, x_tr, y_tr, x_te, y_te)


def check(ds: Dataset) -> None:
    """The checks the design lists: empty, NaN/inf, shape and label mismatches."""
    src = ds.name
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        if len(x) == 0:
            raise DataError(f"the {split} set is empty", src)
        if len(x) != len(y):
            raise DataError(f"x_{split} has {len(x)} rows but y_{split} has {len(y)} labels", src)
        bad = feed.nonfinite_rows(x)  # chunked: x may be a memmap larger than memory
        if bad.any():
            raise DataError(f"x_{split} row {int(np.argmax(bad))} contains NaN or inf "
                            f"({int(bad.sum())} rows in all)", src)
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise DataError(f"x_train rows have shape {ds.x_train.shape[1:]} but x_test rows "
                        f"{ds.x_test.shape[1:]}", src)


def in_unit_range(x) -> bool:
    """Do all values of ``x`` lie in [0, 1]? (what layer 0's "auto" decoder and loss follow:
    ``config.resolve_layer0``). Chunk by chunk: ``x`` may be a memmap larger than memory."""
    lo, hi = feed.value_range(x)
    return lo >= 0 and hi <= 1


def check_unit_range(x: np.ndarray, what: str) -> None:
    """A sigmoid + binary cross-entropy layer can only reconstruct values in [0, 1]."""
    lo, hi = feed.value_range(x)
    if lo < 0 or hi > 1:
        raise DataError(f"{what}: binary_crossentropy needs inputs in [0, 1], found [{lo:.3g}, {hi:.3g}]; "
                        "scale the data or set loss = \"mse\" and decoder_activation = \"linear\"")


def _encode_labels(y_train, y_test, source):
    y_train, y_test = np.asarray(y_train).ravel(), np.asarray(y_test).ravel()
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise DataError(f"y_train has {len(classes)} class; need at least 2", source)
    unseen = np.setdiff1d(np.unique(y_test), classes)
    if len(unseen):
        raise DataError(f"y_test has labels not in y_train: {unseen[:5].tolist()}", source)
    return (np.searchsorted(classes, y_train).astype(np.int32),
            np.searchsorted(classes, y_test).astype(np.int32), classes)
