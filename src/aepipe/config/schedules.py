"""Options whose schedule may not fit the epoch budget they run in.

``finetune.pseudo_labels`` ramps in from ``pseudo_labels_start`` (Lee 2013's
epoch 100) to ``pseudo_labels_end`` (600): with fewer fine-tune epochs it
never switches on, and the summary still reads as if it had. Warning, not
rescaling the ramp: a rescaled default would change what an explicit
pipeline means whenever its epochs change, and the stage key with it.
"""

from __future__ import annotations


class ScheduleWarning(UserWarning):
    """An option's schedule never starts (or never completes) within its budget."""


def ramp_at(epoch: int, weight: float, start: int, end: int) -> float:
    """Lee 2013's alpha(t), as ``nn.semisupervised.ramp`` computes it, for one epoch."""
    if end <= start:
        return weight if epoch >= start else 0.0
    return weight * min(max((epoch - start) / (end - start), 0.0), 1.0)


def unmet_schedules(spec) -> list[str]:
    """One sentence per option whose schedule does not fit the fine-tune budget."""
    ft = spec.finetune
    if ft.pseudo_labels <= 0:
        return []
    last = ft.epochs - 1  # epochs count from 0
    reached = ramp_at(last, ft.pseudo_labels, ft.pseudo_labels_start, ft.pseudo_labels_end)
    where = (f"finetune.pseudo_labels ramps in from epoch {ft.pseudo_labels_start} (pseudo_labels_start) to "
             f"{ft.pseudo_labels_end} (pseudo_labels_end), but fine-tuning runs {ft.epochs} epochs")
    if reached == 0:
        return [f"{where}: the pseudo-label loss never switches on; set pseudo_labels_start and "
                "pseudo_labels_end below finetune.epochs"]
    if reached < ft.pseudo_labels:
        return [f"{where}: its weight reaches {reached:.3g} of {ft.pseudo_labels:g} by the last epoch"]
    return []


def warn_unmet(spec, stacklevel: int = 2) -> None:
    import warnings

    for message in unmet_schedules(spec):
        warnings.warn(message, ScheduleWarning, stacklevel=stacklevel + 1)
