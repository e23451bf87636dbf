"""Nested plain data as dotted keys: ``{"layers": [{"units": 32}]}`` -> ``layers.0.units``.

The same paths ``--set`` takes, so a tracked parameter, a ``diff`` line and an
override all name a field the same way.
"""

from __future__ import annotations

import math
from typing import Any, Iterator


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of nested dicts and lists under its dotted path."""
    return dict(_leaves(obj, prefix))


def _leaves(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        yield prefix.rstrip("."), obj
        return
    for k, v in items:
        yield from _leaves(v, f"{prefix}{k}.")


def numbers(obj: Any, prefix: str = "", *, lists: bool = False) -> dict[str, float]:
    """The finite numeric leaves (bools and strings left out). ``lists``: also
    descend into lists (a confusion matrix as 100 numbers is rarely wanted)."""
    out = {}
    for key, v in _leaves(obj if lists else _drop_lists(obj), prefix):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


def _drop_lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_lists(v) for k, v in obj.items() if not isinstance(v, (list, tuple))}
    return obj


def as_text(value: Any) -> str:
    """A value as ``--set`` would take it back: TOML's true/false, none for None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)
