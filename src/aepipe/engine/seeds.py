"""Seeds derived from names, never from hidden global state (no TensorFlow here)."""

from __future__ import annotations

import hashlib
import json


def derive_seed(*parts) -> int:
    """A 31-bit seed from any parts (pipeline seed, stage key, epoch...)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
