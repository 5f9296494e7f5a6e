"""Registry upkeep: init (lifecycle rule), gc of unreferenced artifacts, audit by re-hashing, dataset info files."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import UsageError
from pipelines.fileio import sha256_file, sha256_stream
from pipelines.registry.manifest import BLEEDING_EDGE, Manifest, manifest_path
from pipelines.registry.releases import check_version, read_manifest, release_versions
from pipelines.registry.stores import LocalStore, ObjectInfo, RegistryError, S3Store, Store

if TYPE_CHECKING:
    from pipelines.registry.signing import Verifier

log = logging.getLogger(__name__)

INFO_NAME = re.compile(r"^info_(train|val|test)\.pkl$")
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def init_registry(store: Store) -> str:
    """Make the registry usable: a local folder, or the S3 lifecycle rule that aborts interrupted uploads."""
    if isinstance(store, S3Store):
        store.add_abort_multipart_rule()
        return f"{store.url}: lifecycle rule 'abort incomplete multipart uploads after 1 day' applied"
    if isinstance(store, LocalStore):
        store.root.mkdir(parents=True, exist_ok=True)
        return f"{store.url}: local registry ready"
    raise RegistryError(f"{store.url}: read-only registry")


def all_manifests(store: Store) -> dict[str, Manifest]:
    out = {}
    for version in [*release_versions(store), BLEEDING_EDGE]:
        manifest = read_manifest(store, version)
        if manifest is not None:
            out[version] = manifest
    return out


def referenced(manifests: list[Manifest]) -> set[str]:
    """Every path the manifests name, and each referenced artifact version's record."""
    from pipelines.registry.manifest import artifact_record_path

    keys: set[str] = set()
    for m in manifests:
        for entry in m.models.values():
            keys.update(f.path for f in entry.files)
            keys.add(artifact_record_path(entry.algorithm, entry.name, entry.artifact_version))
    return keys


@dataclass
class GcPlan:
    kept: list[str]
    delete: list[ObjectInfo] = field(default_factory=list)
    dropped_releases: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.delete)


def plan_gc(store: Store, keep: list[str]) -> GcPlan:
    """What gc would delete: artifacts under models/ that neither a kept release nor the bleeding edge names.

    A release not kept loses its manifest only when one of its files goes; one whose files all stay
    (an alias of a kept release, say) still works and is left alone.
    """
    manifests = all_manifests(store)
    kept = [check_version(v) for v in keep]
    missing = [v for v in kept if v not in manifests]
    if missing:
        raise UsageError(f"gc --keep: no release {', '.join(missing)} in {store.url}")
    kept_names = {*kept, BLEEDING_EDGE}
    # An alias keeps its X.Y.0 (it names the same files; consumers resolve through it).
    kept_names |= {m.alias_of for v, m in manifests.items() if v in kept_names and m.alias_of}
    keep_keys = referenced([m for v, m in manifests.items() if v in kept_names])
    plan = GcPlan(kept=sorted(kept_names))
    plan.delete = [o for o in store.list("models/") if o.key not in keep_keys]
    gone = {o.key for o in plan.delete}
    for version, m in sorted(manifests.items()):
        if version not in kept_names and referenced([m]) & gone:
            plan.dropped_releases.append(version)
    return plan


def run_gc(store: Store, plan: GcPlan) -> None:
    # Manifests first: a release never names a file that is already gone.
    for version in plan.dropped_releases:
        store.delete(manifest_path(version))
    for obj in plan.delete:
        store.delete(obj.key)


@dataclass
class AuditProblem:
    key: str
    problem: str
    releases: list[str]


def audit(store: Store) -> tuple[int, list[AuditProblem]]:
    """Re-hash every object a manifest names; the number checked and what is missing or corrupted."""
    wanted: dict[str, tuple[int, str, list[str]]] = {}
    for version, m in all_manifests(store).items():
        for entry in m.models.values():
            for f in entry.files:
                wanted.setdefault(f.path, (f.size, f.sha256, []))[2].append(version)
    problems = []
    for key, (size, sha, releases) in sorted(wanted.items()):
        info = store.stat(key)
        if info is None:
            problems.append(AuditProblem(key, "missing", releases))
            continue
        with store.open_read(key) as stream:
            got_sha, got_size = sha256_stream(stream)
        if (got_sha, got_size) != (sha, size):
            problems.append(
                AuditProblem(
                    key, f"corrupted: sha256 {got_sha[:12]} size {got_size}, expected {sha[:12]} size {size}", releases
                )
            )
    return len(wanted), problems


