"""DEC and IDEC: refine an encoder with a clustering loss (TensorFlow).

DEC (Xie, Girshick & Farhadi 2016): soft assignments q_ij of code z_i to
center mu_j by a Student's t kernel, trained to match the sharpened target
p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j') with f_j = sum_i q_ij, by
KL(P || Q); the target is recomputed every ``update_interval`` batches and
training stops once fewer than ``tol`` of the assignments changed between two
updates. IDEC (Guo et al. 2017) adds the decoder's reconstruction loss, the
clustering loss weighted by ``gamma``. Settings follow the authors' Keras code
(XifengGuo/DEC-keras, XifengGuo/IDEC).

Resume: after every target update the weights, optimizer variables, the
round and the last assignments are checkpointed; batch order is a seeded
function of (seed, epoch), so a killed refinement ends bit-identical.
"""

from __future__ import annotations

from pathlib import Path

from . import _quiet  # noqa: F401
import keras
import numpy as np

from ..engine.layout import CHECKPOINT_DIR
from ..engine.seeds import derive_seed
from ..errors import TrainingDiverged
from .checkpoint import Checkpoint
from .inference import predict
from .train import make_optimizer


@keras.saving.register_keras_serializable(package="aepipe")
class ClusteringLayer(keras.layers.Layer):
    """Student's t soft assignment of each code to ``n_clusters`` trainable centers."""

    def __init__(self, n_clusters: int, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if n_clusters < 1:
            raise ValueError(f"Received an invalid value for `n_clusters`, expected a positive integer. "
                             f"Received: n_clusters={n_clusters}")
        self.n_clusters, self.alpha = n_clusters, alpha

    def build(self, input_shape):
        self.centers = self.add_weight(name="centers", shape=(self.n_clusters, int(input_shape[-1])),
                                       initializer="zeros")

    def call(self, z):
        ops = keras.ops
        d2 = ops.sum(ops.square(ops.expand_dims(z, 1) - self.centers), axis=2)  # (rows, clusters)
        q = ops.power(1.0 + d2 / self.alpha, -(self.alpha + 1.0) / 2.0)
        return q / ops.sum(q, axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "n_clusters": self.n_clusters, "alpha": self.alpha}


def target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's sharpened target: q squared, divided by cluster frequency, rows normalised."""
    weight = q.astype(np.float64) ** 2 / q.sum(axis=0)
    return (weight.T / weight.sum(axis=1)).T.astype(np.float32)


def build_refiner(blocks, n_clusters: int, alpha: float, reconstruct: bool) -> keras.Model:
    """input -> encoders -> soft assignments (and, for IDEC, -> decoders -> reconstruction)."""
    inputs = keras.Input(blocks[0].input_shape, name="input")
    z = inputs
    for block in blocks:
        z = block.encoder(z)
    z = keras.layers.Flatten(name="flatten_codes")(z) if len(z.shape) > 2 else z
    q = ClusteringLayer(n_clusters, alpha, name="clustering")(z)
    if not reconstruct:
        return keras.Model(inputs, q, name="dec")
    x = blocks[-1].decoder(z) if len(blocks) else z
    for block in reversed(blocks[:-1]):
        x = block.decoder(x)
    return keras.Model(inputs, [q, x], name="idec")


def refine(model: keras.Model, x: np.ndarray, centers: np.ndarray, *, settings, seed: int,
           recon_loss: str | None = None, workdir: Path | None = None, log=None) -> dict:
    """DEC/IDEC refinement of ``model`` (``build_refiner``) on ``x``; returns its history."""
    model.get_layer("clustering").centers.assign(centers.astype(np.float32))
    idec = recon_loss is not None
    loss = ["kl_divergence", recon_loss] if idec else "kl_divergence"
    model.compile(optimizer=_optimizer(settings), loss=loss, loss_weights=[settings.gamma, 1.0] if idec else None)
    ckpt = Checkpoint(Path(workdir) / CHECKPOINT_DIR) if workdir is not None else None
    history: dict = {"changed": [], "loss": []}
    start, previous = 0, None
    if ckpt is not None and ckpt.exists():
        start, history = ckpt.restore(model)
        previous = np.asarray(history.pop("assignments"), dtype=np.int64)
        if log:
            log(f"resumed from target update {start}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    steps_per_epoch = int(np.ceil(len(x) / settings.batch_size))
    rounds = int(np.ceil(settings.max_iter / settings.update_interval))
    for r in range(start, rounds):
        q = soft_assignments(model, x)
        now = q.argmax(axis=1)
        if previous is not None:
            changed = float(np.mean(now != previous))
            history["changed"].append(changed)
            if changed < settings.tol:
                break
        previous, p = now, target_distribution(q)
        losses = []
        for step in range(r * settings.update_interval, min((r + 1) * settings.update_interval, settings.max_iter)):
            rows = _batch(step, steps_per_epoch, len(x), settings.batch_size, seed)
            out = model.train_on_batch(x[rows], [p[rows], x[rows]] if idec else p[rows], return_dict=True)
            losses.append(float(out["loss"]))
        if not np.isfinite(losses[-1]):
            raise TrainingDiverged(r + 1, losses[-1])
        history["loss"].append(float(np.mean(losses)))
        if ckpt is not None:
            ckpt.save(model, r + 1, {**history, "assignments": previous.tolist()})
    history["rounds"] = len(history["loss"])
    history["converged"] = bool(history["changed"] and history["changed"][-1] < settings.tol)
    return history


def soft_assignments(model: keras.Model, x) -> np.ndarray:
    """Q of every row (the first output for IDEC)."""
    q_model = keras.Model(model.input, model.get_layer("clustering").output)
    return predict(q_model, x)


def _batch(step: int, steps_per_epoch: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """Rows of global batch ``step``: epoch ``step // steps_per_epoch`` in a seeded order."""
    epoch, i = divmod(step, steps_per_epoch)
    order = np.random.default_rng(derive_seed(seed, "cluster", epoch)).permutation(n)
    return np.sort(order[i * batch_size:(i + 1) * batch_size])


def _optimizer(settings):
    """DEC-keras' SGD carries momentum 0.9; every other optimizer takes Keras' defaults."""
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=settings.learning_rate or 0.01, momentum=0.9, name="sgd")
    return make_optimizer(settings.optimizer, settings.learning_rate)
