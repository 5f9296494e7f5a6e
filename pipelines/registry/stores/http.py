"""A read-only registry over plain HTTP(S): GET <base>/<key>, what `curl` or Ansible's `get_url` would do.

Serves a registry published to a public S3 bucket or CDN (`https://bucket.s3.amazonaws.com/prefix`),
or any web server exporting a registry directory. Listing and writing need the S3 or local back end.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn
from urllib.parse import quote, urlsplit

from pipelines.registry.stores.base import ObjectInfo, RegistryError, check_key, redact

TIMEOUT_S = 30.0


class HttpStore:
    """Objects under an http(s):// base URL; read-only."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{redact(url)}: expected http(s)://host[/prefix]")
        self.base = url.rstrip("/")
        self.url = redact(self.base)
        self.timeout = timeout

    def _url(self, key: str) -> str:
        return f"{self.base}/{quote(check_key(key))}"

    def _request(self, key: str, method: str, start: int = 0) -> http.client.HTTPResponse:
        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            return urllib.request.urlopen(  # type: ignore[no-any-return]
                urllib.request.Request(self._url(key), method=method, headers=headers), timeout=self.timeout
            )
        except urllib.error.HTTPError as err:
            err.close()
            if err.code in (403, 404):
                # A public bucket answers 403 for a key that does not exist.
                raise RegistryError(f"{self.url}/{key}: not found (HTTP {err.code})") from None
            raise RegistryError(f"{self.url}/{key}: HTTP {err.code} {err.reason}") from None
        except urllib.error.URLError as err:
            raise RegistryError(f"{self.url}/{key}: cannot connect: {err.reason}") from None
        except (OSError, http.client.HTTPException) as err:
            raise RegistryError(f"{self.url}/{key}: {type(err).__name__}: {err}") from None

    def open_read(self, key: str, start: int = 0) -> BinaryIO:
        """The object's bytes from offset `start` on: a range request; a server that ignores the range
        (200, not 206) sends the whole object, whose first `start` bytes are skipped here."""
        resp = self._request(key, "GET", start)
        body = _Body(resp, f"{self.url}/{key}")
        if start and resp.status != 206:
            left = start
            while left and (skipped := body.read(min(left, 1 << 20))):
                left -= len(skipped)
        return body  # type: ignore[return-value]

    def stat(self, key: str) -> ObjectInfo | None:
        # A GET closed after its headers, not a HEAD: what a public-read bucket policy (s3:GetObject) allows.
        try:
            resp = self._request(key, "GET")
        except RegistryError as err:
            if "not found" in str(err):
                return None
            raise
        with resp:
            length = resp.headers.get("Content-Length")
        if length is None:
            raise RegistryError(f"{self.url}/{key}: no Content-Length in the response")
        return ObjectInfo(key, int(length))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def _read_only(self, what: str) -> NoReturn:
        raise RegistryError(f"{self.url}: an HTTP registry is read-only (cannot {what}; use its s3:// URL)")

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> bool:
        self._read_only(f"write {key}")

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        self._read_only(f"write {key}")

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._read_only(f"list {prefix or '/'}")

    def delete(self, key: str) -> None:
        self._read_only(f"delete {key}")


class _Body:
    """A streaming response body whose network errors become RegistryError."""

    def __init__(self, resp: http.client.HTTPResponse, where: str) -> None:
        self._resp, self._where = resp, where

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._resp.read(size if size is not None and size >= 0 else None)
        except (OSError, http.client.HTTPException) as err:
            raise RegistryError(f"{self._where}: download interrupted: {type(err).__name__}") from None
        if not data and size != 0 and self._resp.length:
            # read(n) answers b"" when the connection closes early; `length` is what Content-Length still owes.
            raise RegistryError(
                f"{self._where}: download interrupted: connection closed {self._resp.length} bytes early"
            )
        return data

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
