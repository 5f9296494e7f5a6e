"""Object storage under one registry root: S3 (boto3) or a local directory, behind one small interface.

Keys are registry-relative POSIX paths ("models/a/b/1.0-abc/onnx/x.onnx"). Writes stream from disk
(multipart on S3, never a whole file in memory); `if_absent` is a conditional write (S3
`If-None-Match: *`, a hard link locally), so two writers of one key cannot both win.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit, urlunsplit

from pipelines.errors import ModelzooError
from pipelines.fileio import CHUNK
from pipelines.registry.manifest import safe_relpath

ENDPOINT_ENV = "MODELZOO_S3_ENDPOINT_URL"
# S3 parts: 5 MiB minimum (except the last); 16 MiB keeps memory bounded and 10,000 parts covers 156 GiB.
PART_SIZE = 16 << 20
# Served with their type, so that an S3 static-website bucket shows the registry's site.
SITE_TYPES = ("text/html", "image/svg+xml", "text/css")


class RegistryError(ModelzooError):
    """A registry object or server problem, reported as one line naming the object/URL."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Store(Protocol):
    url: str

    def open_read(self, key: str, start: int = 0) -> BinaryIO: ...
    def stat(self, key: str) -> ObjectInfo | None: ...
    def exists(self, key: str) -> bool: ...
    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> bool: ...
    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...


def _key(key: str) -> str:
    try:
        return safe_relpath(key)
    except ValueError as err:
        raise RegistryError(f"registry key {key!r}: {err}") from None


def _prefix(prefix: str) -> str:
    if prefix and (prefix.startswith("/") or ".." in prefix.split("/") or "\\" in prefix):
        raise RegistryError(f"registry prefix {prefix!r}: must be relative and stay inside the registry root")
    return prefix


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _redact(url: str) -> str:
    """A URL without user:password, for messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class LocalStore:
    """A registry in a local directory (the embedded default of a fresh clone)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.url = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.url}: not a directory: a local registry is a folder", exit_code=2)

    def _path(self, key: str) -> Path:
        path = self.root / _key(key)
        # A link inside the registry never leads out of it: nothing is read or written elsewhere.
        if not path.resolve().is_relative_to(self.root):
            raise RegistryError(f"{self.url}/{key}: a link out of the registry ({path.resolve()}): refused", 6)
        return path

    def open_read(self, key: str, start: int = 0) -> BinaryIO:
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 (returned open)
            if start:
                f.seek(start)
            return f
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise RegistryError(f"{self.url}/{key}: not found") from None
        except OSError as err:
            raise RegistryError(f"{self.url}/{key}: {err.strerror}") from None

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectInfo(key, st.st_size) if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @contextlib.contextmanager
    def _temp_beside(self, dest: Path) -> Iterator[Path]:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        except OSError as err:
            raise RegistryError(f"{self.url}: cannot write {dest.name}: {err.strerror}") from None
        os.close(fd)
        try:
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _commit(self, tmp: Path, dest: Path, if_absent: bool) -> bool:
        if not if_absent:
            os.replace(tmp, dest)
            return True
        try:
            os.link(tmp, dest)  # atomic, and fails when dest exists: the local If-None-Match
        except FileExistsError:
            return False
        return True

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> bool:
        dest = self._path(key)
        with self._temp_beside(dest) as tmp:
            try:
                with open(path, "rb") as src, open(tmp, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
            except OSError as err:
                raise RegistryError(f"{self.url}/{key}: cannot copy {path}: {err.strerror}") from None
            return self._commit(tmp, dest, if_absent)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        dest = self._path(key)
        with self._temp_beside(dest) as tmp:
            tmp.write_bytes(data)
            return self._commit(tmp, dest, if_absent)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # S3 semantics: every key starting with `prefix`, in key order; temp files are not objects.
        prefix = _prefix(prefix)
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        found = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix) and full.resolve().is_relative_to(self.root):
                    found.append(ObjectInfo(key, full.stat().st_size))
        yield from sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop empty folders up to the root, like an S3 prefix that no longer holds anything.
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def _content_type(key: str) -> dict[str, str]:
    """ContentType for keys a browser opens (the registry site's HTML, SVG, CSS); none for the rest."""
    kind, _ = mimetypes.guess_type(key, strict=True)
    return {"ContentType": kind} if kind in SITE_TYPES else {}


class _S3Body(io.RawIOBase):
    """A streaming S3 object body whose errors become RegistryError."""

    def __init__(self, body: Any, where: str, errors: Any) -> None:
        self._body, self._where, self._errors = body, where, errors

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._errors(self._where):
            return bytes(self._body.read(None if size is None or size < 0 else size))

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        super().close()


