"""The file layout of a stage directory: the one place that spells file names.

Stages write these, the runner and the estimators read them, ``plots`` draws
from them; nothing else names a stage file.
"""

from __future__ import annotations

MANIFEST = "manifest.json"
CHECKPOINT_DIR = "checkpoint"  # per-epoch state of a stage being built; never published

HISTORY = "history.json"
ENCODER_WEIGHTS = "encoder.weights.h5"
DECODER_WEIGHTS = "decoder.weights.h5"
HEAD_WEIGHTS = "head.weights.h5"
MODEL_WEIGHTS = "model.weights.h5"  # a whole stacked classifier (finetune, baseline)
ENCODINGS_TRAIN = "encodings/train.npy"
ENCODINGS_TEST = "encodings/test.npy"
PREDICTIONS = "predictions.npy"  # test-set class index of every row (finetune, baseline)
METRICS = "metrics.json"
RECONSTRUCTIONS = "reconstructions.npz"
FILTERS = "filters.npy"
TSNE_EMBEDDINGS = "tsne.npz"
CODE_SCATTER = "code_scatter.png"  # a 2-D code by class next to PCA-2 (evaluate stage)
LATENT_MANIFOLD = "latent_manifold.png"  # a 2-D variational layer 0's decoded latent grid (pretrain stage)


def latent_scatter(index: int) -> str:
    """The evaluate stage's scatter of variational layer ``index``'s test codes by class
    (drawn there, not in the pretrain stage: pretraining never sees labels)."""
    return f"latent_scatter_{index}.png"


def layer_dir(index: int) -> str:
    """Where a deep (joint, layer_matching) pretraining stage keeps layer ``index``'s weights."""
    return f"layers/{index}"


def encodings(split: str) -> str:
    return {"train": ENCODINGS_TRAIN, "test": ENCODINGS_TEST}[split]
