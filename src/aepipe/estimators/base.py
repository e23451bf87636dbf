"""What both scikit-learn estimators share: parameters (or a whole pipeline) -> PipelineSpec -> Runner -> weights.

The estimators hand their arrays to the same Runner, stages and artifact store
the CLI uses (a temporary store, or the one ``memory`` names) and keep plain
state afterwards: the spec and the trained weights as numpy arrays. The live
Keras models are a cache that pickling drops and the next call rebuilds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import random
import sys
import tempfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import validate_data

from .. import config
from ..config import spec as spec_mod
from ..data import ranges
from ..data.fingerprint import fingerprint
from ..data.sources import Dataset, in_unit_range
from ..engine import layout
from ..errors import AepipeError, DataError, SpecError, TrainingDiverged

FLOATS = [np.float32, np.float64]
# the defaults every phase trains with are the spec's (config/training.py, one home for the CLI and the
# estimators): the estimators' __init__ defaults read them from here, never restate them
TRAINING = spec_mod.TrainingSpec()
NOISE = spec_mod.NoiseSpec().kind
FINETUNE = spec_mod.FinetuneSpec()
EPOCHS = Interval(Integral, 1, None, closed="left")
# parameters that stay free when ``pipeline`` gives the recipe
NOT_RECIPE = {"pipeline", "memory", "random_state", "verbose"}

class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite and nothing was fitted: aepipe's
    ``TrainingDiverged`` (a click exception, for the CLI's one-line message) as
    the builtin kind scikit-learn callers catch. ``epoch``, ``loss``, ``stage``
    as it gives them."""

    def __init__(self, message: str, epoch: int, loss: float, stage: str | None):
        super().__init__(message)
        self.epoch, self.loss, self.stage = epoch, loss, stage


@contextlib.contextmanager
def sklearn_errors():
    """aepipe's errors are click exceptions, which scikit-learn callers (and
    ``GridSearchCV(error_score=...)``) do not expect: bad data or options become
    ValueError, a diverged training TrainingDivergedError, the artifact store or
    its locks RuntimeError; the message is kept and the original chained."""
    try:
        yield
    except (DataError, SpecError) as e:
        raise ValueError(e.message) from e
    except TrainingDiverged as e:
        raise TrainingDivergedError(e.message, e.epoch, e.loss, e.stage) from e
    except AepipeError as e:  # StoreError (CorruptStage, StageWriteError), LockBusy
        raise RuntimeError(e.message) from e


