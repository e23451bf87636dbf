"""Artifact stores on object storage (``s3://bucket/prefix``); see ``store``."""

from __future__ import annotations

from pathlib import Path

from ...config.redact import redact
from ...errors import BadArgument

SCHEMES = ("s3",)


def is_remote(location) -> bool:
    return isinstance(location, str) and "://" in location


def open_store(location, cache=None):
    """A local ``Store`` for a directory, a ``RemoteStore`` for ``s3://bucket[/prefix]``."""
    from ..store import Store

    if not is_remote(location):
        return Store(Path(location))
    scheme, _, rest = location.partition("://")
    if scheme not in SCHEMES or not rest.strip("/") or "@" in rest.split("/", 1)[0]:
        raise BadArgument(f"--artifacts {redact(location)!r}: "
                          "a remote store is s3://BUCKET[/PREFIX] (endpoint and credentials come from "
                          "AWS_ENDPOINT_URL and the AWS environment or config)")
    from .store import RemoteStore

    return RemoteStore(location, cache)
