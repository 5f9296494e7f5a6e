"""Fetch a pinned release's files for one target: streamed, size- and sha256-checked, placed atomically.

The files download in parallel, each hashed as it arrives, into part files beside the destination
(`.<dest>.fetch/`); only when every file of the fetch has its manifest size and sha256 are they
renamed into place. So a destination never holds a half or unverified file, and a failed fetch
places nothing. An interrupted fetch (killed, connection lost) leaves its parts: the next one hashes
them again and asks only for the missing bytes (a range request). One fetch into a destination runs
at a time (a file lock beside it); one waiting finds the files in place. Files already present with
the right hash are not downloaded again.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from pipelines.consumer.compat import RELEASE_RECORD, check_interface
from pipelines.consumer.pin import Pin
from pipelines.consumer.targets import select_files
from pipelines.errors import ModelzooError
from pipelines.fileio import CHUNK, sha256_file, write_text
from pipelines.registry.manifest import FileEntry, Manifest, manifest_path
from pipelines.registry.releases import check_version, fetch_manifest
from pipelines.registry.signing import Verifier, read_signature
from pipelines.registry.stores import RegistryError, Store

PROGRESS_MIN = 16 << 20
PART_SUFFIX = ".part"
STAGING_SUFFIX = ".fetch"
LOCK_SUFFIX = ".fetch.lock"
# Files of one fetch downloaded at once (a model has a few: ONNX per precision, params, engines).
WORKERS = 4

log = logging.getLogger(__name__)


class IntegrityError(ModelzooError):
    exit_code = 6  # as `modelzoo registry audit` on a corrupted object


@dataclass(frozen=True)
class Release:
    manifest: Manifest
    # The version asked for, and the one whose manifest lists the files (differs for a Z>0 alias).
    requested: str
    resolved: str
    manifest_bytes: int
    # The exact bytes of the resolved manifest, and its signature (read for the Autoware layout, whose
    # package folders carry both so that `check-bundle --public-key` can verify them later).
    manifest_data: bytes = b""
    signature: bytes | None = None


@dataclass(frozen=True)
class Planned:
    model: str
    entry: FileEntry
    dest: Path

    @property
    def rel(self) -> str:
        return f"{self.model}/{self.entry.name}"


@dataclass
class FetchReport:
    release: Release
    planned: list[Planned]
    fetched: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    warnings: list[str] = field(default_factory=list)


def resolve_release(store: Store, version: str, verifier: Verifier | None = None) -> Release:
    """The manifest of `version`, following a Z>0 release's alias to the X.Y.0 that holds the files."""
    manifest, data = fetch_manifest(store, version, verifier)
    if manifest.alias_of is None:
        return Release(manifest, version, version, len(data), data)
    where = f"{store.url}/{manifest_path(version)}"
    try:
        target = check_version(manifest.alias_of, git_tag=False)
    except ValueError as err:
        raise RegistryError(f"{where}: alias_of {err}") from None
    aliased, more = fetch_manifest(store, target, verifier)
    if aliased.alias_of is not None:
        raise RegistryError(f"{where}: alias_of {target}, itself an alias of {aliased.alias_of} (one hop only)")
    return Release(aliased, version, target, len(data) + len(more), more)


def plan(release: Release, pin: Pin, dest: Path) -> list[Planned]:
    where = f"release {release.requested}"
    planned: list[Planned] = []
    for name in pin.models:
        model = release.manifest.models.get(name)
        if model is None:
            have = ", ".join(sorted(release.manifest.models)) or "none"
            raise ModelzooError(f"{where}: no model '{name}' (has: {have})")
        root = (dest / name).resolve()
        seen: set[str] = set()
        for entry in select_files(model, pin.target, pin.precisions, release=where):
            path = (root / entry.name).resolve()
            # FileEntry validates its name; this also catches a symlinked folder inside <dest>/<model>.
            if not path.is_relative_to(root):
                raise ModelzooError(f"{where}: {name}/{entry.name} resolves outside {root}")
            if entry.name in seen or entry.name == RELEASE_RECORD:
                raise ModelzooError(f"{where}: model '{name}' lists file name '{entry.name}' twice or reserved")
            seen.add(entry.name)
            planned.append(Planned(name, entry, path))
    return planned


