"""The file layout of a stage directory and of a run directory: the one place
that spells their file names.

Stages write the stage files, the runner and the estimators read them, ``plots``
draws from them; ``pipeline.rundir`` writes the run files, history, clean, the
report command and the tracker read them. Nothing else names either.
"""

from __future__ import annotations

import re
from pathlib import Path

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

# a run directory (runs/<pipeline>/<UTC stamp>/): drawn from the published stages
RUN_RECORD = "run.json"  # what the run did, stage by stage
RUN_SPEC = "spec.json"
RUN_METRICS = "metrics.json"
RUN_REPORT = "report.md"
RUN_FILES = (RUN_REPORT, RUN_METRICS, RUN_SPEC, RUN_RECORD)  # all of them but the pictures
CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion.png"
TSNE_PNG = "tsne.png"  # also what `aepipe tsne` draws in its own folder
RECONSTRUCTIONS_PNG = "reconstructions.png"
FILTERS_PNG = "filters.png"
LATENT_SCATTER_PNG = "latent_scatter.png"  # a stage's picture is copied in as <stage>-<picture>
# CODE_SCATTER and LATENT_MANIFOLD keep their stage file names in a run directory

RUN_NAME = re.compile(r"(\d{8}T\d{6}Z)(?:-(\d+))?$")  # pipeline.rundir.new_run_dir's: <UTC stamp>[-n]


def run_order(run_dir: Path) -> tuple[str, int]:
    """Oldest first: by stamp, then the -n a second run in the same second gets
    (``-10`` after ``-9``); a name of another shape sorts before them all."""
    m = RUN_NAME.match(Path(run_dir).name)
    return (m.group(1), int(m.group(2) or 0)) if m else ("", 0)


def stage_picture(stage: str, picture: str) -> str:
    """A picture a stage drew, copied into a run directory: ``pretrain-0-latent_manifold.png``."""
    return f"{stage}-{picture}"


def latent_scatter(index: int) -> str:
    """The evaluate stage's scatter of variational layer ``index``'s test codes by class
    (drawn there, not in the pretrain stage: pretraining never sees labels)."""
    return f"latent_scatter_{index}.png"


def layer_dir(index: int) -> str:
    """Where a deep (joint, layer_matching) pretraining stage keeps layer ``index``'s weights."""
    return f"layers/{index}"


def encodings(split: str) -> str:
    return {"train": ENCODINGS_TRAIN, "test": ENCODINGS_TEST}[split]
