"""One S3 prefix through s3fs: plain and conditional object writes, every
failure one ``StoreError`` naming the store and its endpoint (user-info masked).

Credentials and the endpoint come from where boto looks for them
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``~/.aws/config``...); nothing
here reads, keeps or prints them.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
from pathlib import Path

from ...config.redact import redact
from ...errors import StoreError

CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict")


class ConditionFailed(Exception):
    """A conditional write or delete lost: the object exists, or changed since it was read."""


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    rest = url.split("://", 1)[1].strip("/")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def endpoint() -> str:
    """The endpoint boto will use, for messages only: masked user-info, or 'AWS'."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return redact(url) if url else "AWS"


def _code(error: BaseException) -> str | None:
    for e in (error, error.__cause__, error.__context__):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            return response.get("Error", {}).get("Code")
    return None


class Bucket:
    """Objects under ``s3://bucket/prefix``, named by their path below the prefix."""

    def __init__(self, url: str):
        self.url = redact(url.rstrip("/"))
        self.bucket, self.prefix = split_url(url)
        self._fs = None
        self._pid = None

    @property
    def fs(self):
        if self._fs is None or self._pid != os.getpid():  # a forked worker opens its own connections
            try:
                import s3fs
            except ImportError:
                raise StoreError("an s3:// artifact store needs s3fs: pip install 'aepipe[s3]'") from None
            # a few quick retries: an unreachable endpoint is an error in seconds, not minutes
            self._fs = s3fs.S3FileSystem(skip_instance_cache=True, config_kwargs={
                "connect_timeout": 3, "read_timeout": 60, "retries": {"max_attempts": 2, "mode": "standard"}})
            self._fs.retries = 2  # s3fs's own retry loop, around botocore's
            self._pid = os.getpid()
        return self._fs

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def path(self, rel: str) -> str:
        return f"{self.bucket}/{self.key(rel)}"

    @contextlib.contextmanager
    def errors(self, what: str):
        """Any failure below as one line: the store, the endpoint, what was tried, why."""
        try:
            yield
        except ConditionFailed:
            raise
        except FileNotFoundError:
            raise
        except Exception as e:  # botocore, aiohttp and OSError all end here
            if _code(e) in CONDITION_FAILED:
                raise ConditionFailed(what) from None
            reason = redact(str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise StoreError(f"artifact store {self.url} (endpoint {endpoint()}): cannot {what}: {reason}") from None

    def call(self, op: str, what: str, **kw) -> dict:
        with self.errors(what):
            return self.fs.call_s3(op, Bucket=self.bucket, **kw)

    def check(self) -> None:
        """Fail now, naming the store, if its bucket cannot be reached."""
        fs = self.fs
        try:
            fs.call_s3("head_bucket", Bucket=self.bucket)
            return
        except Exception as e:  # noqa: BLE001 -- sorted out below, as every other call's
            error = e
        if isinstance(error, FileNotFoundError) or _code(error) in ("404", "NoSuchBucket"):
            raise StoreError(f"artifact store {self.url} (endpoint {endpoint()}): bucket {self.bucket!r} "
                             "does not exist; create it first")
        with self.errors("reach its bucket"):
            raise error

    # single objects
    def head(self, rel: str) -> dict | None:
        """Its metadata (``ETag``, ``LastModified``, and the server's ``now``), or None."""
        try:
            r = self.call("head_object", f"read {rel}", Key=self.key(rel))
        except FileNotFoundError:
            return None
        date = r.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        return {**r, "now": email.utils.parsedate_to_datetime(date) if date else None}

    def get(self, rel: str) -> tuple[bytes, str] | None:
        """Its bytes and ETag, or None."""
        try:
            r = self.call("get_object", f"read {rel}", Key=self.key(rel))
        except FileNotFoundError:
            return None
        with self.errors(f"read {rel}"):
            data = _read_body(self.fs, r["Body"])
        return data, r["ETag"]

    def put(self, rel: str, data: bytes, *, create: bool = False, if_match: str | None = None) -> str:
        """Write it; ``create``: only if absent, ``if_match``: only if unchanged since that ETag
        (``ConditionFailed`` otherwise). Returns the new ETag."""
        cond = {"IfNoneMatch": "*"} if create else {"IfMatch": if_match} if if_match else {}
        try:
            return self.call("put_object", f"write {rel}", Key=self.key(rel), Body=data, **cond)["ETag"]
        except FileExistsError:
            raise ConditionFailed(rel) from None

    def delete(self, rel: str, if_match: str | None = None) -> None:
        cond = {"IfMatch": if_match} if if_match else {}
        try:
            self.call("delete_object", f"delete {rel}", Key=self.key(rel), **cond)
        except FileNotFoundError:
            pass

    # files and trees
    def upload(self, local: Path, rel: str) -> None:
        with self.errors(f"upload {rel}"):
            self.fs.put_file(str(local), self.path(rel))

    def download(self, rel: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        with self.errors(f"download {rel}"):
            self.fs.get_file(self.path(rel), str(local))

    def list(self, rel: str) -> list[str]:
        """Every object below ``rel``, as paths below the store's prefix."""
        base = self.path("")
        try:
            with self.errors(f"list {rel}"):
                found = self.fs.find(self.path(rel))
        except FileNotFoundError:
            return []
        return [p[len(base):] for p in found]

    def copy(self, src: str, dst: str) -> None:
        with self.errors(f"copy {src}"):
            self.fs.copy(self.path(src), self.path(dst))


def _read_body(fs, body) -> bytes:
    """aiobotocore's streaming body, read on s3fs's own event loop."""
    from fsspec.asyn import sync

    async def read():
        async with body as stream:
            return await stream.read()

    return sync(fs.loop, read)