def plan_autoware(release: Release, pin: Pin, dest: Path) -> list[Planned]:
    """The autoware layout: each pinned model's portable and ROS files flat in <dest>/<package>/."""
    from pipelines.registry.layout import bundle_files

    where = f"release {release.requested}"
    if pin.target != "onnx":
        raise ModelzooError(f"{where}: layout autoware takes target onnx (Autoware builds engines), not {pin.target}")
    by_package: dict[str, list[str]] = {}
    for name in pin.models:
        model = release.manifest.models.get(name)
        if model is None:
            raise ModelzooError(f"{where}: no model '{name}' (has: {', '.join(sorted(release.manifest.models))})")
        if model.autoware is None:
            raise ModelzooError(f"{where}: model '{name}' names no Autoware package (descriptor field autoware)")
        by_package.setdefault(model.autoware.package, []).append(name)
    planned = []
    for package, models in sorted(by_package.items()):
        root = (dest / package).resolve()
        for fname, b in bundle_files(release.manifest, package, pin.precisions, models).items():
            path = (root / fname).resolve()
            if not path.is_relative_to(root):
                raise ModelzooError(f"{where}: {package}/{fname} resolves outside {root}")
            planned.append(Planned(package, b.entry, path))
    return planned


def _records(release: Release, pin: Pin, planned: list[Planned]) -> list[tuple[str, str]]:
    """What fetch writes beside the artifacts, as (path relative to the destination, text): per model
    its release record; in the Autoware layout, per package the release manifest and a bundle record
    (what `modelzoo check-bundle` reads)."""
    if pin.layout != "autoware":
        return [
            (f"{model}/{RELEASE_RECORD}", _record(release, pin, model, [p for p in planned if p.model == model]))
            for model in pin.models
        ]
    from pipelines.registry.layout import (
        BUNDLE_MANIFEST,
        BUNDLE_RECORD,
        BUNDLE_SIGNATURE,
        bundle_files,
        bundle_record,
    )

    records = []
    for package in sorted({p.model for p in planned}):
        models = [m for m in pin.models if (aw := release.manifest.models[m].autoware) and aw.package == package]
        files = bundle_files(release.manifest, package, pin.precisions, models)
        records += [
            (f"{package}/{BUNDLE_MANIFEST}", release.manifest_data.decode()),
            (f"{package}/{BUNDLE_RECORD}", bundle_record(release.manifest, package, files, pin.precisions)),
        ]
        if release.signature is not None:
            records.append((f"{package}/{BUNDLE_SIGNATURE}", release.signature.decode()))
    return records


def _present(p: Planned) -> bool:
    try:
        if not p.dest.is_file() or p.dest.stat().st_size != p.entry.size:
            return False
        return sha256_file(p.dest) == p.entry.sha256
    except OSError:
        return False


