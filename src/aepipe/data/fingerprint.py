"""Data fingerprints: what stage keys know of the data, and a cache that saves hashing it
(and keeps, beside each fingerprint, facts about the same data: ``in_unit_range``).

Inputs and labels are hashed apart: pretraining never sees labels, so its
stages key on the inputs alone, and a transformer and a classifier fitted on
the same X share them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..config.spec import DataSpec
from ..engine.atomic import atomic_write_text
from ..engine.plan import Fingerprint
from ..errors import DataError
from . import feed
from .sources import Dataset, npy_label_path, resolve_mnist


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        for block in feed.byte_blocks(a):
            h.update(block)
    return h.hexdigest()


def fingerprint(ds: Dataset) -> Fingerprint:
    classes = np.asarray([str(c) for c in ds.classes]) if ds.classes is not None else np.zeros(0)
    return Fingerprint(_digest(ds.x_train, ds.x_test), _digest(ds.y_train, ds.y_test, classes.astype("U")))


def cached_fingerprint(spec: DataSpec, cache_file: Path) -> Fingerprint | None:
    """The fingerprint of a file-backed source without loading it, when an
    earlier load recorded it for the same file size and mtime."""
    return _fingerprint_of(_entry(spec, cache_file))


def cached_fact(spec: DataSpec, cache_file: Path, name: str):
    """A fact about the same data recorded beside its fingerprint (``in_unit_range``); None when there is none."""
    entry = _entry(spec, cache_file)
    return entry.get(name) if isinstance(entry, dict) else None


def remember_fingerprint(spec: DataSpec, cache_file: Path, value: Fingerprint, **facts) -> None:
    """Record ``value`` (and ``facts`` about the same data) for the source's current file;
    facts recorded earlier stay while the fingerprint is the same."""
    ident = _source_identity(spec)
    if ident is None:
        return
    try:
        table = json.loads(cache_file.read_text())
        table = table if isinstance(table, dict) else {}
    except (OSError, ValueError):
        table = {}
    old = table.get(ident)
    kept = old if isinstance(old, dict) and _fingerprint_of(old) == value else {}
    table[ident] = {**kept, **value._asdict(), **facts}
    try:
        atomic_write_text(cache_file, json.dumps(table, indent=1, sort_keys=True))
    except OSError:
        pass  # the cache only saves time; a read-only store still works


def _fingerprint_of(entry) -> Fingerprint | None:
    try:
        return Fingerprint(entry["inputs"], entry["labels"])
    except (TypeError, KeyError):
        return None


def _entry(spec: DataSpec, cache_file: Path):
    """The cache's entry for the source's current file (size and mtime), or None."""
    ident = _source_identity(spec)
    if ident is None:
        return None
    try:
        table = json.loads(cache_file.read_text())
        return table.get(ident) if isinstance(table, dict) else None
    except (OSError, ValueError):
        return None


def _source_identity(spec: DataSpec) -> str | None:
    kind, _, arg = spec.source.partition(":")
    if kind == "digits":  # the package version, read without importing scikit-learn (2 s)
        from importlib.metadata import version

        return json.dumps(["digits", version("scikit-learn"), spec.test_size])
    if kind == "sequences":
        return None  # generated in milliseconds; fingerprinted on every load
    try:
        path = resolve_mnist(spec) if kind == "mnist" else Path(arg).expanduser()
        st = path.stat()
    except (DataError, OSError):
        return None
    extra = [spec.test_size, spec.label_column] if kind == "csv" else []
    if kind == "npy":
        try:
            lst = npy_label_path(path, spec).stat()
        except OSError:
            return None
        extra = [spec.test_size, str(npy_label_path(path, spec).resolve()), lst.st_size, lst.st_mtime_ns]
    return json.dumps([kind, str(path.resolve()), st.st_size, st.st_mtime_ns, *extra])
