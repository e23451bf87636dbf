"""scikit-learn faces of the engine: AutoencoderTransformer and StackedAutoencoderClassifier.

An estimator turns its parameters into a PipelineSpec and hands its arrays to
the same Runner, stages and artifact store the CLI uses (a temporary store, or
the one ``memory`` names, so repeated fits reuse cached stages). What it keeps
is plain state: the spec and the trained weights as numpy arrays. The live
Keras models are a cache that pickling drops and the next call rebuilds, so
``pickle``, ``clone`` and joblib workers only ever see config and weight bytes.

TensorFlow is imported inside ``fit``/``transform``/``predict``, never here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import tempfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import spec as spec_mod
from .data import Dataset, fingerprint
from .errors import DataError, SpecError

_FLOATS = [np.float32, np.float64]
_EPOCHS = Interval(Integral, 1, None, closed="left")


class _AutoencoderStack(BaseEstimator):
    """What both estimators share: parameters -> spec -> Runner -> weights."""

    _parameter_constraints: dict = {
        "layers": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(spec_mod.ACTIVATIONS))],
        "mode": [str],
        "kind": [str, None],
        "noise": [StrOptions({"none", "gaussian", "masking", "salt_pepper"}), dict, None],
        "l1": [Interval(Real, 0, None, closed="left"), None],
        "tied": ["boolean", None],
        "loss": [StrOptions(set(spec_mod.LOSSES) | {"auto"})],
        "optimizer": [StrOptions(set(spec_mod.OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "epochs": [_EPOCHS],
        "pretrain_epochs": [_EPOCHS, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_split": [Interval(Real, 0, 1, closed="left")],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _phase = "pretrain"  # the runner phase fit() needs

    # ------------------------------------------------------------ pickling

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_models", None)  # live Keras objects never leave the process
        return state

    # ------------------------------------------------------------ spec

    def _layer_units(self) -> list[int]:
        units = [self.layers] if isinstance(self.layers, Integral) else list(self.layers)
        if not units or not all(isinstance(u, Integral) and not isinstance(u, bool) and u > 0 for u in units):
            raise ValueError(f"The 'layers' parameter of {type(self).__name__} must be a positive int "
                             f"or a non-empty sequence of positive ints. Got {self.layers!r} instead.")
        return [int(u) for u in units]

    def _seed(self) -> int:
        """An int random_state is the pipeline seed itself; otherwise one is drawn from it."""
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _spec_dict(self, X: np.ndarray, seed: int) -> dict:
        """The pipeline (as TOML would give it) these parameters describe."""
        defaults = {"activation": self.activation, "optimizer": self.optimizer,
                    "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                    "epochs": self.pretrain_epochs or self.epochs}
        # options left at None take the spec's own default, so options added to
        # LayerSpec later work here as soon as the spec accepts them
        for key in ("kind", "l1", "tied"):
            if getattr(self, key) is not None:
                defaults[key] = getattr(self, key)
        if self.noise is not None:
            defaults["noise"] = {"kind": self.noise} if isinstance(self.noise, str) else dict(self.noise)
        first = {"units": self._layer_units()[0], **_first_layer_output(self.loss, X)}
        return {"name": type(self).__name__.lower(), "seed": seed,
                "data": {"validation_split": float(self.validation_split)},
                "pretrain": {"mode": self.mode, **defaults},
                "layers": [first] + [{"units": u} for u in self._layer_units()[1:]]}

    def _make_spec(self, X, seed):
        try:
            spec = spec_mod.from_dict(self._spec_dict(X, seed), f"{type(self).__name__} parameters")
        except SpecError as e:
            raise ValueError(e.message) from None
        return spec

    # ------------------------------------------------------------ fitting

    def _run(self, spec, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict:
        """Train (or fetch from ``memory``) every stage of ``self._phase``; return them by name."""
        from .plan import select
        from .runner import Runner
        from .store import Store

        x = np.ascontiguousarray(X, dtype=np.float32)
        ds = Dataset("arrays", x, y, x, y, classes=classes)  # no test split: "test" encodings are X's
        ds.fingerprint = fingerprint(ds)
        # one record per distinct fit, so `aepipe clean` on a memory store keeps what fits refer to
        digest = hashlib.sha256((spec_mod.canonical_json(spec) + ds.fingerprint).encode()).hexdigest()
        spec = dataclasses.replace(spec, name=f"{spec.name}-{digest[:12]}")
        log = (lambda m: print(m, file=sys.stderr)) if self.verbose else (lambda m: None)
        keras_verbose = 0 if not self.verbose else (2 if self.verbose == 1 else 1)
        with _store_dir(self.memory) as root:
            store = Store(root)
            runner = Runner(spec, store, verbose=keras_verbose, log=log, data=ds)
            try:
                runner.run(self._phase)
            except DataError as e:
                raise ValueError(e.message) from None
            stages = {s.name: store.load(s.kind, s.key) for s in select(runner.plan(), self._phase)}
            self._set_fitted(spec, stages, x.shape[1:], classes)
        return stages

    @classmethod
    def _from_stages(cls, spec, stages: dict, input_shape: tuple, classes=None):
        """A fitted estimator from published stages (``aepipe.load``, ``aepipe encode``);
        its parameters are read back from the spec, layer 0 standing for every layer."""
        est = cls(**{k: v for k, v in _params_from_spec(spec).items() if k in cls._get_param_names()})
        est.n_features_in_ = int(np.prod(input_shape))
        est._set_fitted(spec, stages, tuple(input_shape), classes)
        return est

    @staticmethod
    def _histories(stages) -> dict:
        import json

        return {name: json.loads(st.file("history.json").read_text())
                for name, st in stages.items() if st.file("history.json").is_file()}

    def _check_X(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=_FLOATS)
        return X

    def _predict_with(self, name: str, X) -> np.ndarray:
        """Rows in, flat rows out, whatever shapes the model's layers take."""
        from . import train

        model = self._get_models()[name]
        x = np.ascontiguousarray(X, dtype=np.float32).reshape((len(X), *model.input_shape[1:]))
        out = train.predict(model, x)
        return out.reshape(len(out), -1)

    def _get_models(self) -> dict:
        models = getattr(self, "_models", None)
        if models is None:
            models = self._models = self._build_models()
        return models

    def _blocks(self):
        """Fresh blocks of the fitted architecture, holding the fitted encoder weights."""
        from .stages import stack_blocks

        blocks = stack_blocks(self.spec_, self._input_shape)
        for block, weights in zip(blocks, self.encoder_weights_):
            block.encoder.set_weights(weights)
        return blocks

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _params_from_spec(spec) -> dict:
    first = spec.layers[0]
    noise = dataclasses.asdict(first.noise)
    return {"layers": tuple(layer.units for layer in spec.layers), "activation": first.activation,
            "mode": spec.pretrain.mode, "kind": first.kind, "l1": first.l1, "tied": getattr(first, "tied", None),
            "noise": None if noise["kind"] == "none" else noise, "loss": first.loss,
            "optimizer": first.optimizer, "learning_rate": first.learning_rate,
            "epochs": spec.head.epochs, "pretrain_epochs": first.epochs, "finetune_epochs": spec.finetune.epochs,
            "dropout": spec.finetune.dropout, "batch_size": first.batch_size,
            "validation_split": spec.data.validation_split, "random_state": spec.seed}


