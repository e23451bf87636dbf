"""Fine-tuning that also learns from the unlabeled inputs.

Two terms beside the labeled rows' cross-entropy, each optional:

- pseudo-labels (Lee 2013): every unlabeled row's target is the net's own
  argmax on that very forward pass (no gradient through the choice), or on a
  pass without dropout and noise (``targets="clean"``), rows less confident
  than ``threshold`` masked out; the cross-entropy is weighted by
  ``alpha(epoch)``, 0 before ``start``, ramping linearly to ``weight`` at ``end``.
  ``targets="mean_teacher"``: the clean pass of a copy of the net whose weights
  are the exponential moving average of its own (Tarvainen & Valpola 2017).
  ``alignment``: the targets' probabilities times the labeled class frequencies
  over the running mean of the unlabeled predictions (Berthelot et al. 2020),
  so a class the net over-predicts stops absorbing its neighbour's rows: the
  way a 100-label draw stalled (most of one digit's cluster taken by another);
- reconstruction: the top code goes back down through the decoders (pretrained,
  or random for the baseline) and every input, labeled or not, is reconstructed
  (denoising when the fine-tune input noise or dropout is on);
- virtual adversarial training (Miyato et al. 2018): for every input, labeled
  or not, one power iteration finds the direction of norm ``epsilon`` in which
  the clean prediction changes most, and the KL divergence from the clean
  prediction to the (noisy) prediction there is the loss: smoothness where the
  data lie, which needs no label.

The trainer wraps the stacked classifier without changing it: the stage saves
``trainer.classifier``'s weights, so scoring, export and the estimators read
the same network as plain fine-tuning. The ramp's epoch comes from the
optimizer's step counter, which the checkpoint restores: resume stays exact.
"""

from __future__ import annotations

from . import _quiet  # noqa: F401  (TensorFlow import without its stderr notices)
import keras
import numpy as np
from keras import ops


def ramp(epoch, weight: float, start: int, end: int):
    """Lee 2013's alpha(t): 0 before ``start``, linear up to ``weight`` at ``end``, then flat."""
    if end <= start:
        return ops.where(epoch >= start, weight, 0.0)
    return weight * ops.clip((epoch - start) / (end - start), 0.0, 1.0)


ALIGNMENT_MOMENTUM = 0.99
"""Of the running mean of the unlabeled predictions, per step: about the last 100
batches (ReMixMatch averages the last 128)."""

VAT_XI = 1e-3
"""Norm of the power iteration's probe. Miyato et al. use 1e-6; at float32 and
pixels near 1 such a probe can round away entirely (a zero gradient, no
direction), while 1e-3 is still far inside the 0.3 radius it points out."""


def _unit(d):
    """Each row of ``d`` scaled to L2 norm 1 (over all its non-batch axes)."""
    axes = tuple(range(1, len(d.shape)))
    return d / (ops.sqrt(ops.sum(ops.square(d), axis=axes, keepdims=True)) + 1e-12)


class VatProbe(keras.layers.Layer):
    """The power iteration's random start, drawn from a seed generator that
    training reseeds per epoch like every noise layer (resume stays exact)."""

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        return VAT_XI * _unit(keras.random.normal(ops.shape(x), seed=self.seed_generator))


