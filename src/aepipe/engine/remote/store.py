"""The artifact store on S3-compatible object storage, through a local read-through cache.

Stages are built and published in the local cache directory exactly as in a
local store, then published remotely: every file first, ``manifest.json`` last
with a conditional put, so a stage is remote whole or not at all and two
writers never both publish one key. A stage missing from the cache is fetched
(every file checked against the manifest's sha256) into a temporary sibling and
moved in with one rename. A remote stage that fails the check is moved under
``quarantine/`` in the bucket and rebuilt. The per-stage fcntl lock still
serialises processes of one machine; a lease object serialises machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from ..layout import MANIFEST
from ..store import CorruptStage, Stage, StageStatus, Store, manifest_checksum
from .bucket import Bucket, ConditionFailed
from .lease import Lease, live_holder


def default_cache(url: str) -> Path:
    """``$AEPIPE_CACHE``, else a per-user directory named by the store's URL."""
    if os.environ.get("AEPIPE_CACHE"):
        return Path(os.environ["AEPIPE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "aepipe" / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


class RemoteStore(Store):
    """``s3://bucket/prefix``, mirrored in a local cache directory (``root``)."""

    def __init__(self, url: str, cache: str | Path | None = None):
        super().__init__(cache or default_cache(url))
        self.bucket = Bucket(url)
        self.url = url
        self.fetch = True  # False (aepipe status): read remote manifests, download nothing
        self._reached = False
        self._leases: dict[str, Lease] = {}
        self._moved: dict[str, tuple[str, str]] = {}  # remote copies lookup quarantined: (where, why)

    @property
    def location(self) -> str:
        return self.url

    def _reach(self) -> None:
        if not self._reached:
            self.bucket.check()
            self._reached = True

    def ensure(self) -> None:
        self._reach()
        super().ensure()

    # ------------------------------------------------------------ reading

    def lookup(self, kind: str, key: str):
        self._reach()
        st, stage = super().lookup(kind, key)
        name = self.name(kind, key)
        if st.status == "cached":
            if self.fetch and self.bucket.head(self._rel(name, MANIFEST)) is None:
                self._upload(stage)  # built here while the store was unreachable, or quarantined there
            return st, stage
        if st.status == "corrupt" and self.fetch:  # a cache copy: set aside; the remote one may be whole
            Store.quarantine(self, self.path(kind, key))
            st, stage = super().lookup(kind, key)
        remote = self._remote(kind, key)
        if remote is not None:
            return remote
        if st.status == "missing" and name in self._moved:  # said until the runner moves on
            return StageStatus("corrupt", self._moved[name][1]), None
        return st, stage

    def load(self, kind: str, key: str) -> Stage:
        """The verified stage, fetched first if this machine's cache lacks it."""
        if not self.path(kind, key).is_dir():
            st, stage = self.lookup(kind, key)
            if stage is not None and self.fetch:
                return stage
        return super().load(kind, key)

    def _remote(self, kind: str, key: str):
        """The remote copy as (status, stage), or None where there is none."""
        name = self.name(kind, key)
        got = self.bucket.get(self._rel(name, MANIFEST))
        if got is None:
            return None
        data, etag = got
        try:
            if not self.fetch:
                return StageStatus("cached", "in the remote store; not yet in the local cache"), \
                    Stage(self.path(kind, key), _manifest(name, data, key))
            return StageStatus("cached"), self._download(kind, key, data)
        except CorruptStage as e:
            if not self.fetch:
                return StageStatus("corrupt", f"remote copy: {e.reason}"), None
            reason = f"remote copy: {e.reason}"
            dest = self._quarantine_remote(name, etag)
            if dest:
                self._moved[name] = (dest, reason)
            return StageStatus("corrupt", reason), None

    def _download(self, kind: str, key: str, manifest_bytes: bytes) -> Stage:
        name = self.name(kind, key)
        manifest = _manifest(name, manifest_bytes, key)
        super().ensure()
        tmp = self.stages / f".{name}.download-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            for rel in manifest["files"]:
                try:
                    self.bucket.download(self._rel(name, rel), tmp / rel)
                except FileNotFoundError:
                    raise CorruptStage(name, f"{rel} is missing") from None
            (tmp / MANIFEST).write_bytes(manifest_bytes)
            manifest = self.verify(tmp, key)  # every file against its sha256
            final = self.path(kind, key)
            if final.exists():  # a corrupt cache copy another process left meanwhile
                Store.quarantine(self, final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Stage(self.path(kind, key), manifest)

    def holder(self, name: str) -> str | None:
        return super().holder(name) or live_holder(self.bucket, name)

    # ------------------------------------------------------------ writing

    @contextlib.contextmanager
    def stage_lock(self, name: str, wait: bool = True, log=None):
        """This machine's fcntl lock, then the stage's lease in the bucket."""
        with super().stage_lock(name, wait=wait, log=log):
            self._reach()
            lease = Lease(self.bucket, name).acquire(wait=wait, log=log)
            self._leases[name] = lease
            try:
                yield
            finally:
                self._leases.pop(name, None)
                lease.release()

    def publish(self, kind: str, key: str, manifest: dict) -> Stage:
        stage = super().publish(kind, key, manifest)
        return self._upload(stage)

    def _upload(self, stage: Stage) -> Stage:
        """Files first, the manifest last and only if absent. Where another machine
        published first (its lease expired under it), its copy wins everywhere."""
        name = stage.path.name
        lease = self._leases.get(name)
        if (lease is None or not lease.lost.is_set()) and self.bucket.head(self._rel(name, MANIFEST)) is None:
            for rel in stage.manifest["files"]:
                self.bucket.upload(stage.path / rel, self._rel(name, rel))
            try:
                self.bucket.put(self._rel(name, MANIFEST), (stage.path / MANIFEST).read_bytes(), create=True)
                return stage
            except ConditionFailed:
                pass
        kind, key = stage.manifest["kind"], stage.manifest["key"]
        Store.quarantine(self, stage.path)
        st, theirs = self._remote(kind, key) or (StageStatus("missing"), None)
        if theirs is None:
            raise CorruptStage(name, f"published meanwhile by another machine, and its copy is {st.status}: "
                                     f"{st.reason or 'gone'}; rerun to rebuild it")
        return theirs

    def quarantine(self, d: Path) -> str | Path:
        """The cache copy and the remote copy both move aside (never deleted)."""
        dest = Store.quarantine(self, d) if d.is_dir() else None
        if d.name in self._moved:
            return self._moved.pop(d.name)[0]
        remote = self._quarantine_remote(d.name)
        return remote or dest

    def rebuild(self, kind: str, key: str):
        dest = super().rebuild(kind, key)
        if dest is None:  # not cached here: the remote copy still goes
            dest = self._quarantine_remote(self.name(kind, key))
        return dest

    def _quarantine_remote(self, name: str, etag: str | None = None) -> str | None:
        """Move ``stages/<name>/`` under ``quarantine/``: the manifest first (only if
        unchanged since read), so no reader sees the stage while it moves."""
        files = [f for f in self.bucket.list(f"stages/{name}/")]
        if not files:
            return None
        dest = f"quarantine/{name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        manifest = self._rel(name, MANIFEST)
        if manifest in files:
            head = self.bucket.head(manifest)
            if head is not None:
                self.bucket.copy(manifest, f"{dest}/{MANIFEST}")
                try:
                    self.bucket.delete(manifest, if_match=etag or head["ETag"])
                except ConditionFailed:
                    return None  # republished meanwhile: that copy stays
        for f in files:
            if f != manifest:
                self.bucket.copy(f, f"{dest}/{f[len(f'stages/{name}/'):]}")
                self.bucket.delete(f)
        return f"{self.bucket.url}/{dest}"

    # ------------------------------------------------------------ run directories

    def share(self, path: Path) -> None:
        """Upload a run directory (or one file) under the same path in the bucket."""
        path = Path(path)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            self.bucket.upload(f, f.relative_to(self.root).as_posix())

    def pull_runs(self) -> None:
        """Every run directory in the bucket, into the cache (``aepipe runs``, ``diff``, ``report``)."""
        self._reach()
        for rel in self.bucket.list("runs/"):
            local = self.root / rel
            if not local.exists():
                self.bucket.download(rel, local)

    @staticmethod
    def _rel(name: str, rel: str) -> str:
        return f"stages/{name}/{rel}"


def _manifest(name: str, data: bytes, key: str) -> dict:
    """A remote manifest's own checks (its checksum, its key), before any file is fetched."""
    try:
        manifest = json.loads(data)
    except ValueError:
        raise CorruptStage(name, f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CorruptStage(name, f"{MANIFEST} has no file table")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise CorruptStage(name, f"{MANIFEST} does not match its checksum")
    if manifest.get("key") != key:
        raise CorruptStage(name, f"{MANIFEST} names key {str(manifest.get('key'))[:16]}, not {key[:16]}")
    return manifest
