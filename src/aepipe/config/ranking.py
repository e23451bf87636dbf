"""Is a ranking by validation accuracy worth reading? Few-label pipelines hold
out ``data.validation_split`` of their labeled rows: 10 rows at 100 labels, so
sweep and tune variants tie or flip on one row."""

from __future__ import annotations

import math
import warnings

# below this many validation rows, one row moves accuracy by more than 2 points
FEW_VALIDATION_ROWS = 50


class ThinRankingWarning(UserWarning):
    """Variants are ranked on fewer than ``FEW_VALIDATION_ROWS`` validation rows."""


def validation_rows(labels: int, validation_split: float) -> int:
    """Rows the supervised stages hold out of ``labels``: the last fraction, as Keras' rule rounds it."""
    return labels - math.ceil(labels * (1.0 - validation_split)) if validation_split > 0 else 0


def warn_thin_ranking(specs, what: str) -> None:
    """One warning when any few-label spec among ``specs`` validates on too few rows."""
    thin = [(s.data.validation_labels or validation_rows(s.data.labels, s.data.validation_split), s)
            for s in specs if s.data.labels is not None]
    thin = [(n, s) for n, s in thin if n < FEW_VALIDATION_ROWS]
    if not thin:
        return
    n, s = min(thin, key=lambda t: t[0])
    warnings.warn(f"{what} ranks by validation accuracy on {n} rows (data.labels = {s.data.labels}, "
                  f"data.validation_split = {s.data.validation_split:g}), fewer than {FEW_VALIDATION_ROWS}: one "
                  f"row moves it by {100 / max(n, 1):.1f} points, so close variants tie; hold out more labeled rows "
                  "(data.validation_labels) or read close ranks as a tie", ThinRankingWarning, stacklevel=2)