def _copy_verified(src: BinaryIO, dst: BinaryIO, p: Planned, progress: bool, digest: Any, have: int) -> int:
    """Stream `src` to `dst` while hashing (`digest` already holds the `have` bytes of a partial
    download); raise IntegrityError unless the total size and sha256 match. Returns the bytes received.

    Chunk N is hashed and written by two worker threads while this one receives chunk N+1 (all three
    release the GIL), so neither the hash nor the disk adds to the download time; at most two chunks
    are in memory.
    """
    from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

    size, limit = have, p.entry.size
    with (
        ThreadPoolExecutor(1, thread_name_prefix="fetch-hash") as hasher,
        ThreadPoolExecutor(1, thread_name_prefix="fetch-write") as writer,
        tqdm(
            total=limit, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=p.rel, mininterval=0.5,
            disable=not progress or limit < PROGRESS_MIN,
        ) as bar,
    ):  # fmt: skip
        pending: list[Future[Any]] = []
        while chunk := src.read(CHUNK):
            if size + len(chunk) > limit:
                raise IntegrityError(
                    f"{p.entry.path}: size mismatch: expected {limit} bytes, got more; "
                    f"expected sha256 {p.entry.sha256}, refusing it"
                )
            size += len(chunk)
            for done in pending:
                done.result()
            pending = [hasher.submit(digest.update, chunk), writer.submit(dst.write, chunk)]
            bar.update(len(chunk))
        for done in pending:
            done.result()
    actual = digest.hexdigest()
    if size != limit or actual != p.entry.sha256:
        what = "size and sha256" if size != limit else "sha256"
        raise IntegrityError(
            f"{p.entry.path}: {what} mismatch: expected sha256 {p.entry.sha256} ({limit} bytes), "
            f"got {actual} ({size} bytes)"
        )
    return size - have


