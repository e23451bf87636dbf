"""Secrets stay secret: the user-info of a URI (``http://alice:TOKEN@host/``) is
never written or printed. In ``config`` so every layer (the store's lock files,
run directories, reports, tracking, the CLI's messages) uses the same rule."""

from __future__ import annotations

import re
from typing import Any

# scheme://user-info@ : everything between "//" and the last "@" before the path
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]+)@")
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the user-info of every URI in it masked: ``http://***@host/``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text) if "@" in text else text


def redact_values(obj: Any) -> Any:
    """A JSON-like structure (a spec's dict, a run record) with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_values(v) for v in obj)
    return obj
