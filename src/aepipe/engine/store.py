"""Content-addressed artifact store: atomic, verified, locked.

A stage lives in ``stages/<kind>-<key[:16]>/``. It is built in the sibling
``<name>.partial/`` (which also holds its per-epoch checkpoints) and published
with one ``os.replace`` after ``manifest.json`` -- written last -- records the
sha256 and size of every file. A directory without a valid manifest is not a
stage; a stage whose files disagree with its manifest is corrupt and never
loaded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..config.redact import redact
from ..errors import LockBusy, StoreError
from .atomic import atomic_write_json, fsync_path, json_default
from .layout import CHECKPOINT_DIR, MANIFEST

FORMAT_VERSION = 1  # the layout of a stage directory and its manifest; each stage kind has its own code version


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own ``checksum``: a
    flipped byte that still parses (a digit of a size or a hash) is caught too."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     default=json_default).encode()).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20, sync: bool = False) -> str:
    """Its sha256; with ``sync``, also flushed to disk (outputs of h5py and
    ``np.save`` are not), so a published stage survives a power cut."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


# ---------------------------------------------------------------- keys


def stage_key(kind: str, version: int, params: dict, upstream: list[str], fingerprint: str) -> str:
    """sha256 of canonical JSON of exactly what determines the stage's output,
    with the code version of its kind (``plan.STAGE_VERSIONS``)."""
    doc = {"format": FORMAT_VERSION, "kind": kind, "version": version, "params": params,
           "upstream": list(upstream), "data": fingerprint}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------- the store


@dataclass(frozen=True)
class StageStatus:
    status: str  # cached | missing | corrupt | partial
    reason: str = ""


class CorruptStage(StoreError):
    def __init__(self, name: str, reason: str):
        self.reason = reason
        super().__init__(f"stage {name} is corrupt: {reason}")


class StageWriteError(StoreError):
    """An OS error (disk full, permission denied) while building a stage."""

    def __init__(self, name: str, error: OSError):
        what = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else (
            error.strerror or str(error) or type(error).__name__)
        super().__init__(f"cannot build stage {name}: {what}; published stages are untouched")


