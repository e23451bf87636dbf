"""AutoencoderClusterer: pretraining, the optional unroll and the cluster stage as a scikit-learn clusterer.

A thin face over the same Runner and stages as ``aepipe cluster``: it keeps
the (refined, for dec/idec) encoder weights and the fitted clusterer as
arrays (``analysis.cluster_model``), never live TensorFlow or pickled UMAP.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClusterMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..config import training
from .base import NOISE, TRAINING
from .transformer import AutoencoderTransformer


class AutoencoderClusterer(ClusterMixin, AutoencoderTransformer):
    """Cluster rows by the codes of a (greedily pretrained) stacked autoencoder.

    The autoencoder is trained as ``AutoencoderTransformer`` (every parameter
    of it applies here), then its top codes are clustered as a pipeline's
    ``[cluster]`` section does: k-means, a Gaussian mixture, or DEC/IDEC
    refinement of the encoder, optionally on a UMAP embedding (N2D).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters (KMeans' default).
    method : {"kmeans", "gmm", "dec", "idec"}, default="kmeans"
    embed : {"none", "umap"}, default="none"
        "umap": cluster a UMAP embedding of the codes (needs ``aepipe[cluster]``).
    cluster_max_iter : int, default=20000
        dec/idec: budget in batches; they stop earlier once fewer than
        ``cluster_tol`` of the assignments changed between target updates.
    cluster_tol : float, default=0.001
    **kwargs
        Every ``AutoencoderTransformer`` parameter.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training row.
    cluster_centers_ : ndarray of shape (n_clusters, n_codes)
        kmeans, dec and idec without an embedding: the centers in code space.
    spec_, encoder_weights_, n_features_in_ : as ``AutoencoderTransformer``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16
    >>> AutoencoderClusterer(n_clusters=10, layers=(32, 10), epochs=2, random_state=0).fit_predict(X).shape
    (1797,)
    """

    _parameter_constraints: dict = {
        **AutoencoderTransformer._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"kmeans", "gmm", "dec", "idec"})],
        "embed": [StrOptions({"none", "umap"}), None],
        "cluster_max_iter": [Interval(Integral, 1, None, closed="left")],
        "cluster_tol": [Interval(Real, 0, None, closed="left")],
    }
    _phase = "cluster"

    def __init__(self, n_clusters=8, *, method="kmeans", embed="none", cluster_max_iter=20000, cluster_tol=0.001,
                 layers=(64,), activation="relu", mode="greedy", kind=None, noise=NOISE, l1=None, tied=None,
                 loss="auto", optimizer=TRAINING.optimizer, learning_rate=None, epochs=TRAINING.epochs,
                 pretrain_epochs=None, unroll_epochs=0, tol=TRAINING.tol, n_iter_no_change=TRAINING.n_iter_no_change,
                 early_stopping=TRAINING.early_stopping, batch_size=TRAINING.batch_size, validation_split=None,
                 memory=None, pipeline=None, random_state=None, verbose=0):
        super().__init__(layers, activation=activation, mode=mode, kind=kind, noise=noise, l1=l1, tied=tied,
                         loss=loss, optimizer=optimizer, learning_rate=learning_rate, epochs=epochs,
                         pretrain_epochs=pretrain_epochs, unroll_epochs=unroll_epochs, tol=tol,
                         n_iter_no_change=n_iter_no_change, early_stopping=early_stopping, batch_size=batch_size,
                         validation_split=validation_split, memory=memory, pipeline=pipeline,
                         random_state=random_state, verbose=verbose)
        self.n_clusters = n_clusters
        self.method = method
        self.embed = embed
        self.cluster_max_iter = cluster_max_iter
        self.cluster_tol = cluster_tol

    def _spec_dict(self, X, seed: int) -> dict:
        out = super()._spec_dict(X, seed)
        out["cluster"] = {"method": self.method, "n_clusters": int(self.n_clusters),
                          "embed": self.embed or "none", "max_iter": int(self.cluster_max_iter),
                          "tol": float(self.cluster_tol), "baseline": False,
                          "batch_size": training.batch_size(self.batch_size, len(X))}
        return out

    def _make_spec(self, X, seed):
        import dataclasses

        spec = super()._make_spec(X, seed)
        if self.pipeline is not None and spec.cluster.method == "none":
            raise ValueError(f"{type(self).__name__}(pipeline=...) needs a pipeline with a [cluster] section")
        return dataclasses.replace(spec, cluster=dataclasses.replace(spec.cluster, baseline=False))

    def fit(self, X, y=None):
        """Pretrain on X, then cluster it (y is ignored)."""
        from .holdout import validation_last

        self._validate_params()
        X = self._check_X(X, reset=True)
        if len(X) < self.n_clusters:  # KMeans' own check and message
            raise ValueError(f"n_samples={len(X)} should be >= n_clusters={self.n_clusters}.")
        spec = self._make_spec(X, self._seed())
        y = np.zeros(len(X), np.int32)
        stages = self._run(spec, X, y, np.array([0]))
        order = validation_last(y, spec.data.validation_split, spec.seed, stratify=False)
        self.labels_ = np.empty(len(X), np.int64)
        self.labels_[order] = self.labels_in_training_order_
        del self.labels_in_training_order_
        return self

    def _set_fitted(self, spec, stages, input_shape, classes):
        from ..analysis.cluster_model import ClusterModel

        refined = (stages["cluster"].path / "layers").is_dir()
        super()._set_fitted(spec, {"unroll": stages["cluster"]} if refined else stages, input_shape, classes)
        self.labels_in_training_order_ = np.load(stages["cluster"].path / "assignments" / "clusters-train.npy")
        c = spec.cluster
        model = ClusterModel.load(stages["cluster"].path / "cluster_model", c.method, c.umap_neighbors)
        self.cluster_state_ = {k: np.asarray(v) for k, v in model.arrays.items()}
        if "centers" in model.arrays and c.embed == "none":
            self.cluster_centers_ = np.asarray(model.arrays["centers"])

    def _cluster_model(self):
        from ..analysis.cluster_model import ClusterModel

        c = self.spec_.cluster
        return ClusterModel(c.method, self.cluster_state_, c.umap_neighbors)

    def predict(self, X):
        """The cluster of each row of X, through the fitted encoder and clusterer."""
        check_is_fitted(self)
        return self._cluster_model().predict(self.transform(X))

    def fit_predict(self, X, y=None, **kwargs):
        return self.fit(X).labels_

    @classmethod
    def from_stages(cls, spec, stages: dict, input_shape: tuple, classes=None):
        est = super().from_stages(spec, stages, input_shape, classes)
        est.labels_ = est.__dict__.pop("labels_in_training_order_")  # the CLI's training rows, in data order
        return est
