"""Publishing: upload the artifacts a release needs, push the DVC cache, write the manifest last.

Every write under models/ and releases/X.Y.Z/ is conditional (written once), so an interrupted publish
leaves no visible release and running it again completes it, and of two concurrent publishers of one
version exactly one writes the manifest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import semver
from pydantic import Field

from pipelines.errors import ModelzooError, UsageError
from pipelines.fileio import read_capped, sha256_stream
from pipelines.gitrepo import head_commit
from pipelines.registry import dvcremote
from pipelines.registry.committed import DirtyWorkspace, workspace_state
from pipelines.registry.entry import LocalModel, local_models, published_models
from pipelines.registry.location import RegistryLocation
from pipelines.registry.manifest import (
    BLEEDING_EDGE,
    MAX_MANIFEST_BYTES,
    FileEntry,
    Manifest,
    ModelEntry,
    Strict,
    artifact_record_path,
    manifest_path,
)
from pipelines.registry.releases import (
    check_forward,
    check_version,
    read_manifest,
    release_versions,
    require_manifest,
)
from pipelines.registry.signing import Signer, put_signature, read_signature
from pipelines.registry.stores import RegistryError, Store
from pipelines.registry.versioning import compare, required_bump

log = logging.getLogger(__name__)


class ArtifactRecord(Strict):
    """models/{algorithm}/{model}/{artifact_version}/artifact.json: the files as they are in the registry,
    and the environments they were built in (the first publisher's: what the files are)."""

    fingerprint: str
    files: list[FileEntry]
    environments: dict[str, dict[str, str]] = Field(default_factory=dict)
    skipped_targets: dict[str, str] = Field(default_factory=dict)


@dataclass
class PublishResult:
    version: str
    written: bool  # False: an identical release was already there
    uploaded_bytes: int = 0
    uploaded_files: int = 0
    reused_files: int = 0
    alias_of: str | None = None
    models: list[str] = field(default_factory=list)
    signed: bool = False
    dirty: bool = False


def _read_record(store: Store, key: str) -> ArtifactRecord | None:
    if store.stat(key) is None:
        return None
    with store.open_read(key) as f:
        text = read_capped(f, MAX_MANIFEST_BYTES)
    try:
        if text is None:
            raise ValueError("too large")
        return ArtifactRecord.model_validate_json(text)
    except ValueError:
        raise RegistryError(f"{store.url}/{key}: not a valid artifact record") from None


def _hash_object(store: Store, key: str) -> tuple[str, int]:
    with store.open_read(key) as f:
        return sha256_stream(f)


def upload_model(store: Store, model: LocalModel, result: PublishResult) -> ModelEntry:
    """Upload what the registry lacks of one model's artifact version; its entry, with the registry's files."""
    entry = model.entry
    record_key = artifact_record_path(entry.algorithm, entry.name, entry.artifact_version)
    record = _read_record(store, record_key)
    if record is None:
        files: list[FileEntry] = []
        for f in entry.files:
            if store.stat(f.path) is None and store.put_file(f.path, model.local[f.path], if_absent=True):
                log.info("uploaded %s (%d bytes)", f.path, f.size)
                result.uploaded_bytes += f.size
                result.uploaded_files += 1
                files.append(f)
                continue
            # Already there (an interrupted or concurrent publish): written once, so keep what is there.
            sha, size = _hash_object(store, f.path)
            if (sha, size) != (f.sha256, f.size):
                log.warning("%s: the registry holds other bytes of this artifact version: keeping them", f.path)
            files.append(f.model_copy(update={"sha256": sha, "size": size}))
            result.reused_files += 1
        record = ArtifactRecord(
            fingerprint=entry.fingerprint,
            files=files,
            environments=entry.environments,
            skipped_targets=entry.skipped_targets,
        )
        if not store.put_bytes(record_key, record.model_dump_json(indent=2).encode(), if_absent=True):
            record = _read_record(store, record_key)
            assert record is not None
    else:
        result.reused_files += len(record.files)
    return entry.model_copy(
        update={"files": record.files, "environments": record.environments, "skipped_targets": record.skipped_targets}
    )


def _write_release(store: Store, manifest: Manifest, result: PublishResult, signer: Signer | None) -> PublishResult:
    """The manifest, then its signature (a consumer pinning a key refuses the release until both are there)."""
    key = manifest_path(manifest.version)
    data = manifest.to_json().encode()
    if manifest.version == BLEEDING_EDGE:
        store.put_bytes(key, data)
    elif not store.put_bytes(key, data, if_absent=True):
        _same_or_refuse(store, manifest)
        result.written = False
        # The release is there: sign its bytes if an interrupted publish left it unsigned.
        if signer is not None and read_signature(store, manifest.version) is None:
            with store.open_read(key) as f:
                put_signature(store, manifest.version, f.read(), signer)
            result.signed = True
        return result
    if signer is not None:
        put_signature(store, manifest.version, data, signer)
        result.signed = True
    return result


def check_committed(root: Path, version: str, models: list[str], allow_dirty: bool) -> tuple[bool, str | None]:
    """Refuse (exit 7) a workspace that is not HEAD; for the bleeding edge with --allow-dirty, (True, diff hash)."""
    state = workspace_state(root, models)
    if not state.dirty:
        return False, None
    what = f"publish {version}"
    if allow_dirty and version == BLEEDING_EDGE:
        log.warning("%s", state.message(what) + ": published anyway (--allow-dirty), recorded as dirty")
        return True, state.diff_sha256
    hint = "" if version == BLEEDING_EDGE else " (an X.Y.Z release is never published from a dirty tree)"
    raise DirtyWorkspace(state.message(what) + hint)


def _same_or_refuse(store: Store, manifest: Manifest) -> None:
    existing = require_manifest(store, manifest.version)
    if existing.identity_key() == manifest.identity_key():
        return
    changed = sorted(
        set(existing.models) ^ set(manifest.models)
        | {
            n
            for n in set(existing.models) & set(manifest.models)
            if existing.models[n].identity() != manifest.models[n].identity()
        }
    )
    what = f"models {', '.join(changed)} differ" if changed else "its alias or interface differs"
    raise RegistryError(
        f"{store.url}/{manifest_path(manifest.version)}: release {manifest.version} already exists and {what}: "
        "a release is never overwritten, tag a new version"
    )


def publish(
    root: Path,
    store: Store,
    version: str,
    *,
    location: RegistryLocation | None = None,
    push_dvc: bool = True,
    only: list[str] | None = None,
    allow_older: bool = False,
    signer: Signer | None = None,
    allow_dirty: bool = False,
) -> PublishResult:
    """Publish the local build as release `version` (X.Y.Z) or as the bleeding edge.

    Only from a workspace that is HEAD (tracked files, and the published outputs against dvc.lock);
    `allow_dirty` lets the bleeding edge through, recorded as dirty. `signer` signs the manifest. `location`:
    where the DVC cache is pushed (default: the store's URL, no endpoint).
    """
    if version != BLEEDING_EDGE:
        version = check_version(version)
        if only:
            raise UsageError(
                f"publish --version {version}: a release holds every model; --model is for the bleeding edge"
            )
        check_forward(release_versions(store), version, allow_older=allow_older)
        if allow_dirty:
            raise UsageError(f"publish --version {version}: --allow-dirty is for the bleeding edge only")
    dirty, diff_sha256 = check_committed(root, version, published_models(root, only), allow_dirty)
    models = local_models(root, only)
    commit = head_commit(root)
    result = PublishResult(version=version, written=True, models=sorted(models), dirty=dirty)
    parsed = semver.Version.parse(version) if version != BLEEDING_EDGE else None

    if parsed is not None and parsed.patch > 0:
        return _publish_alias(store, version, parsed, models, commit, result, signer)

    if parsed is not None and (existing := read_manifest(store, version)) is not None:
        # Refuse before uploading anything when the release exists with other artifacts.
        _refuse_if_other_artifacts(store, existing, models)

    entries = {name: upload_model(store, m, result) for name, m in models.items()}
    if push_dvc:
        dvcremote.push(root, location or RegistryLocation.parse(store.url))
    if only and (edge := read_manifest(store, BLEEDING_EDGE)) is not None:
        # Some models only: the others stay as the bleeding edge has them.
        entries = {**edge.models, **entries}
    manifest = Manifest(
        version=version,
        git_commit=commit,
        dirty=dirty,
        dirty_diff_sha256=diff_sha256,
        models=dict(sorted(entries.items())),
    )
    return _write_release(store, manifest, result, signer)


def _refuse_if_other_artifacts(store: Store, existing: Manifest, models: dict[str, LocalModel]) -> None:
    changed = sorted(
        set(existing.models) ^ set(models)
        | {
            n
            for n in set(existing.models) & set(models)
            if existing.models[n].artifact_version != models[n].entry.artifact_version
        }
    )
    if not changed and existing.alias_of is None:
        return
    raise RegistryError(
        f"{store.url}/{manifest_path(existing.version)}: release {existing.version} already exists and models "
        f"{', '.join(changed)} differ: a release is never overwritten, tag a new version"
    )


def _publish_alias(
    store: Store,
    version: str,
    parsed: semver.Version,
    models: dict[str, LocalModel],
    commit: str,
    result: PublishResult,
    signer: Signer | None,
) -> PublishResult:
    """Z > 0: no uploads; the artifacts must be those of X.Y.0, and the manifest aliases it."""
    base = f"{parsed.major}.{parsed.minor}.0"
    base_manifest = read_manifest(store, base)
    if base_manifest is None:
        raise RegistryError(
            f"{store.url}/{manifest_path(base)}: not found: release {version} aliases {base}, publish it first"
        )
    if base_manifest.alias_of is not None:
        raise RegistryError(f"{store.url}/{manifest_path(base)}: is itself an alias of {base_manifest.alias_of}")
    changes = compare(base_manifest, {n: m.entry for n, m in models.items()})
    level = required_bump(changes)
    if level != "Z":
        why = "; ".join(f"{c.model}: {c.reason}" for c in changes if c.level != "Z")
        raise ModelzooError(
            f"release {version}: artifacts changed since {base} ({why}): a {level} bump is needed, not a patch release"
        )
    manifest = Manifest(version=version, alias_of=base, git_commit=commit, models=base_manifest.models)
    result.alias_of = base
    return _write_release(store, manifest, result, signer)