class AutoencoderStack(BaseEstimator):
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
        "epochs": [EPOCHS],
        "pretrain_epochs": [EPOCHS, None],
        "unroll_epochs": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "validation_split": [Interval(Real, 0, 1, closed="left"), None],
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "pipeline": [str, os.PathLike, dict, None],
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

    def _validation_split(self) -> float:
        """None: MLPClassifier's validation_fraction (0.1) with early_stopping, else none held out."""
        if self.validation_split is None:
            return 0.1 if self.early_stopping else 0.0
        return float(self.validation_split)

    def _training(self, X) -> dict:
        """What every phase trains with: the batch ("auto": each stage resolves it to
        ``min(200, rows)`` of the rows it trains on, as MLPClassifier), the stopping rule."""
        batch = self.batch_size if self.batch_size == "auto" else int(self.batch_size)
        return {"optimizer": self.optimizer, "learning_rate": self.learning_rate, "batch_size": batch,
                "n_iter_no_change": int(self.n_iter_no_change), "tol": float(self.tol),
                "early_stopping": bool(self.early_stopping)}

    def _spec_dict(self, X: np.ndarray, seed: int) -> dict:
        """The pipeline (as TOML would give it) these parameters describe."""
        defaults = {"activation": self.activation, **self._training(X), "epochs": self.pretrain_epochs or self.epochs}
        # options left at None take the spec's own default, so options added to
        # LayerSpec later work here as soon as the spec accepts them
        for key in ("kind", "l1", "tied"):
            if getattr(self, key) is not None:
                defaults[key] = getattr(self, key)
        if self.noise is not None:
            defaults["noise"] = {"kind": self.noise} if isinstance(self.noise, str) else dict(self.noise)
        first = {"units": self._layer_units()[0], **_first_layer_output(self.loss)}
        out = {"name": type(self).__name__.lower(), "seed": seed,
               "data": {"validation_split": self._validation_split()},
               "pretrain": {"mode": self.mode, **defaults},
               "layers": [first] + [{"units": u} for u in self._layer_units()[1:]]}
        if getattr(self, "unroll_epochs", 0):
            out["unroll"] = {**self._training(X), "epochs": int(self.unroll_epochs)}
        return out

    def _make_spec(self, X, seed):
        where = f"{type(self).__name__} parameters"
        try:
            if self.pipeline is None:
                return config.from_dict(self._spec_dict(X, seed), where)
            spec = self._pipeline_spec()
            self._check_recipe_params(spec)
            return dataclasses.replace(spec, seed=seed)
        except SpecError as e:
            raise ValueError(e.message) from None

    def _pipeline_spec(self):
        """``pipeline`` as a spec: a TOML path, or a dict as ``PipelineSpec.to_dict()`` gives."""
        if isinstance(self.pipeline, dict):
            return config.from_dict(self.pipeline, f"{type(self).__name__}(pipeline=...)", strict=False)
        return config.load(self.pipeline)

    def _check_recipe_params(self, spec) -> None:
        """With ``pipeline``, the recipe is the pipeline's: a parameter may stay at its
        default or say what the pipeline says, never something else."""
        defaults = {name: p.default for name, p in inspect.signature(type(self)).parameters.items()}
        implied = params_from_spec(spec)
        for name, value in self.get_params(deep=False).items():
            if name in NOT_RECIPE or name not in implied:
                continue
            if not _same(value, defaults.get(name)) and not _same(value, implied[name]):
                raise SpecError(f"{name}={value!r} conflicts with the pipeline, which gives {implied[name]!r}; "
                                "change the pipeline instead, or drop `pipeline`")

    def _seed(self) -> int:
        """An int random_state is the pipeline seed itself; otherwise one is drawn from it."""
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # ------------------------------------------------------------ fitting

    def _run(self, spec, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict:
        """Train (or fetch from ``memory``) every stage of ``self._phase``; return them by name.
        ``y``: class indices, -1 for unlabeled rows (pretrained on, never trained on as labeled)."""
        from ..engine.plan import select
        from ..engine.remote import open_store
        from ..pipeline.runner import Runner
        from .holdout import validation_last

        x = np.ascontiguousarray(X, dtype=np.float32)
        spec = config.resolve_layer0(spec, lambda: in_unit_range(x))  # before the spec names the fit
        # the engine validates on the last rows: a seeded (for a classifier, stratified) draw goes there
        order = validation_last(y, spec.data.validation_split, spec.seed, stratify=self._phase == "finetune")
        ds = Dataset("arrays", x[order], y[order], x, y, classes=classes)  # no test split: "test" is X
        ds.fingerprint = fingerprint(ds)
        # one record per distinct fit, so `aepipe clean` on a memory store keeps what fits refer to
        digest = hashlib.sha256((config.canonical_json(spec) + ds.fingerprint.full).encode()).hexdigest()
        spec = dataclasses.replace(spec, name=f"{type(self).__name__.lower()}-{digest[:12]}")
        log = (lambda m: print(m, file=sys.stderr)) if self.verbose else (lambda m: None)
        keras_verbose = 0 if not self.verbose else (2 if self.verbose == 1 else 1)
        with sklearn_errors(), _store_dir(self.memory) as root, _global_rng_kept():
            store = open_store(root)
            # a temporary store is gone after the fit: nothing could resume from checkpoints
            runner = Runner(spec, store, verbose=keras_verbose, log=log, data=ds, checkpoints=self.memory is not None)
            runner.run(self._phase)
            stages = {s.name: store.load(s.kind, s.key) for s in select(runner.plan(), self._phase)}
            self._set_fitted(spec, stages, x.shape[1:], classes)
            self._record_range(stages["pretrain-0"].manifest, x)
            self._record_training(stages)
        return stages

    @classmethod
    def from_stages(cls, spec, stages: dict, input_shape: tuple, classes=None):
        """A fitted estimator from published stages (``aepipe.load``, ``aepipe encode``).
        ``pipeline`` holds the whole spec, so ``clone(est).fit`` trains the same
        recipe; the other parameters are read back from it for display (layer 0
        standing for every layer)."""
        params = {k: v for k, v in params_from_spec(spec).items() if k in cls._get_param_names()}
        est = cls(**params, pipeline=spec.to_dict())
        est.n_features_in_ = int(np.prod(input_shape))
        est._set_fitted(spec, stages, tuple(input_shape), classes)
        est._record_range(stages["pretrain-0"].manifest)
        est._record_training(stages, warn=False)
        return est

    def _record_range(self, manifest: dict, x=None) -> None:
        """``data_min_`` / ``data_max_``: each feature's training range, as layer 0's
        stage recorded it (from ``x`` for a stage published before ranges were;
        None when neither is there), which later inputs are checked against."""
        self.data_min_, self.data_max_ = ranges.recorded_range(manifest)
        if self.data_min_ is None and x is not None:
            trained = ranges.feature_range(x)
            self.data_min_, self.data_max_ = np.asarray(trained["min"]), np.asarray(trained["max"])

    def _record_training(self, stages: dict, warn: bool = True) -> None:
        """``n_iter_`` / ``loss_curve_`` (of ``last_phase``, as MLPClassifier's), ``n_iters_`` per
        stage, and a ConvergenceWarning for each phase that used its whole budget while
        its stopping rule still saw it improving."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        self.n_iters_ = {}
        for name, stage in stages.items():
            training = stage.manifest.get("training") or {}
            if "epochs_run" not in training:
                continue
            self.n_iters_[name] = training["epochs_run"]
            if warn and training.get("converged") is False:
                warnings.warn(f"{type(self).__name__}: {name} used its whole budget of {training['epochs']} "
                              "epochs while its loss was still improving; raise epochs (or tol) to let it "
                              "converge", ConvergenceWarning, stacklevel=4)
        last_phase = ("finetune" if self._phase == "finetune" else "unroll" if "unroll" in self.n_iters_
                      else f"pretrain-{len(self.spec_.layers) - 1}")
        self.n_iter_ = self.n_iters_.get(last_phase, 0)
        self.loss_curve_ = list(self.history_.get(last_phase, {}).get("loss", []))

    @staticmethod
    def _histories(stages) -> dict:
        return {name: json.loads(st.file(layout.HISTORY).read_text())
                for name, st in stages.items() if st.file(layout.HISTORY).is_file()}

    def _check_X(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=FLOATS)
        if not reset:  # new rows on another scale than the training data: say so, once
            ranges.warn_if_outside(X, getattr(self, "data_min_", None), getattr(self, "data_max_", None),
                                   type(self).__name__, stacklevel=4)
        return X

    def _predict_with(self, name: str, X) -> np.ndarray:
        """Rows in, flat rows out, whatever shapes the model's layers take."""
        from ..nn import inference

        with sklearn_errors():
            model = self._get_models()[name]
            x = np.ascontiguousarray(X, dtype=np.float32).reshape((len(X), *model.input_shape[1:]))
            out = inference.predict(model, x)
        return out.reshape(len(out), -1)

    def _get_models(self) -> dict:
        models = getattr(self, "_models", None)
        if models is None:
            models = self._models = self._build_models()
        return models

    def _blocks(self):
        """Fresh blocks of the fitted architecture, holding the fitted encoder weights."""
        from ..nn.blocks import stack_blocks

        blocks = stack_blocks(self.spec_.layers, self._input_shape)
        for block, weights in zip(blocks, self.encoder_weights_):
            block.encoder.set_weights(weights)
        return blocks

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def params_from_spec(spec) -> dict:
    """The estimator parameters a spec implies (layer 0 standing for every layer)."""
    first = spec.layers[0]
    noise = dataclasses.asdict(first.noise)
    return {"layers": tuple(layer.units for layer in spec.layers), "activation": first.activation,
            "mode": spec.pretrain.mode, "kind": first.kind, "l1": first.l1, "tied": getattr(first, "tied", None),
            "noise": None if noise["kind"] == "none" else noise, "loss": first.loss,
            "optimizer": first.optimizer, "learning_rate": first.learning_rate,
            "epochs": spec.head.epochs, "pretrain_epochs": first.epochs, "finetune_epochs": spec.finetune.epochs,
            "unroll_epochs": spec.unroll.epochs,
            "dropout": spec.finetune.dropout, "pseudo_labels": spec.finetune.pseudo_labels,
            "pseudo_labels_ramp": (spec.finetune.pseudo_labels_start, spec.finetune.pseudo_labels_end),
            "reconstruction_weight": spec.finetune.reconstruction_weight,
            "vat_weight": spec.finetune.vat_weight,
            "batch_size": first.batch_size, "tol": first.tol,
            "n_iter_no_change": first.n_iter_no_change, "early_stopping": first.early_stopping,
            "validation_split": spec.data.validation_split, "random_state": spec.seed}


def _first_layer_output(loss: str) -> dict:
    """Layer 0's fields the ``loss`` parameter gives: "auto" leaves decoder and loss
    "auto", for the engine's rule to settle from X (``config.resolve_layer0``:
    sigmoid + binary cross-entropy when X lies in [0, 1], else a linear decoder with
    MSE); an explicit loss brings the decoder activation that suits it. Deeper
    layers keep the spec's auto (linear + MSE on unbounded codes; with
    ``unroll_epochs``, the activation of the layer below, so the unrolled decoder
    mirrors the encoder)."""
    if loss == "auto":
        return {}
    return {"loss": loss, "decoder_activation": "sigmoid" if loss == "binary_crossentropy" else "linear"}


def _same(a, b) -> bool:
    """Equal as parameter values: sequences item by item, booleans only to booleans (1 is not True)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


@contextlib.contextmanager
def _global_rng_kept():
    """Stages seed Python's and NumPy's global RNGs (``keras.utils.set_random_seed``);
    the caller's fit leaves them as it found them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


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
        return location if isinstance(location, str) and "://" in location else Path(location)  # s3://...

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()
        return False
