"""StackedAutoencoderClassifier: pretrain, head and fine-tune as a scikit-learn classifier.

A thin face like the transformer (``base``). Rows labeled -1 are unlabeled
(scikit-learn's semi-supervised convention, as in ``SelfTrainingClassifier``):
every row is pretrained on, only labeled rows train the head and fine-tune.
Binary labels -1 and 1 stay two classes (-1 is only "unlabeled" when at least
two other classes remain).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .base import EPOCHS, FINETUNE, FLOATS, NOISE, TRAINING, AutoencoderStack

UNLABELED = -1


class StackedAutoencoderClassifier(ClassifierMixin, AutoencoderStack):
    """Greedy layer-wise pretraining, a softmax head, then fine-tuning the whole
    stack: the ``aepipe run`` pipeline as a scikit-learn classifier.

    Parameters
    ----------
    layers ... verbose
        As in :class:`AutoencoderTransformer`; ``epochs`` is also the head's.
    finetune_epochs : int, default=None
        Epoch budget of fine-tuning; None: ``epochs``.
    dropout : float, default=0.0
        Dropout after every encoder layer while fine-tuning.
    pseudo_labels : float, default=0.0
        Final weight of the pseudo-label loss on the unlabeled rows (y == -1)
        while fine-tuning (Lee 2013, who uses 3); 0: off.
    pseudo_labels_ramp : tuple of int, default=(100, 600)
        Fine-tune epochs where that weight starts ramping up from 0 and where it
        reaches ``pseudo_labels`` (Lee 2013's T1, T2).
    reconstruction_weight : float, default=0.0
        Weight of the reconstruction loss of every row, labeled or not, through
        the pretrained decoders, added to the classification loss while
        fine-tuning; 0: off.
    vat_weight : float, default=0.0
        Weight of virtual adversarial training's loss on every row, labeled or
        not (Miyato et al. 2018; perturbations of L2 norm 0.3, the MNIST setting,
        so scale X to about [0, 1] or use ``pipeline`` to set
        ``finetune.vat_epsilon``); 0: off.
    pipeline : str, path or dict, default=None
        A whole aepipe pipeline as the recipe (see
        :class:`AutoencoderTransformer`); fine-tune options included.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, of any type.
    encoder_weights_ : list of list of ndarray
        Fine-tuned weights of each encoder layer.
    head_weights_ : list of ndarray
        Fine-tuned softmax head weights.
    batch_norm_weights_ : list of list of ndarray
        Batch-normalization weights after each encoder layer; empty unless the
        fine-tuning spec (a pipeline run loaded with ``aepipe.load``) has
        ``batch_norm``.
    n_iter_ : int
        Epochs fine-tuning ran.
    loss_curve_ : list of float
        Fine-tuning's training loss, epoch by epoch.
    spec_, history_, n_iters_, n_features_in_, feature_names_in_
        As in :class:`AutoencoderTransformer`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = StackedAutoencoderClassifier(layers=(32,), epochs=2, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    _parameter_constraints = {
        **AutoencoderStack._parameter_constraints,
        "finetune_epochs": [EPOCHS, None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "pseudo_labels": [Interval(Real, 0, None, closed="left")],
        "pseudo_labels_ramp": [tuple, list],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "vat_weight": [Interval(Real, 0, None, closed="left")],
    }
    _phase = "finetune"

    # training defaults: the spec's (base.TRAINING), so `aepipe run` and the estimators train alike
    def __init__(self, layers=(64,), *, activation="relu", mode="greedy", kind=None, noise=NOISE, l1=None,
                 tied=None, loss="auto", optimizer=TRAINING.optimizer, learning_rate=None, epochs=TRAINING.epochs,
                 pretrain_epochs=None, finetune_epochs=None, dropout=0.0, pseudo_labels=0.0,
                 pseudo_labels_ramp=(FINETUNE.pseudo_labels_start, FINETUNE.pseudo_labels_end),
                 reconstruction_weight=0.0, vat_weight=0.0, tol=TRAINING.tol,
                 n_iter_no_change=TRAINING.n_iter_no_change, early_stopping=TRAINING.early_stopping,
                 batch_size=TRAINING.batch_size, validation_split=None, memory=None, pipeline=None,
                 random_state=None, verbose=0):
        self.layers = layers
        self.activation = activation
        self.mode = mode
        self.kind = kind
        self.noise = noise
        self.l1 = l1
        self.tied = tied
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.pretrain_epochs = pretrain_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.finetune_epochs = finetune_epochs
        self.dropout = dropout
        self.pseudo_labels = pseudo_labels
        self.pseudo_labels_ramp = pseudo_labels_ramp
        self.reconstruction_weight = reconstruction_weight
        self.vat_weight = vat_weight
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.memory = memory
        self.pipeline = pipeline
        self.random_state = random_state
        self.verbose = verbose

    def _spec_dict(self, X, seed):
        supervised = self._training(X)
        return {**super()._spec_dict(X, seed),
                "head": {**supervised, "epochs": self.epochs},
                "finetune": {**supervised, "epochs": self.finetune_epochs or self.epochs,
                             "dropout": float(self.dropout), **self._semi_supervised()}}

    def _semi_supervised(self) -> dict:
        """The fine-tune fields that learn from the unlabeled rows (only those set)."""
        out = {}
        if self.pseudo_labels:
            start, end = (int(v) for v in self.pseudo_labels_ramp)
            out.update(pseudo_labels=float(self.pseudo_labels), pseudo_labels_start=start, pseudo_labels_end=end)
        if self.reconstruction_weight:
            out["reconstruction_weight"] = float(self.reconstruction_weight)
        if self.vat_weight:
            out["vat_weight"] = float(self.vat_weight)
        return out

    def fit(self, X, y):
        """Pretrain on every row of X, train the head on the top codes and fine-tune
        on the labeled rows (y != -1)."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=FLOATS)
        labeled = _labeled(y)
        check_classification_targets(y[labeled])
        classes, encoded = np.unique(y[labeled], return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {classes[0]!r}")
        y_encoded = np.full(len(y), UNLABELED, np.int32)
        y_encoded[labeled] = encoded
        spec = self._make_spec(X, self._seed())
        self._run(spec, X, y_encoded, classes)
        return self

    def _set_fitted(self, spec, stages, input_shape, classes):
        from ..engine import layout
        from ..stages.supervised import load_classifier

        model = load_classifier(spec, stages["finetune"].file(layout.MODEL_WEIGHTS), input_shape, len(classes))
        self.spec_ = spec
        self._input_shape = tuple(input_shape)
        self.classes_ = classes
        self.encoder_weights_ = [model.get_layer(f"encoder_{i}").get_weights() for i in range(len(spec.layers))]
        self.head_weights_ = model.get_layer("head").get_weights()
        self.batch_norm_weights_ = [model.get_layer(f"batch_norm_{i}").get_weights()
                                    for i in range(len(spec.layers)) if spec.finetune.batch_norm]
        self.history_ = self._histories(stages)
        self._models = {"classifier": model}

    def _build_models(self) -> dict:
        from ..stages.supervised import stacked_classifier

        model, blocks = stacked_classifier(self.spec_, self._input_shape, len(self.classes_))
        for block, weights in zip(blocks, self.encoder_weights_):
            block.encoder.set_weights(weights)
        for i, weights in enumerate(self.batch_norm_weights_):
            model.get_layer(f"batch_norm_{i}").set_weights(weights)
        model.get_layer("head").set_weights(self.head_weights_)
        return {"classifier": model}

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return self._predict_with("classifier", X).astype(np.float64)

    def predict_log_proba(self, X):
        """Natural log of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def keras_model_(self):
        """The fine-tuned classifier as a plain Keras model (a new copy on every access)."""
        check_is_fitted(self)
        return self._build_models()["classifier"]


def _labeled(y: np.ndarray) -> np.ndarray:
    """Rows with a label: all of them, unless numeric labels mark unlabeled rows with -1.
    With a single other class, -1 is a class (binary labels -1 / 1): a classifier
    of one class cannot be what was meant."""
    labeled = np.ones(len(y), bool)
    if np.issubdtype(y.dtype, np.number):
        marked = y != UNLABELED
        if len(np.unique(y[marked])) >= 2:
            labeled = marked
    return labeled
