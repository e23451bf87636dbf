"""scikit-learn faces of the engine: AutoencoderTransformer and StackedAutoencoderClassifier.

Thin faces: each turns its parameters into a PipelineSpec and trains it with
the same Runner, stages and artifact store as ``aepipe run``
(``estimator_base.AutoencoderStack``); what it keeps is the spec and the
weights as numpy arrays, so ``pickle``, ``clone`` and joblib workers only ever
see config and weight bytes. TensorFlow is imported inside fit/transform/predict.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .estimator_base import EPOCHS, FLOATS, AutoencoderStack

# ---------------------------------------------------------------- transformer


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoencoderStack):
    """Greedy layer-wise stacked autoencoder as a scikit-learn transformer.

    Each layer is an autoencoder trained on the codes of the layer below, by
    the same stages (and, with ``memory``, the same artifact store) as
    ``aepipe run``; ``transform`` returns the top layer's codes.

    Parameters
    ----------
    layers : int or tuple of int, default=(64,)
        Code width of each layer, bottom to top.
    activation : str, default="relu"
        Encoder activation of every layer.
    mode : str, default="greedy"
        Pretraining mode (``pretrain.mode`` of a pipeline).
    kind, noise, l1, tied : default=None
        Block options of every layer (``layers[].kind`` ...); ``noise`` is a
        kind ("gaussian", "masking", "salt_pepper") or a dict such as
        ``{"kind": "masking", "fraction": 0.3}``. None: the spec's default.
    loss : {"auto", "binary_crossentropy", "mse", "mae"}, default="auto"
        Reconstruction loss of the first layer; "auto" picks binary
        cross-entropy (sigmoid decoder) when X lies in [0, 1], else MSE.
    optimizer : str, default="adam"
    learning_rate : float, default=None
        None: the optimizer's default.
    epochs : int, default=20
        Epochs of every phase.
    pretrain_epochs : int, default=None
        Epochs of each layer's pretraining; None: ``epochs``.
    batch_size : int, default=32
    validation_split : float, default=0.0
        Last fraction of X held out to report validation loss.
    memory : str, path or joblib.Memory, default=None
        Artifacts directory; fits with equal parameters and data reuse its
        cached stages. None: a temporary directory per fit.
    random_state : int, RandomState instance or None, default=None
        An int is the pipeline seed; fits with the same int are bit-identical.
    verbose : int, default=0
        1: one line per epoch on stderr; 2: progress bars.

    Attributes
    ----------
    spec_ : PipelineSpec
        The pipeline that was trained.
    encoder_weights_, decoder_weights_ : list of list of ndarray
        Weights of each layer's encoder and decoder.
    history_ : dict
        Training history of each stage, by stage name.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16
    >>> codes = AutoencoderTransformer(layers=(32, 8), epochs=2, random_state=0).fit_transform(X)
    >>> codes.shape
    (1797, 8)
    """

    def __init__(self, layers=(64,), *, activation="relu", mode="greedy", kind=None, noise=None, l1=None,
                 tied=None, loss="auto", optimizer="adam", learning_rate=None, epochs=20,
                 pretrain_epochs=None, batch_size=32, validation_split=0.0, memory=None,
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
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Pretrain every layer on X (y is ignored)."""
        self._validate_params()
        X = self._check_X(X, reset=True)
        spec = self._make_spec(X, self._seed())
        self._run(spec, X, np.zeros(len(X), np.int32), np.array([0]))
        return self

    def _set_fitted(self, spec, stages, input_shape, classes):
        from .stages import stack_blocks

        blocks = stack_blocks(spec, input_shape)
        for i, block in enumerate(blocks):
            block.encoder.load_weights(stages[f"pretrain-{i}"].file("encoder.weights.h5"))
            block.decoder.load_weights(stages[f"pretrain-{i}"].file("decoder.weights.h5"))
        self.spec_ = spec
        self._input_shape = tuple(input_shape)
        self.encoder_weights_ = [b.encoder.get_weights() for b in blocks]
        self.decoder_weights_ = [b.decoder.get_weights() for b in blocks]
        self.history_ = self._histories(stages)
        self._n_features_out = int(np.prod(blocks[-1].output_shape))
        self._models = self._build_models()

    def _build_models(self) -> dict:
        blocks = self._blocks()  # imports the engine (and TensorFlow, quietly) first
        import keras

        for block, weights in zip(blocks, self.decoder_weights_):
            block.decoder.set_weights(weights)
        encoder = keras.Sequential([keras.Input(self._input_shape), *[b.encoder for b in blocks]],
                                   name="encoder_stack")
        decoder = keras.Sequential([keras.Input(blocks[-1].output_shape),
                                    *[b.decoder for b in reversed(blocks)]], name="decoder_stack")
        return {"encoder": encoder, "decoder": decoder}

    def transform(self, X):
        """Top-layer codes of X, in X's float dtype."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return self._predict_with("encoder", X).astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Reconstruct inputs from top-layer codes through the decoders, top to bottom."""
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOATS)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                             f"is expecting {self._n_features_out} features as input.")
        return self._predict_with("decoder", Z).astype(Z.dtype, copy=False)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error of X (higher is better)."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        recon = self._predict_with("decoder", self._predict_with("encoder", X))
        return -float(np.mean((recon - X) ** 2))

    @property
    def keras_model_(self):
        """The encoder stack as a plain Keras model (a new copy on every access)."""
        check_is_fitted(self)
        return self._build_models()["encoder"]


# ---------------------------------------------------------------- classifier


class StackedAutoencoderClassifier(ClassifierMixin, AutoencoderStack):
    """Greedy layer-wise pretraining, a softmax head, then fine-tuning the whole
    stack: the ``aepipe run`` pipeline as a scikit-learn classifier.

    Parameters
    ----------
    layers ... verbose
        As in :class:`AutoencoderTransformer`; ``epochs`` is also the head's.
    finetune_epochs : int, default=None
        Epochs of fine-tuning; None: ``epochs``.
    dropout : float, default=0.0
        Dropout after every encoder layer while fine-tuning.

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
    spec_, history_, n_features_in_, feature_names_in_
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
    }
    _phase = "finetune"

    def __init__(self, layers=(64,), *, activation="relu", mode="greedy", kind=None, noise=None, l1=None,
                 tied=None, loss="auto", optimizer="adam", learning_rate=None, epochs=20,
                 pretrain_epochs=None, finetune_epochs=None, dropout=0.0, batch_size=32,
                 validation_split=0.0, memory=None, random_state=None, verbose=0):
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
        self.finetune_epochs = finetune_epochs
        self.dropout = dropout
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    def _spec_dict(self, X, seed):
        supervised = {"optimizer": self.optimizer, "learning_rate": self.learning_rate,
                      "batch_size": self.batch_size}
        return {**super()._spec_dict(X, seed),
                "head": {**supervised, "epochs": self.epochs},
                "finetune": {**supervised, "epochs": self.finetune_epochs or self.epochs,
                             "dropout": float(self.dropout)}}

    def fit(self, X, y):
        """Pretrain on X, train the head on the top codes, fine-tune on (X, y)."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=FLOATS)
        check_classification_targets(y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {classes[0]!r}")
        spec = self._make_spec(X, self._seed())
        self._run(spec, X, y_encoded.astype(np.int32), classes)
        return self

    def _set_fitted(self, spec, stages, input_shape, classes):
        from .stages import load_finetuned

        model = load_finetuned(spec, stages["finetune"], input_shape, len(classes))
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
        from .stages import stacked_classifier

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
