"""The data a pipeline runs on, loaded once and only when a stage, a fingerprint or its range needs it.

A fully cached run, and ``status``, read the fingerprint of a file-backed
source from ``fingerprints.json`` instead of hashing the data again, and
whether its training inputs lie in [0, 1] (what layer 0's "auto" decoder and
loss follow) from the same entry instead of scanning them again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config.spec import DataSpec, EvaluateSpec, PipelineSpec
from ..data import fingerprint as fp
from ..data import sources
from ..engine.plan import Fingerprint
from ..errors import SpecError


class PipelineData:
    """``spec.data`` as the runner sees it; ``dataset`` given: in-memory arrays (the estimators)."""

    def __init__(self, spec: DataSpec, cache_file: Path, dataset=None):
        self.spec, self.cache_file = spec, cache_file
        self._dataset = dataset
        self._fingerprint = None if dataset is None else dataset.fingerprint
        self._from_source = dataset is None  # in-memory arrays (the estimators) have no cache entry
        self._in_unit_range: bool | None = None

    @property
    def dataset(self) -> sources.Dataset:
        if self._dataset is None:
            ds = sources.load(self.spec)
            if self._fingerprint is not None and self._fingerprint != ds.fingerprint:
                raise RuntimeError("data changed while running; rerun")
            fp.remember_fingerprint(self.spec, self.cache_file, ds.fingerprint)
            self._dataset = ds
        return self._dataset

    @property
    def fingerprint(self) -> Fingerprint:
        if self._fingerprint is None:
            self._fingerprint = fp.cached_fingerprint(self.spec, self.cache_file) or self.dataset.fingerprint
        return self._fingerprint

    @property
    def in_unit_range(self) -> bool:
        """Do the training inputs lie in [0, 1]? (``config.resolve_layer0`` asks, for a layer 0
        whose decoder is "auto"). Read from the fingerprint cache when an earlier call recorded
        it there for the same file; else computed once from the arrays and recorded."""
        if self._in_unit_range is None:
            value = fp.cached_fact(self.spec, self.cache_file, "in_unit_range") if self._from_source else None
            if not isinstance(value, bool):
                value = sources.in_unit_range(self.dataset.x_train)
                if self._from_source:
                    fp.remember_fingerprint(self.spec, self.cache_file, self.dataset.fingerprint,
                                            in_unit_range=value)
            self._in_unit_range = value
        return self._in_unit_range


def check_labeled_subset(spec: DataSpec, ds: sources.Dataset, where: str = "data.labels") -> None:
    """``data.labels`` must be drawable from the training split before anything trains:
    not more rows than are labeled, not fewer than the classes (one of each, at least)."""
    if spec.labels is None:
        return
    labeled = int((ds.y_train >= 0).sum())
    if spec.labels > labeled:
        raise SpecError(f"asks for {spec.labels} labeled examples, but the training split of {ds.name!r} has "
                        f"{labeled}", where)
    if spec.labels < ds.n_classes:
        raise SpecError(f"{spec.labels} is fewer than the {ds.n_classes} classes; a stratified subset needs "
                        "at least one label of each", where)
    extra = spec.validation_labels
    if extra is not None and spec.labels + extra > labeled:
        raise SpecError(f"asks for {spec.labels} labeled examples and {extra} more to validate on, but the "
                        f"training split of {ds.name!r} has {labeled}", "data.validation_labels")
    if extra is not None and extra < ds.n_classes:
        raise SpecError(f"{extra} is fewer than the {ds.n_classes} classes; a stratified validation draw needs "
                        "at least one row of each", "data.validation_labels")


def check_tsne_samples(spec: EvaluateSpec, ds: sources.Dataset, where: str = "evaluate.tsne_samples") -> None:
    """The t-SNE points are a stratified sample of the test split: one of each class at least."""
    classes = len(np.unique(ds.y_test))
    if spec.tsne and spec.tsne_samples < min(len(ds.y_test), classes):
        raise SpecError(f"{spec.tsne_samples} is fewer than the {classes} classes of the test split of "
                        f"{ds.name!r}; a stratified t-SNE sample needs at least one point of each", where)


def check_data_dependent(spec: PipelineSpec, ds: sources.Dataset, labels: bool = True, tsne: bool = True) -> None:
    """What the spec alone cannot check, before anything trains: the labeled subset, the t-SNE sample."""
    if labels:
        check_labeled_subset(spec.data, ds)
    if tsne:
        check_tsne_samples(spec.evaluate, ds)