def _segment(value: str, what: str) -> str:
    if not SEGMENT.match(value):
        raise UsageError(f"{what} '{value}': letters, digits, '.', '_' and '-' only")
    return value


def _put_once(store: Store, key: str, path: Path) -> str:
    """Upload a dataset file once; the same bytes again is fine, other bytes are refused."""
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    if store.stat(key) is not None or not store.put_file(key, path, if_absent=True):
        with store.open_read(key) as f:
            remote = sha256_stream(f)[0]
        if remote != sha256_file(path):
            raise RegistryError(
                f"{store.url}/{key}: already exists with other content: written once, never overwritten"
            )
        return "unchanged"
    return "uploaded"


def put_info(store: Store, version: str, info_set: str, files: list[Path]) -> list[tuple[str, str]]:
    """info/{version}/{set}/info_{train,val,test}.pkl (the AWML layout)."""
    version = f"v{check_version(version)}"
    _segment(info_set, "info set")
    for path in files:
        if not INFO_NAME.match(path.name):
            raise UsageError(f"{path}: info files are named info_train.pkl, info_val.pkl or info_test.pkl")
    return [(k, _put_once(store, k, p)) for p in files for k in [f"info/{version}/{info_set}/{p.name}"]]


def put_auto_label(store: Store, day: str, dataset: str, files: list[Path]) -> list[tuple[str, str]]:
    """auto_label/{day}_{dataset}/{file} (the AWML layout; day is YYYYMMDD)."""
    if not re.fullmatch(r"20\d{6}", day):
        raise UsageError(f"day '{day}': expected YYYYMMDD")
    _segment(dataset, "dataset")
    for path in files:
        _segment(path.name, "file name")
    return [(k, _put_once(store, k, p)) for p in files for k in [f"auto_label/{day}_{dataset}/{p.name}"]]


def audit_signatures(store: Store, verifier: Verifier | None) -> dict[str, str]:
    """Release -> what is wrong with its signature: missing (always checked), or invalid for `verifier`."""
    from pipelines.registry.signing import SignatureError, read_signature, verify_manifest

    found: dict[str, str] = {}
    for version in [*release_versions(store), BLEEDING_EDGE]:
        if store.stat(manifest_path(version)) is None:
            continue
        if verifier is None:
            if read_signature(store, version) is None:
                found[version] = f"unsigned (no {manifest_path(version)}.sig)"
            continue
        with store.open_read(manifest_path(version)) as f:
            data = f.read()
        try:
            verify_manifest(store, version, data, verifier)
        except SignatureError as err:
            found[version] = str(err)
    return found


@dataclass
class VerifiedRelease:
    signer: str
    files: int
    lines: list[str] = field(default_factory=list)


def verify_release(store: Store, version: str, verifier: Verifier) -> VerifiedRelease:
    """What an auditor checks: the signature of the release (and of the X.Y.0 an alias names) over the
    manifest bytes, then every file's size and sha256. Raises SignatureError / RegistryError (exit 6)."""
    from pipelines.registry.releases import fetch_manifest

    lines: list[str] = []
    manifest: Manifest | None = None
    for hop in range(2):
        key = manifest_path(version)
        manifest, _ = fetch_manifest(store, version, verifier)  # the signature before anything in it is trusted
        lines.append(f"{key}: signature valid")
        if manifest.alias_of is None:
            break
        if hop:
            raise RegistryError(f"{store.url}/{key}: an alias of an alias (one hop only)")
        version = manifest.alias_of
    assert manifest is not None
    bad = []
    count = 0
    for entry in manifest.models.values():
        for f in entry.files:
            count += 1
            if store.stat(f.path) is None:
                bad.append(f"{f.path}: missing")
                continue
            with store.open_read(f.path) as body:
                sha, size = sha256_stream(body)
            if (sha, size) != (f.sha256, f.size):
                bad.append(f"{f.path}: sha256 {sha[:12]} size {size}, signed manifest: {f.sha256[:12]} size {f.size}")
    if bad:
        raise RegistryError(f"release {manifest.version}: {len(bad)} of {count} file(s) do not match: {bad[0]}", 6)
    return VerifiedRelease(verifier.source, count, lines)
