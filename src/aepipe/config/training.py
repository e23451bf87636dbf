"""The training rules every trained phase shares, in one home: the spec's defaults are these, and the
scikit-learn estimators take theirs from the spec.

They are scikit-learn's ``MLPClassifier``'s: adam, minibatches of ``min(200, rows)`` ("auto",
resolved by each stage from the rows it trains on), and a budget of 200 epochs that stops once
the training loss has not improved by ``tol`` for more than ``n_iter_no_change`` epochs in a row.
Pretraining denoises (gaussian noise of stddev 0.1), whose codes generalise better than a plain
autoencoder's. ``benchmarks/minimal_table.py`` checks a two-line ``[[layers]]`` pipeline with these
defaults against ``MLPClassifier()`` on a table no recipe was chosen on.
"""

from __future__ import annotations

import dataclasses

AUTO = "auto"
AUTO_BATCH_CAP = 200  # MLPClassifier's batch_size="auto": min(200, n_samples)
OPTIMIZER = "adam"
EPOCHS = 200  # MLPClassifier's max_iter: a budget, which the stopping rule usually ends earlier
N_ITER_NO_CHANGE = 10
TOL = 1e-4
NOISE = "gaussian"  # pretraining's input noise (NoiseSpec.stddev: 0.1)

BATCH_HELP = (f"minibatch size; auto: min({AUTO_BATCH_CAP}, the rows the phase trains on), as scikit-learn's "
              "MLPClassifier")


def valid_batch_size(value) -> bool:
    return value == AUTO or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


BATCH_CHECK = (valid_batch_size, 'a positive number or "auto"')


def batch_size(value: int | str, rows: int) -> int:
    """The minibatch a phase training on ``rows`` rows uses: ``value``, or for "auto" ``min(200, rows)``."""
    return min(AUTO_BATCH_CAP, max(int(rows), 1)) if value == AUTO else int(value)


def for_rows(section, rows: int):
    """``section`` (a layer, ``[unroll]``, ``[head]`` or ``[finetune]``) with its batch size resolved
    for ``rows`` training rows: what a stage trains with once it knows its data."""
    if section.batch_size != AUTO:
        return section
    return dataclasses.replace(section, batch_size=batch_size(AUTO, rows))