def _first_layer_output(loss: str, X: np.ndarray) -> dict:
    """Layer 0 reconstructs X itself. "auto": sigmoid + binary cross-entropy when
    X lies in [0, 1] (pixels), else a linear decoder with MSE; an explicit loss
    brings the decoder activation that suits it. Deeper layers keep the spec's
    auto (linear + MSE on unbounded codes)."""
    if loss == "auto":
        in_unit_range = X.size > 0 and float(np.min(X)) >= 0 and float(np.max(X)) <= 1
        loss = "binary_crossentropy" if in_unit_range else "mse"
    return {"loss": loss, "decoder_activation": "sigmoid" if loss == "binary_crossentropy" else "linear"}


class _store_dir:
    """The artifacts directory for one fit: ``memory`` (kept) or a temporary one."""

    def __init__(self, memory):
        self.memory = memory
        self._tmp = None

    def __enter__(self) -> Path:
        if self.memory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aepipe-fit-")
            return Path(self._tmp.name)
        location = getattr(self.memory, "location", self.memory)  # joblib.Memory or a path
        if location is None:
            raise ValueError("memory is a joblib.Memory without a location; give it a directory")
        return Path(location)

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()
        return False


# ---------------------------------------------------------------- transformer


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _AutoencoderStack):
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
        Z = check_array(X, dtype=_FLOATS)
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


class StackedAutoencoderClassifier(ClassifierMixin, _AutoencoderStack):
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
        **_AutoencoderStack._parameter_constraints,
        "finetune_epochs": [_EPOCHS, None],
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
        X, y = validate_data(self, X, y, dtype=_FLOATS)
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
        self.history_ = self._histories(stages)
        self._models = {"classifier": model}

    def _build_models(self) -> dict:
        from .blocks import build_classifier

        encoders = [b.encoder for b in self._blocks()]
        model = build_classifier(encoders, self._input_shape, len(self.classes_),
                                 self.spec_.finetune.dropout)
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
