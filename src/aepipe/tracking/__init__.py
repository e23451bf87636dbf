"""Experiment tracking: MLflow, listening to the runner's events.

Optional (``pip install 'aepipe[mlflow]'``). Nothing here imports mlflow until
a run asks to be tracked, so untracked runs never pay for it.
"""

from .resolve import OFF, TrackingTarget, resolve

__all__ = ["OFF", "TrackingTarget", "make_tracker", "resolve"]


def make_tracker(target, **kw):
    """An ``MlflowTracker`` for ``target`` (imports mlflow)."""
    from .mlflow_tracker import MlflowTracker

    return MlflowTracker(target, **kw)
