"""A registry under s3://bucket/prefix (boto3; credentials from the standard AWS chain).

Writes stream from disk (multipart above PART_SIZE, never a whole file in memory); `if_absent` is S3's
`If-None-Match: *`.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from pipelines.fileio import CHUNK
from pipelines.registry.stores.base import ObjectInfo, RegistryError, check_key, check_prefix, redact

# S3 parts: 5 MiB minimum (except the last); 16 MiB keeps memory bounded and 10,000 parts covers 156 GiB.
PART_SIZE = 16 << 20
# Served with their type, so that an S3 static-website bucket shows the registry's site.
SITE_TYPES = ("text/html", "image/svg+xml", "text/css")


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
        # Checked and taken from the flag, environment or pin by RegistryLocation, never read here.
        self.endpoint_url = endpoint_url or None
        self._where = self.url if not self.endpoint_url else f"{self.url} (at {redact(self.endpoint_url)})"
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
        key = check_key(key)
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
        prefix = check_prefix(prefix)
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