class _Parts:
    """Downloads in progress, beside the destination (`.<dest>.fetch/<sha256>.part`), kept when a fetch
    is interrupted so that the next one resumes them, and removed once their files are placed. Named by
    content: a part is a prefix of the object with that sha256, whichever model or name it serves."""

    def __init__(self, dest: Path) -> None:
        self.dir = dest.parent / f".{dest.name}{STAGING_SUFFIX}"

    def path(self, entry: FileEntry) -> Path:
        return self.dir / f"{entry.sha256}{PART_SUFFIX}"

    def download(self, store: Store, p: Planned, progress: bool) -> int:
        """The verified object in its part file; resumes a partial one (its bytes hashed again, the rest
        fetched with a range request), and starts over once if the resumed whole does not verify."""
        part = self.path(p.entry)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ModelzooError(f"{self.dir}: cannot write: {err.strerror}") from None
        have = part.stat().st_size if part.is_file() else 0
        if have > p.entry.size:
            part.unlink()
            have = 0
        try:
            return self._fetch_rest(store, p, part, have, progress)
        except IntegrityError:
            part.unlink(missing_ok=True)
            if not have:
                raise
            log.warning("%s: the resumed download did not verify: downloading it whole", p.rel)
            return self._fetch_rest(store, p, part, 0, progress)

    @staticmethod
    def _fetch_rest(store: Store, p: Planned, part: Path, have: int, progress: bool) -> int:
        digest = hashlib.sha256()
        if have:
            with open(part, "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            log.info("%s: resuming at byte %d of %d", p.rel, have, p.entry.size)
        if have == p.entry.size:  # complete but not placed (killed between download and placement)
            src: BinaryIO = io.BytesIO(b"")
        else:
            src = store.open_read(p.entry.path, have)
        with src, open(part, "ab" if have else "wb") as dst:
            return _copy_verified(src, dst, p, progress, digest, have)

    def place(self, planned: list[Planned]) -> None:
        """Each verified part to its destination(s): a hard link (or copy) beside it, renamed over it."""
        for p in planned:
            try:
                p.dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = p.dest.with_name(f".{p.dest.name}.{os.getpid()}{PART_SUFFIX}")
                tmp.unlink(missing_ok=True)
                try:
                    os.link(self.path(p.entry), tmp)
                except OSError:
                    shutil.copyfile(self.path(p.entry), tmp)
                os.replace(tmp, p.dest)
            except OSError as err:
                raise ModelzooError(f"{p.dest}: cannot write: {err.strerror}") from None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """One fetch at a time into `dest` (two launch scripts at once): the second waits, then finds the
    files in place and verified. The lock file stays beside `dest` (removing it would race)."""
    from filelock import FileLock, Timeout

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelzooError(f"{dest.parent}: cannot write: {err.strerror}") from None
    lock = FileLock(dest.parent / f".{dest.name}{LOCK_SUFFIX}")
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another fetch into %s", dest)
            lock.acquire()
    except OSError as err:
        raise ModelzooError(f"{lock.lock_file}: cannot lock: {err.strerror}") from None
    try:
        yield
    finally:
        lock.release()


def _record(release: Release, pin: Pin, model: str, files: list[Planned]) -> str:
    m = release.manifest.models[model]
    data = {
        "version": release.requested,
        "resolved_version": release.resolved,
        "interface_version": release.manifest.interface_version,
        "git_commit": release.manifest.git_commit,
        "target": pin.target,
        "model": model,
        "model_version": m.model_version,
        "artifact_version": m.artifact_version,
        "io_signature": {k: v.model_dump(mode="json") for k, v in m.io_signature.items()},
        "ros_param_keys": m.ros_param_keys,
        "files": {p.entry.name: p.entry.sha256 for p in files},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def prepare(pin: Pin, base: Path, dest: Path | None = None) -> tuple[Store, Release, list[Planned], list[str]]:
    """Resolve the release, check its interface and list what `fetch` would place; downloads no artifact."""
    dest = (dest or pin.dest_dir(base)).resolve()
    store = pin.location(base).store()
    release = resolve_release(store, pin.version, pin.verifier(base))
    warning = check_interface(release.manifest.interface_version, pin.interface, release=f"release {release.requested}")
    warnings = [warning] if warning else []
    if pin.public_key is None:
        warnings.append(f"release {release.requested}: signature not checked (no public_key in the pin file)")
    if pin.layout == "autoware":
        release = replace(release, signature=read_signature(store, release.resolved))
        return store, release, plan_autoware(release, pin, dest), warnings
    return store, release, plan(release, pin, dest), warnings


def fetch(
    pin: Pin, base: Path, dest: Path | None = None, *, progress: bool = False, workers: int = WORKERS
) -> FetchReport:
    """Fetch what `pin` names into `dest` (default: the pin's dest); `base` is the pin file's folder.

    The files of the fetch download in parallel into part files beside `dest`; only when every one has
    its manifest size and sha256 are they placed, so a failed fetch places nothing, and an interrupted
    one leaves parts that the next run resumes."""
    dest = (dest or pin.dest_dir(base)).resolve()
    store, release, planned, warnings = prepare(pin, base, dest)
    report = FetchReport(release, planned, warnings=warnings)
    with _locked(dest):
        todo: list[Planned] = []
        for p in planned:
            if _present(p):
                report.up_to_date.append(p.rel)
                continue
            for stale in p.dest.parent.glob(f".{glob.escape(p.dest.name)}.*{PART_SUFFIX}"):
                stale.unlink(missing_ok=True)  # left by a fetch that was killed while placing
            todo.append(p)
        parts = _Parts(dest)
        unique = list({p.entry.sha256: p for p in todo}.values())
        if unique:
            with ThreadPoolExecutor(max(1, min(workers, len(unique))), thread_name_prefix="fetch") as pool:
                futures = [pool.submit(parts.download, store, p, progress) for p in unique]
                try:
                    report.bytes_downloaded = sum(f.result() for f in futures)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
            parts.place(todo)
            report.fetched = [p.rel for p in todo]
        parts.remove()
        for rel, text in _records(release, pin, planned):
            path = dest / rel
            if not path.is_file() or path.read_text() != text:
                write_text(path, text)
    return report


def checksum_lines(planned: list[Planned], release: Release, pin: Pin) -> list[str]:
    """`sha256sum` lines of every file fetch writes (the release records included), paths relative to
    the destination (check with `cd <dest> && sha256sum -c`)."""
    lines = [f"{p.entry.sha256}  {p.rel}" for p in planned]
    lines += [f"{hashlib.sha256(text.encode()).hexdigest()}  {rel}" for rel, text in _records(release, pin, planned)]
    return lines
