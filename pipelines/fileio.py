"""Atomic writes and streaming hashes: nothing half-written, nothing read whole."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temporary directory beside `dest`; it replaces `dest` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(dest: Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_json(dest: Path, data: Any) -> None:
    write_text(dest, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_json_if_changed(dest: Path, data: Any) -> None:
    """write_json, except that a file already holding `data` is left as it is (mtime included), so
    stages depending on it see nothing new."""
    try:
        if json.loads(dest.read_text()) == data:
            return
    except (OSError, ValueError):
        pass
    write_json(dest, data)


def read_capped(stream: BinaryIO, limit: int) -> bytes | None:
    """At most `limit` bytes of a stream, or None when it holds more (reads no further than limit + 1)."""
    parts, size = [], 0
    while size <= limit and (chunk := stream.read(min(CHUNK, limit + 1 - size))):
        parts.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(parts)


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hash a stream chunk by chunk; returns (hex digest, size)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)[0]
