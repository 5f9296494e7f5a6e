"""A registry in a local directory (the embedded default of a fresh clone); a hard link is its conditional write."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.fileio import CHUNK
from pipelines.registry.stores.base import ObjectInfo, RegistryError, check_key, check_prefix


class LocalStore:
    """A registry in a local directory (the embedded default of a fresh clone)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.url = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.url}: not a directory: a local registry is a folder", exit_code=2)

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
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
        prefix = check_prefix(prefix)
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
