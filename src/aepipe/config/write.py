"""Writing a pipeline back as TOML: a pipeline file plus ``--set`` items -> one file.

``aepipe tune --write-best`` uses it: the written file is the pipeline text as
the user wrote it, with the overrides folded in, so ``aepipe run`` on it
resolves to the same spec and the same stage keys. Only the shapes a pipeline
has are written: scalars, tables, arrays of tables, and tables inside those
(as inline tables).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from .parse import load_raw, read_toml


def raw_with_overrides(path: str | Path | None, overrides: Sequence[str]) -> dict:
    """The TOML dict ``config.load(path, overrides)`` validates, before validation."""
    return load_raw(path, overrides)[0]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else ("nan" if math.isnan(v) else repr(v))
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _body(table: dict) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def dumps(raw: dict) -> str:
    """``raw`` as TOML text that ``read_toml`` reads back equal."""
    scalars = {k: v for k, v in raw.items() if not isinstance(v, dict) and not _tables(v)}
    lines = _body(scalars)
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]", *_body(v)]
        elif _tables(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]", *_body(item)]
    text = "\n".join(lines).lstrip("\n") + "\n"
    if read_toml(text, "<written>") != raw:  # a shape this writer does not know
        raise ValueError("the pipeline did not survive writing as TOML")
    return text


def _tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
