"""Fetch a pinned release's files for one target: streamed, size- and sha256-checked, placed atomically.

Every file is downloaded to a temporary name beside its destination while it is hashed; only when
every file of the fetch has its manifest size and sha256 are they renamed into place. So a
destination never holds a half or unverified file, and a failed fetch places nothing. Files already
present with the right hash are not downloaded again.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pipelines.consumer.compat import RELEASE_RECORD, check_interface
from pipelines.consumer.pin import Pin, check_version
from pipelines.consumer.targets import select_files
from pipelines.errors import ModelzooError
from pipelines.fileio import CHUNK, sha256_file, write_text
from pipelines.registry.manifest import FileEntry, Manifest, manifest_path, parse_manifest
from pipelines.registry.store import RegistryError, Store, open_store

MAX_MANIFEST = 64 << 20
PROGRESS_MIN = 16 << 20
PART_SUFFIX = ".part"


class IntegrityError(ModelzooError):
    exit_code = 6  # as `modelzoo registry audit` on a corrupted object


@dataclass(frozen=True)
class Release:
    manifest: Manifest
    # The version asked for, and the one whose manifest lists the files (differs for a Z>0 alias).
    requested: str
    resolved: str
    manifest_bytes: int


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


def read_manifest(store: Store, version: str) -> tuple[Manifest, int]:
    """One GET (no listing, no HEAD: an HTTP registry serves neither), capped in size."""
    key = manifest_path(version)
    where = f"{store.url}/{key}"
    with store.open_read(key) as f:
        data = f.read(MAX_MANIFEST + 1)
    if len(data) > MAX_MANIFEST:
        raise RegistryError(f"{where}: larger than {MAX_MANIFEST >> 20} MiB, not a manifest")
    try:
        manifest = parse_manifest(data, f"{where}: invalid manifest")
    except ValueError as err:
        raise RegistryError(str(err)) from None
    if manifest.version != version:
        raise RegistryError(f"{where}: says version {manifest.version}, expected {version}")
    return manifest, len(data)


def resolve_release(store: Store, version: str) -> Release:
    """The manifest of `version`, following a Z>0 release's alias to the X.Y.0 that holds the files."""
    manifest, size = read_manifest(store, version)
    if manifest.alias_of is None:
        return Release(manifest, version, version, size)
    where = f"{store.url}/{manifest_path(version)}"
    try:
        target = check_version(manifest.alias_of)
    except ValueError as err:
        raise RegistryError(f"{where}: alias_of {err}") from None
    aliased, more = read_manifest(store, target)
    if aliased.alias_of is not None:
        raise RegistryError(f"{where}: alias_of {target}, itself an alias of {aliased.alias_of} (one hop only)")
    return Release(aliased, version, target, size + more)


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
    from pipelines.consumer.layout import bundle_files

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


def _write_bundle_records(release: Release, pin: Pin, dest: Path, planned: list[Planned]) -> None:
    """Autoware layout: the release manifest and a bundle record in each package folder (`modelzoo check-bundle`)."""
    from pipelines.consumer.layout import BUNDLE_MANIFEST, BUNDLE_RECORD, bundle_files, bundle_record

    for package in sorted({p.model for p in planned}):
        models = [m for m in pin.models if (aw := release.manifest.models[m].autoware) and aw.package == package]
        files = bundle_files(release.manifest, package, pin.precisions, models)
        for name, text in (
            (BUNDLE_MANIFEST, release.manifest.to_json()),
            (BUNDLE_RECORD, bundle_record(release.manifest, package, files, pin.precisions)),
        ):
            path = dest / package / name
            if not path.is_file() or path.read_text() != text:
                write_text(path, text)


def _present(p: Planned) -> bool:
    try:
        if not p.dest.is_file() or p.dest.stat().st_size != p.entry.size:
            return False
        return sha256_file(p.dest) == p.entry.sha256
    except OSError:
        return False


def _copy_verified(src: BinaryIO, dst: BinaryIO, p: Planned, progress: bool) -> int:
    """Stream `src` to `dst` while hashing; raise IntegrityError unless size and sha256 match.

    Chunk N is hashed and written by two worker threads while this one receives chunk N+1 (all three
    release the GIL), so neither the hash nor the disk adds to the download time; at most two chunks
    are in memory.
    """
    from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

    digest = hashlib.sha256()
    size, limit = 0, p.entry.size
    with (
        ThreadPoolExecutor(1, thread_name_prefix="fetch-hash") as hasher,
        ThreadPoolExecutor(1, thread_name_prefix="fetch-write") as writer,
        tqdm(
            total=limit, unit="B", unit_scale=True, unit_divisor=1024, desc=p.rel, mininterval=0.5,
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
    return size


class _Staging:
    """Temporary files beside their destinations: all renamed into place by `commit`, else all removed
    (with the folders made for them), so a failed fetch leaves the destination as it was."""

    def __init__(self) -> None:
        self.staged: list[tuple[Path, Path]] = []
        self.made: list[Path] = []

    def temp_for(self, final: Path) -> Path:
        missing = [d for d in (final.parent, *final.parent.parents) if not d.exists()]
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.made.extend(missing)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=PART_SUFFIX, dir=final.parent)
        except OSError as err:
            raise ModelzooError(f"{final.parent}: cannot write: {err.strerror}") from None
        os.close(fd)
        self.staged.append((Path(tmp), final))
        return Path(tmp)

    def commit(self) -> None:
        for tmp, final in self.staged:
            os.replace(tmp, final)
        self.staged.clear()
        self.made.clear()

    def discard(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        for d in sorted(self.made, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


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
    store = open_store(pin.registry_url(base), pin.endpoint_url)
    release = resolve_release(store, pin.version)
    warning = check_interface(release.manifest.interface_version, pin.interface, release=f"release {release.requested}")
    planner = plan_autoware if pin.layout == "autoware" else plan
    return store, release, planner(release, pin, dest), [warning] if warning else []


def fetch(pin: Pin, base: Path, dest: Path | None = None, *, progress: bool = False) -> FetchReport:
    """Fetch what `pin` names into `dest` (default: the pin's dest); `base` is the pin file's folder."""
    dest = (dest or pin.dest_dir(base)).resolve()
    store, release, planned, warnings = prepare(pin, base, dest)
    report = FetchReport(release, planned, warnings=warnings)
    staging = _Staging()
    try:
        for p in planned:
            if _present(p):
                report.up_to_date.append(p.rel)
                continue
            for stale in p.dest.parent.glob(f".{glob.escape(p.dest.name)}.*{PART_SUFFIX}"):
                stale.unlink(missing_ok=True)  # left by a fetch that was killed
            tmp = staging.temp_for(p.dest)
            with store.open_read(p.entry.path) as src, open(tmp, "wb") as dst:
                report.bytes_downloaded += _copy_verified(src, dst, p, progress)
            report.fetched.append(p.rel)
        staging.commit()
    finally:
        staging.discard()

    if pin.layout == "autoware":
        _write_bundle_records(release, pin, dest, planned)
        return report
    for model in pin.models:
        record = dest / model / RELEASE_RECORD
        text = _record(release, pin, model, [p for p in planned if p.model == model])
        if not record.is_file() or record.read_text() != text:
            write_text(record, text)
    return report


def checksum_lines(planned: list[Planned]) -> list[str]:
    """`sha256sum` lines, paths relative to the destination (check with `cd <dest> && sha256sum -c`)."""
    return [f"{p.entry.sha256}  {p.rel}" for p in planned]
