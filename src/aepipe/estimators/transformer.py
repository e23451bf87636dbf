"""AutoencoderTransformer: the pretrain stages as a scikit-learn transformer.

A thin face: it turns its parameters into a PipelineSpec and trains it with
the same Runner, stages and artifact store as ``aepipe run`` (``base``); what
it keeps is the spec and the weights as numpy arrays, so ``pickle``, ``clone``
and joblib workers only ever see config and weight bytes. TensorFlow is
imported inside fit/transform.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .base import FLOATS, NOISE, TRAINING, AutoencoderStack


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoencoderStack):
    """Greedy layer-wise stacked autoencoder as a scikit-learn transformer.

    Each layer is an autoencoder trained on the codes of the layer below, by
    the same stages (and, with ``memory``, the same artifact store) as
    ``aepipe run``; ``transform`` returns the top layer's codes.

    Parameters
    ----------
    layers : int or tuple of int, default=(48, 24)
        Code width of each layer, bottom to top. The defaults (two tanh layers,
        then an unroll) are the default pipeline's layers: on
        validation rows of digits their codes kept neighbours at least as well
        as PCA of the same width (``benchmarks/code_recipes.py``), which one
        64-wide ReLU layer did not.
    activation : str, default="tanh"
        Encoder activation of every layer.
    mode : str, default="greedy"
        Pretraining mode (``pretrain.mode`` of a pipeline).
    noise : str, dict or None, default="gaussian"
        Input corruption while pretraining every layer (a denoising
        autoencoder, whose codes generalise better than a plain one's): a kind
        ("gaussian", with stddev 0.1, "masking", "salt_pepper") or a dict such
        as ``{"kind": "masking", "fraction": 0.3}``; None or "none": no noise.
    kind, l1, tied : default=None
        Block options of every layer (``layers[].kind`` ...). None: the spec's default.
    loss : {"auto", "binary_crossentropy", "mse", "mae"}, default="auto"
        Reconstruction loss of the first layer; "auto" picks binary
        cross-entropy (sigmoid decoder) when X lies in [0, 1], else MSE.
    optimizer : str, default="adam"
    learning_rate : float, default=None
        None: the optimizer's default.
    epochs : int, default=200
        The epoch budget of every phase (MLPClassifier's ``max_iter``; aepipe
        says epochs, as its pipelines do). A phase stops earlier by the rule of
        ``tol`` and ``n_iter_no_change``, and warns (``ConvergenceWarning``,
        naming the phase) when it uses the whole budget while still improving.
    pretrain_epochs : int, default=None
        Epoch budget of each layer's pretraining; None: ``epochs``.
    unroll_epochs : int, default=30
        After greedy pretraining, unroll the stack into one deep autoencoder and
        fine-tune it end to end on reconstruction for at most this many epochs
        (Hinton & Salakhutdinov 2006; the same stopping rule); ``transform`` and
        ``inverse_transform`` then use the unrolled weights. 0: no unroll.
    tol : float, default=1e-4
        A phase stops once its training loss (the validation loss with
        ``early_stopping``) has not improved by more than ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs, as in MLPClassifier. The rule
        reads only the loss history, so a resumed phase stops at the same epoch.
    n_iter_no_change : int, default=10
        0: every phase trains its whole budget.
    early_stopping : bool, default=False
        Watch the validation loss of the held-out ``validation_split`` instead.
    batch_size : int or "auto", default="auto"
        "auto": ``min(200, n_samples)``, as MLPClassifier.
    validation_split : float, default=None
        Fraction of X held out for validation (MLPClassifier's
        ``validation_fraction``): a draw seeded by ``random_state``, stratified
        by class in the classifier (of its labeled rows; unlabeled ones are
        drawn apart), never simply the last rows. None: 0.1 with
        ``early_stopping``, else 0.
    memory : str, path or joblib.Memory, default=None
        Artifacts directory; fits with equal parameters and data reuse its
        cached stages (a transformer and a classifier fitted on the same X
        share their pretrain stages when nothing is held out: their
        validation draws differ). None: a temporary directory per fit.
    pipeline : str, path or dict, default=None
        A whole aepipe pipeline (a TOML file, or a dict as in ``spec.json``)
        as the recipe: its layers, pretraining, head and fine-tune settings
        are trained on X instead of the parameters above, which must then stay
        at their defaults or agree with it. ``aepipe.load`` sets it, so
        ``clone(aepipe.load(run)).fit(X)`` trains the run's recipe.
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
    n_iter_ : int
        Epochs the top layer's pretraining ran.
    n_iters_ : dict
        Epochs each stage ran, by stage name.
    loss_curve_ : list of float
        The top layer's training loss, epoch by epoch (MLPClassifier's ``loss_curve_``).
    data_min_, data_max_ : ndarray of shape (n_features_in_,)
        Each feature's training range; ``transform`` (and the classifier's
        ``predict``) warn with ``aepipe.InputRangeWarning`` when inputs lie well
        outside it (another scale, such as raw pixels for a model fitted on [0, 1]).
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

    # training defaults: the spec's (base.TRAINING), so `aepipe run` and the estimators train alike
    def __init__(self, layers=(48, 24), *, activation="tanh", mode="greedy", kind=None, noise=NOISE, l1=None,
                 tied=None, loss="auto", optimizer=TRAINING.optimizer, learning_rate=None, epochs=TRAINING.epochs,
                 pretrain_epochs=None, unroll_epochs=30, tol=TRAINING.tol, n_iter_no_change=TRAINING.n_iter_no_change,
                 early_stopping=TRAINING.early_stopping, batch_size=TRAINING.batch_size, validation_split=None,
                 memory=None, pipeline=None, random_state=None, verbose=0):
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
        self.unroll_epochs = unroll_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.memory = memory
        self.pipeline = pipeline
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
        from ..stages.context import pretrained_blocks

        blocks = pretrained_blocks(spec, input_shape, stages, decoders=True)
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
        """Negative mean squared reconstruction error of X, per value (higher is better)."""
        import keras

        from ..nn.inference import reconstruction_mse

        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        models = self._get_models()
        autoencoder = keras.Sequential([keras.Input(self._input_shape), models["encoder"], models["decoder"]])
        x = np.ascontiguousarray(X, dtype=np.float32).reshape((len(X), *self._input_shape))
        return -reconstruction_mse(autoencoder, x, x)

    @property
    def keras_model_(self):
        """The encoder stack as a plain Keras model (a new copy on every access)."""
        check_is_fitted(self)
        return self._build_models()["encoder"]