class Store:
    """One artifacts directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"artifacts directory {str(self.root)!r} is a file, not a directory")
        self.stages = self.root / "stages"
        self.runs = self.root / "runs"
        self.quarantine_dir = self.root / "quarantine"
        self.locks = self.root / "locks"

    @property
    def location(self) -> str:
        """What reopens this store in another process (``engine.remote.open_store``)."""
        return str(self.root)

    def share(self, path: Path) -> None:
        """Make a run directory visible to other machines: here it already is (see ``RemoteStore``)."""

    def ensure(self) -> None:
        try:
            for d in (self.stages, self.runs, self.locks):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create artifacts directory {str(self.root)!r}: {e.strerror}") from None

    # names and paths
    @staticmethod
    def name(kind: str, key: str) -> str:
        return f"{kind}-{key[:16]}"

    def path(self, kind: str, key: str) -> Path:
        return self.stages / self.name(kind, key)

    def partial_path(self, kind: str, key: str) -> Path:
        return self.stages / f"{self.name(kind, key)}.partial"

    # reading
    def status(self, kind: str, key: str) -> StageStatus:
        return self.lookup(kind, key)[0]

    def lookup(self, kind: str, key: str) -> "tuple[StageStatus, Stage | None]":
        """The stage's status and, when cached, the verified stage: one pass
        over its files (hashing MNIST-sized encodings twice is not free)."""
        d = self.path(kind, key)
        if d.is_dir():
            try:
                return StageStatus("cached"), Stage(d, self.verify(d, key))
            except CorruptStage as e:
                return StageStatus("corrupt", e.reason), None
        if _has_checkpoint(self.partial_path(kind, key)):
            return StageStatus("partial", "interrupted; a rerun resumes from its last checkpoint"), None
        return StageStatus("missing"), None

    def verify(self, d: Path, key: str | None = None) -> dict:
        """Check the manifest and every file it lists; return the manifest."""
        name = d.name
        try:
            manifest = json.loads((d / MANIFEST).read_text())
        except FileNotFoundError:
            raise CorruptStage(name, f"{MANIFEST} is missing") from None
        except (ValueError, OSError, UnicodeDecodeError):
            raise CorruptStage(name, f"{MANIFEST} is not valid JSON") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise CorruptStage(name, f"{MANIFEST} has no file table")
        # manifests written before the checksum existed are still checked file by file
        if "checksum" in manifest and manifest["checksum"] != manifest_checksum(manifest):
            raise CorruptStage(name, f"{MANIFEST} does not match its checksum")
        if key is not None and manifest.get("key") != key:
            raise CorruptStage(name, f"{MANIFEST} names key {str(manifest.get('key'))[:16]}, not {key[:16]}")
        for rel, meta in manifest["files"].items():
            f = d / rel
            try:
                size = f.stat().st_size
            except FileNotFoundError:
                raise CorruptStage(name, f"{rel} is missing") from None
            except OSError as e:
                raise CorruptStage(name, f"{rel} cannot be read ({e.strerror})") from None
            if not isinstance(meta, dict) or size != meta.get("size"):
                raise CorruptStage(name, f"{rel} has {size} bytes, {MANIFEST} says {meta.get('size')}")
            if sha256_file(f) != meta.get("sha256"):
                raise CorruptStage(name, f"{rel} does not match its sha256")
        return manifest

    def rebuild(self, kind: str, key: str) -> Path | None:
        """``--rebuild``: the published stage moves to quarantine (kept as
        evidence until ``aepipe clean``) and its checkpoints go, so the next
        build starts from epoch 0."""
        shutil.rmtree(self.partial_path(kind, key), ignore_errors=True)
        d = self.path(kind, key)
        return self.quarantine(d) if d.is_dir() else None

    def load(self, kind: str, key: str) -> "Stage":
        d = self.path(kind, key)
        return Stage(d, self.verify(d, key))

    # writing
    def begin(self, kind: str, key: str) -> Path:
        """The partial directory to build the stage in; kept if it exists, so
        its checkpoints can be resumed."""
        self.ensure()
        p = self.partial_path(kind, key)
        try:
            p.mkdir(exist_ok=True)
            _clear_all_but_checkpoints(p)
        except OSError as e:
            raise StoreError(f"cannot write stage {p.name}: {e.strerror}") from None
        return p

    def abandon(self, kind: str, key: str) -> None:
        """After a failed build: a partial directory with a checkpoint stays for
        the rerun to resume; one without is removed, so bad input leaves nothing."""
        p = self.partial_path(kind, key)
        if p.is_dir() and not _has_checkpoint(p):
            shutil.rmtree(p, ignore_errors=True)

    def publish(self, kind: str, key: str, manifest: dict) -> "Stage":
        """Hash (and fsync) every output file, write the manifest last, publish
        with one rename. Checkpoints are not outputs: they stay out of the
        manifest and are dropped only after the rename, so a publish that fails
        (disk full, permission denied) can still be resumed."""
        partial = self.partial_path(kind, key)
        files = {}
        for f in sorted(partial.rglob("*")):
            rel = f.relative_to(partial)
            if f.is_file() and rel.as_posix() != MANIFEST and CHECKPOINT_DIR not in rel.parts:
                files[rel.as_posix()] = {"size": f.stat().st_size, "sha256": sha256_file(f, sync=True)}
        manifest = {**manifest, "kind": kind, "key": key, "format": FORMAT_VERSION,
                    "files": files, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "versions": _versions()}
        manifest["checksum"] = manifest_checksum(manifest)
        atomic_write_json(partial / MANIFEST, manifest)
        final = self.path(kind, key)
        if final.exists():
            self.quarantine(final)
        fsync_path(partial)
        os.replace(partial, final)
        fsync_path(self.stages)
        for ckpt in sorted(final.rglob(CHECKPOINT_DIR), reverse=True):
            shutil.rmtree(ckpt, ignore_errors=True)
        return Stage(final, manifest)

    def quarantine(self, d: Path) -> Path:
        """Move a corrupt stage aside (never delete evidence)."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        dest = self.quarantine_dir / f"{d.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.replace(d, dest)
        return dest

    # locking
    @contextlib.contextmanager
    def stage_lock(self, name: str, wait: bool = True, log=None):
        """An fcntl lock per stage: two runs never build the same stage at once.
        The kernel drops the lock when its holder dies, so stale locks cannot stick."""
        self.ensure()
        lock_path = self.locks / f"{name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(lock_path)
                if not wait:
                    raise LockBusy(f"stage {name} is being built by {holder}; rerun later or drop --no-wait") from None
                if log:
                    log(f"waiting for {holder}, which is building stage {name}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "command": redact(" ".join(sys.argv))}).encode())
            yield
        finally:
            os.close(fd)

    def is_locked(self, name: str) -> bool:
        """Whether a live process holds stage ``name``'s lock (is building it)."""
        lock_path = self.locks / f"{name}.lock"
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def holder(self, name: str) -> str | None:
        """Who is building stage ``name`` right now ("pid N (command)"), or None."""
        return _read_holder(self.locks / f"{name}.lock") if self.is_locked(name) else None

    def checkpoint_epoch(self, kind: str, key: str) -> int | None:
        """The last finished epoch an interrupted build left, or None."""
        for state in self.partial_path(kind, key).rglob(f"{CHECKPOINT_DIR}/state.json"):
            try:
                return int(json.loads(state.read_text())["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return None

    def stage_dirs(self) -> list[Path]:
        return sorted(self.stages.glob("*")) if self.stages.is_dir() else []


@dataclass(frozen=True)
class Stage:
    """A published, verified stage."""

    path: Path
    manifest: dict

    def file(self, rel: str) -> Path:
        return self.path / rel

    @property
    def digest(self) -> str:
        """sha256 of its file table: what downstream stages record they were built from."""
        files = json.dumps(self.manifest["files"], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(files.encode()).hexdigest()


def _read_holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info.get("pid"):
        return "another process"  # it has the lock but has not written its name yet
    command = info.get("command")
    return f"pid {info['pid']} ({redact(command) if isinstance(command, str) else command!r})"


def _has_checkpoint(partial: Path) -> bool:
    """A finished epoch to resume from, the stage's own or a nested one (evaluate's baseline)."""
    return partial.is_dir() and any(partial.rglob(f"{CHECKPOINT_DIR}/state.json"))


def _clear_all_but_checkpoints(d: Path) -> None:
    """What a killed build left (half-written outputs, temp files) goes; its
    checkpoints stay, so the rebuild resumes and rewrites every output."""
    for p in d.iterdir():
        if p.name == CHECKPOINT_DIR:
            continue
        if p.is_dir() and not p.is_symlink():
            _clear_all_but_checkpoints(p)
            if not any(p.iterdir()):
                p.rmdir()
        else:
            p.unlink()


def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for mod in ("keras", "tensorflow", "numpy", "sklearn"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out
