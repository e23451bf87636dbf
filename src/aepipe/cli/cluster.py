"""``aepipe cluster PIPELINE``: the pretraining, unroll and cluster stages, and a run report."""

from __future__ import annotations

from .phases import phase_command

cluster = phase_command("cluster")
