"""One builder per stage across machines: a lease object per stage.

``leases/<stage>.json`` is created with a conditional put (``If-None-Match: *``),
so two machines cannot both create it; its holder rewrites it (``If-Match`` its
last ETag) every third of the lease while the stage trains. A lease the server
has not seen renewed for a whole lease (its holder was killed, or lost its
network) is taken over with ``If-Match`` on the stale ETag, so only one of
several waiters wins it. Times are the server's (``Last-Modified`` against the
response's ``Date``), so machines' clocks need not agree.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from ...config.redact import redact
from ...errors import LockBusy, StoreError
from .bucket import Bucket, ConditionFailed

LEASE_SECONDS = 60.0


def lease_seconds() -> float:
    """``AEPIPE_LEASE_SECONDS`` (tests shorten it), else a minute."""
    value = os.environ.get("AEPIPE_LEASE_SECONDS")
    try:
        return max(1.0, float(value)) if value else LEASE_SECONDS
    except ValueError:
        raise StoreError(f"AEPIPE_LEASE_SECONDS must be a number of seconds, got {value!r}") from None


def lease_path(name: str) -> str:
    return f"leases/{name}.json"


def describe(info: dict) -> str:
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} ({info.get('command', '?')})"


def live_holder(bucket: Bucket, name: str, seconds: float | None = None) -> str | None:
    """Who holds stage ``name``'s lease now, or None (no lease, or an expired one)."""
    head = bucket.head(lease_path(name))
    if head is None or _expired(head, seconds or lease_seconds()):
        return None
    got = bucket.get(lease_path(name))
    return describe(_parse(got[0])) if got else None


def _expired(head: dict, seconds: float) -> bool:
    now, modified = head.get("now"), head.get("LastModified")
    return now is not None and modified is not None and (now - modified).total_seconds() > seconds


def _parse(data: bytes) -> dict:
    try:
        info = json.loads(data)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


class Lease:
    """Held between ``acquire`` and ``release``; ``lost`` is set if another machine took it over."""

    def __init__(self, bucket: Bucket, name: str, seconds: float | None = None):
        self.bucket, self.name, self.rel = bucket, name, lease_path(name)
        self.seconds = seconds or lease_seconds()
        self.lost = threading.Event()
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": redact(" ".join(sys.argv)), "seconds": self.seconds}).encode()

    def acquire(self, wait: bool = True, log=None) -> "Lease":
        said = False
        while True:
            try:
                self._etag = self.bucket.put(self.rel, self._body, create=True)
                break
            except ConditionFailed:
                pass
            head = self.bucket.head(self.rel)
            if head is None:
                continue  # released between the two requests
            if _expired(head, self.seconds):
                try:  # only one waiter's If-Match on the stale ETag succeeds
                    self._etag = self.bucket.put(self.rel, self._body, if_match=head["ETag"])
                    if log:
                        log(f"stage {self.name}: its lease in {self.bucket.url} expired; taking it over")
                    break
                except ConditionFailed:
                    continue
            got = self.bucket.get(self.rel)
            holder = describe(_parse(got[0])) if got else "another machine"
            if not wait:
                raise LockBusy(f"stage {self.name} is being built by {holder} (lease in {self.bucket.url}); "
                               "rerun later or drop --no-wait")
            if log and not said:
                log(f"waiting for {holder}, which holds the lease on stage {self.name} in {self.bucket.url}")
                said = True
            time.sleep(min(1.0, self.seconds / 4))
        self._thread = threading.Thread(target=self._renew, name=f"aepipe-lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self._etag = self.bucket.put(self.rel, self._body, if_match=self._etag)
            except ConditionFailed:
                self.lost.set()  # taken over: this build must not publish over the new holder's
                return
            except StoreError:
                continue  # a network blip: the next renewal may get through before the lease runs out

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost.is_set() and self._etag:
            try:
                self.bucket.delete(self.rel, if_match=self._etag)
            except (ConditionFailed, StoreError):
                pass  # taken over, or unreachable: it expires by itself