class S3Store:
    """A registry under s3://bucket/prefix (credentials from the standard AWS chain)."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        if not parts.netloc:
            raise RegistryError(f"{url}: expected s3://bucket[/prefix]")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        if self.endpoint_url is not None and not _is_http_url(self.endpoint_url):
            raise RegistryError(
                f"endpoint URL {self.endpoint_url.split('@')[-1]!r} (--endpoint-url, ${ENDPOINT_ENV} or the pin's "
                "endpoint_url): expected http(s)://host[:port]",
                exit_code=2,
            )
        self._where = self.url if not self.endpoint_url else f"{self.url} (at {_redact(self.endpoint_url)})"
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            # Checksums only when an operation requires them: S3-compatible servers differ here.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        with self._errors(self.url):
            self.client = boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def _full(self, key: str) -> str:
        key = _key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as err:
            e = err.response.get("Error", {})
            code = e.get("Code", "?")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise RegistryError(f"{what}: not found") from None
            if code == "NoSuchBucket":
                raise RegistryError(f"{what}: bucket '{self.bucket}' does not exist") from None
            msg = (e.get("Message") or "").splitlines()[0] if e.get("Message") else ""
            raise RegistryError(f"{what}: S3 {code}" + (f": {msg}" if msg else "")) from None
        except BotoCoreError as err:
            first = str(err).splitlines()[0]
            raise RegistryError(f"{what}: {first}") from None

    def _obj(self, key: str) -> str:
        return f"{self.url}/{key}"

    def open_read(self, key: str, start: int = 0) -> BinaryIO:
        """The object's bytes from offset `start` on (a range request: the rest of a partial download)."""
        extra = {"Range": f"bytes={start}-"} if start else {}
        with self._errors(self._obj(key)):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._full(key), **extra)
        return io.BufferedReader(_S3Body(resp["Body"], self._obj(key), self._errors), CHUNK)  # type: ignore[return-value]

    def stat(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        with self._errors(self._obj(key)):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return ObjectInfo(key, int(head["ContentLength"]))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @staticmethod
    def _lost_race(err: Any) -> bool:
        # 412: the key exists; 409: a concurrent conditional write to the same key is in flight.
        code = err.response.get("Error", {}).get("Code")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)

    def put_bytes(self, key: str, data: bytes | BinaryIO, *, if_absent: bool = False) -> bool:
        from botocore.exceptions import ClientError

        extra = {**_content_type(key), **({"IfNoneMatch": "*"} if if_absent else {})}
        with self._errors(self._obj(key)):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, **extra)
            except ClientError as err:
                if if_absent and self._lost_race(err):
                    return False
                raise
        return True

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> bool:
        try:
            size = Path(path).stat().st_size
        except OSError as err:
            raise RegistryError(f"{path}: cannot read: {err.strerror}") from None
        if size <= PART_SIZE:
            with open(path, "rb") as f:  # botocore streams a file body
                return self.put_bytes(key, f, if_absent=if_absent)
        return self._multipart(key, Path(path), if_absent)

    def _multipart(self, key: str, path: Path, if_absent: bool) -> bool:
        """Parts one at a time from disk; any failure aborts the upload (the lifecycle rule catches the rest)."""
        from botocore.exceptions import ClientError

        full = self._full(key)
        with self._errors(self._obj(key)):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"]
        try:
            parts = []
            with self._errors(self._obj(key)), open(path, "rb") as f:
                number = 1
                while chunk := f.read(PART_SIZE):
                    resp = self.client.upload_part(
                        Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                    number += 1
                    del chunk
                extra = {"IfNoneMatch": "*"} if if_absent else {}
                try:
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}, **extra
                    )
                except ClientError as err:
                    if if_absent and self._lost_race(err):
                        self._abort(full, upload_id)
                        return False
                    raise
        except BaseException:
            self._abort(full, upload_id)
            raise
        return True

    def _abort(self, full: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        prefix = _prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(f"{self.url}/{prefix}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][strip:], int(obj["Size"]))

    def delete(self, key: str) -> None:
        with self._errors(self._obj(key)):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def add_abort_multipart_rule(self, days: int = 1) -> None:
        """Lifecycle rule: incomplete multipart uploads (an interrupted publish) are aborted after `days`."""
        rule = {
            "ID": "modelzoo-abort-incomplete-multipart",
            "Status": "Enabled",
            "Filter": {"Prefix": f"{self.prefix}/" if self.prefix else ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
        }
        from botocore.exceptions import ClientError

        with self._errors(f"s3://{self.bucket} (lifecycle)"):
            try:
                rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                    raise
                rules = []
            rules = [r for r in rules if r.get("ID") != rule["ID"]] + [rule]
            self.client.put_bucket_lifecycle_configuration(Bucket=self.bucket, LifecycleConfiguration={"Rules": rules})

    def lifecycle_rules(self) -> builtins.list[dict[str, Any]]:
        with self._errors(f"s3://{self.bucket} (lifecycle)"):
            return list(self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", []))


def open_store(url: str, endpoint_url: str | None = None) -> Store:
    """The store behind a registry URL: s3://bucket/prefix, http(s)://... (read-only), or a local path."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as err:
        raise RegistryError(f"registry URL {url.split('@')[-1]!r}: {err}", exit_code=2) from None
    if scheme == "s3":
        return S3Store(url, endpoint_url)
    if scheme in ("http", "https"):
        try:
            from pipelines.registry.http_store import HttpStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise RegistryError(f"{_redact(url)}: HTTP registries are not supported by this modelzoo") from None
        return HttpStore(url)  # type: ignore[no-any-return]
    if scheme == "file":
        return LocalStore(Path(urlsplit(url).path))
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise RegistryError(f"{_redact(url)}: unsupported registry URL (use s3://, http(s)://, file:// or a path)")
    return LocalStore(Path(url))
