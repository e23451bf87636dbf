"""Which tracking URI a run uses: ``--mlflow URI`` > the pipeline's ``[tracking]``
table > ``$MLFLOW_TRACKING_URI`` > off.

Kept apart from the tracker so the choice is made (and tested) without
importing mlflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

OFF = ("off", "none")  # `--mlflow off`: untracked, even with $MLFLOW_TRACKING_URI set


@dataclass(frozen=True)
class TrackingTarget:
    uri: str
    experiment: str
    source: str  # "--mlflow", "tracking.uri" or "MLFLOW_TRACKING_URI": named in warnings


def resolve(spec, cli_uri: str | None = None, environ: Mapping[str, str] | None = None,
            experiment: str | None = None) -> TrackingTarget | None:
    """The target, or None for an untracked run. ``experiment`` overrides the
    pipeline's (a sweep logs every variant to its base pipeline's experiment)."""
    environ = os.environ if environ is None else environ
    experiment = experiment or spec.tracking.experiment or spec.name
    for uri, source in ((cli_uri, "--mlflow"), (spec.tracking.uri, "tracking.uri"),
                        (environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI")):
        if uri is None or not uri.strip():
            continue
        if uri.strip().lower() in OFF:
            return None
        return TrackingTarget(uri.strip(), experiment, source)
    return None