class SemiSupervisedTrainer(keras.Model):
    """Trains ``classifier`` on batches ``((labeled x, unlabeled x), labels)``."""

    def __init__(self, classifier: keras.Model, *, top: str, steps_per_epoch: int, pseudo_labels: float = 0.0,
                 pseudo_labels_start: int = 100, pseudo_labels_end: int = 600,
                 pseudo_labels_targets: str = "dropout", pseudo_labels_threshold: float = 0.0,
                 decoder: keras.Model | None = None, reconstruction_weight: float = 0.0,
                 reconstruction_loss: str = "mse", vat_weight: float = 0.0, vat_epsilon: float = 0.3,
                 teacher_decay: float = 0.99, alignment: bool = False, class_prior=None):
        super().__init__(name="semi_supervised")
        self.classifier = classifier
        self.decoder = decoder
        self.top = top  # the layer of ``classifier`` whose output the decoder reads
        self.steps_per_epoch = steps_per_epoch
        self.pseudo = (pseudo_labels, pseudo_labels_start, pseudo_labels_end)
        self.clean_targets = pseudo_labels_targets in ("clean", "mean_teacher")
        self.threshold = pseudo_labels_threshold
        self.teacher, self.teacher_decay = None, teacher_decay
        if pseudo_labels > 0 and pseudo_labels_targets == "mean_teacher":
            self.teacher = keras.models.clone_model(classifier)
            self.teacher.set_weights(classifier.get_weights())
            self.teacher.trainable = False  # moved by the moving average alone, never by the optimizer
        self.prior = self.mean_prediction = None
        if pseudo_labels > 0 and alignment:
            k = classifier.output_shape[-1]
            prior = np.full(k, 1.0 / k) if class_prior is None else np.asarray(class_prior, "float64")
            prior = (prior / prior.sum()).astype("float32")
            self.prior = ops.convert_to_tensor(prior)
            # the running mean starts at the prior (no correction) and is saved with the checkpoint
            self.mean_prediction = self.add_weight(shape=(k,), initializer=keras.initializers.Constant(prior),
                                                   trainable=False, name="mean_prediction")
        self.reconstruction_weight = reconstruction_weight if decoder is not None else 0.0
        self.reconstruction_loss = keras.losses.get(reconstruction_loss)
        self.vat = (vat_weight, vat_epsilon)
        self.probe = VatProbe(name="vat_probe") if vat_weight > 0 else None  # only then: other layers' seeds stay
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "pseudo_label_loss", "reconstruction_loss", "vat_loss")}
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy]

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def _forward(self, x, training):
        """Class probabilities and the top code of one pass through the classifier."""
        h, top = x, None
        for layer in self.classifier.layers:
            h = layer(h, training=training)
            if layer.name == self.top:
                top = h
        return ops.cast(h, "float32"), top

    def _align(self, source):
        """Distribution alignment of pseudo-label probabilities ``source`` (no gradient)."""
        momentum = ALIGNMENT_MOMENTUM
        self.mean_prediction.assign(momentum * self.mean_prediction + (1 - momentum) * ops.mean(source, axis=0))
        aligned = source * self.prior / (self.mean_prediction + 1e-6)
        return aligned / ops.sum(aligned, axis=-1, keepdims=True)

    def _update_teacher(self):
        decay = self.teacher_decay
        for student, teacher in zip(self.classifier.layers, self.teacher.layers):
            for s, t in zip(student.weights, teacher.weights):
                t.assign(decay * t + (1 - decay) * ops.cast(s, t.dtype))

    def _vat_loss(self, x, clean):
        """Mean KL(clean || prediction at x + r_adv), r_adv from one power iteration."""
        import tensorflow as tf

        _, epsilon = self.vat
        probe = ops.cast(self.probe(x), x.dtype)
        with tf.GradientTape() as inner:
            inner.watch(probe)
            divergence = ops.sum(keras.losses.kl_divergence(clean, self._forward(x + probe, training=False)[0]))
        direction = ops.stop_gradient(_unit(ops.cast(inner.gradient(divergence, probe), "float32")))
        adversarial = x + ops.cast(epsilon * direction, x.dtype)
        return ops.mean(keras.losses.kl_divergence(clean, self._forward(adversarial, training=True)[0]))

    def train_step(self, data):
        import tensorflow as tf

        (x_labeled, x_unlabeled), y = data
        n = ops.shape(x_labeled)[0]
        x = ops.concatenate([x_labeled, ops.cast(x_unlabeled, x_labeled.dtype)], axis=0)
        epoch = ops.cast(self.optimizer.iterations // self.steps_per_epoch, "float32")
        weight, start, end = self.pseudo
        vat_weight, _ = self.vat
        clean = clean_unlabeled = None  # the net without dropout and noise: VAT's and clean pseudo-labels' targets
        if vat_weight > 0:
            clean = ops.stop_gradient(self._forward(x, training=False)[0])
            clean_unlabeled = clean[n:]
        if weight > 0 and self.teacher is not None:
            clean_unlabeled = ops.stop_gradient(ops.cast(self.teacher(x[n:], training=False), "float32"))
        elif weight > 0 and self.clean_targets and clean_unlabeled is None:
            clean_unlabeled = ops.stop_gradient(self._forward(x[n:], training=False)[0])
        with tf.GradientTape() as tape:
            probs, top = self._forward(x, training=True)
            supervised = ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs[:n]))
            loss = supervised
            pseudo = ops.zeros(())
            if weight > 0:
                unlabeled = probs[n:]
                source = clean_unlabeled if self.clean_targets else ops.stop_gradient(unlabeled)
                if self.mean_prediction is not None:
                    source = self._align(source)
                target = ops.argmax(source, axis=-1)
                per_row = keras.losses.sparse_categorical_crossentropy(target, unlabeled)
                if self.threshold > 0:
                    per_row = per_row * ops.cast(ops.max(source, axis=-1) >= self.threshold, "float32")
                pseudo = ops.sum(per_row) / ops.maximum(ops.cast(ops.shape(per_row)[0], "float32"), 1.0)
                loss = loss + ramp(epoch, weight, start, end) * pseudo
            reconstruction = ops.zeros(())
            if self.reconstruction_weight > 0:
                recon = ops.cast(self.decoder(top, training=True), "float32")
                target = ops.reshape(ops.cast(x, "float32"), ops.shape(recon))
                reconstruction = ops.mean(self.reconstruction_loss(target, recon))
                loss = loss + self.reconstruction_weight * reconstruction
            vat = ops.zeros(())
            if vat_weight > 0:
                vat = self._vat_loss(x, clean)
                loss = loss + vat_weight * vat
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        if self.teacher is not None:
            self._update_teacher()
        for name, value in (("loss", loss), ("pseudo_label_loss", pseudo), ("reconstruction_loss", reconstruction),
                            ("vat_loss", vat)):
            self.trackers[name].update_state(value)
        self.accuracy.update_state(y, probs[:n])
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        probs = ops.cast(self.classifier(x, training=False), "float32")
        self.trackers["loss"].update_state(ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs)))
        self.accuracy.update_state(y, probs)
        return {"loss": self.trackers["loss"].result(), "accuracy": self.accuracy.result()}
