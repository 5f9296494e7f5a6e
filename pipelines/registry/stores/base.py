"""What every registry store is: the protocol, its errors, and the key and URL checks all stores share.

Keys are registry-relative POSIX paths ("models/a/b/1.0-abc/onnx/x.onnx"). Writes stream from disk;
`if_absent` is a conditional write, so two writers of one key cannot both win.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit, urlunsplit

from pipelines.errors import ModelzooError


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


def safe_relpath(path: str) -> str:
    """A registry- or destination-relative path that cannot escape its root (ValueError otherwise)."""
    norm = posixpath.normpath(path)
    if (
        not path
        or path.startswith(("/", "\\"))
        or "\\" in path
        or norm.startswith("..")
        or norm != path
        or re.match(r"^[A-Za-z]:", path)
    ):
        raise ValueError(f"unsafe path {path!r}: must be relative, normalized and stay inside its root")
    return path


def check_key(key: str) -> str:
    """A registry key, or RegistryError naming it."""
    try:
        return safe_relpath(key)
    except ValueError as err:
        raise RegistryError(f"registry key {key!r}: {err}") from None


def check_prefix(prefix: str) -> str:
    if prefix and (prefix.startswith("/") or ".." in prefix.split("/") or "\\" in prefix):
        raise RegistryError(f"registry prefix {prefix!r}: must be relative and stay inside the registry root")
    return prefix


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def redact(url: str) -> str:
    """A URL without user:password, for messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url
