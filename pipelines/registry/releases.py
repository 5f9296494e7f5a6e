"""Reading releases from a registry: versions, manifests, the release before a tag."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import semver

from pipelines.errors import ModelzooError, UsageError
from pipelines.registry.manifest import (
    BLEEDING_EDGE,
    MAX_MANIFEST_BYTES,
    Manifest,
    manifest_path,
    parse_manifest,
)
from pipelines.registry.stores import RegistryError, Store

if TYPE_CHECKING:
    from pipelines.registry.signing import Verifier

_MANIFEST_KEY = re.compile(r"^releases/([^/]+)/manifest\.json$")


class VersionError(UsageError, ValueError):
    """A version that is not X.Y.Z (exit 2); a ValueError too, so that pydantic validators report it."""


def check_version(tag: str, *, git_tag: bool = True, bleeding_edge: bool = False) -> str:
    """A release version, X.Y.Z in numbers only (no pre-release or build part), returned as X.Y.Z.

    The callers' rules: `git_tag` accepts a git tag's `v` (vX.Y.Z: command-line arguments, tags; a pin
    file and a manifest name X.Y.Z itself); `bleeding_edge` lets "bleedingedge" through (a pin, release
    diff and verify)."""
    if bleeding_edge and tag == BLEEDING_EDGE:
        return tag
    version = tag[1:] if git_tag and tag.startswith("v") else tag
    parsed = semver.Version.parse(version) if semver.Version.is_valid(version) else None
    if parsed is None or parsed.prerelease or parsed.build:
        forms = ["vX.Y.Z or X.Y.Z" if git_tag else "X.Y.Z"] + ([BLEEDING_EDGE] if bleeding_edge else [])
        raise VersionError(f"version '{tag}': expected {' or '.join(forms)} (numbers only)")
    return version


def read_manifest(store: Store, version: str) -> Manifest | None:
    """The manifest of a release (fetch_manifest, unverified), or None when the release does not exist."""
    if store.stat(manifest_path(version)) is None:
        return None
    return fetch_manifest(store, version)[0]


def fetch_manifest(store: Store, version: str, verifier: Verifier | None = None) -> tuple[Manifest, bytes]:
    """What a consumer or auditor reads: one GET (no listing, no HEAD: an HTTP registry serves
    neither), capped in size; with a pinned public key, its signature is verified over these bytes
    before anything in them is read. Returns the manifest and its exact bytes."""
    from pipelines.fileio import read_capped
    from pipelines.registry.signing import verify_manifest

    key = manifest_path(version)
    where = f"{store.url}/{key}"
    with store.open_read(key) as f:
        data = read_capped(f, MAX_MANIFEST_BYTES)
    if data is None:
        raise RegistryError(f"{where}: larger than {MAX_MANIFEST_BYTES >> 20} MiB, not a manifest")
    if verifier is not None:
        verify_manifest(store, version, data, verifier)
    try:
        manifest = parse_manifest(data, f"{where}: invalid manifest")
    except ValueError as err:
        raise RegistryError(str(err)) from None
    if manifest.version != version:
        raise RegistryError(f"{where}: says version {manifest.version}, expected {version}")
    return manifest, data


def require_manifest(store: Store, version: str) -> Manifest:
    manifest = read_manifest(store, version)
    if manifest is None:
        have = ", ".join(release_versions(store)[-5:]) or "none"
        raise RegistryError(f"{store.url}/{manifest_path(version)}: not found (release {version}; latest: {have})")
    return manifest


def release_versions(store: Store) -> list[str]:
    """Every X.Y.Z release in the registry, oldest first (bleeding edge not included)."""
    found = []
    for obj in store.list("releases/"):
        m = _MANIFEST_KEY.match(obj.key)
        if m and m.group(1) != BLEEDING_EDGE and semver.Version.is_valid(m.group(1)):
            found.append(m.group(1))
    return sorted(found, key=semver.Version.parse)


def previous_release(store: Store, version: str) -> str | None:
    """The highest release below `version`."""
    below = [v for v in release_versions(store) if semver.Version.parse(v) < semver.Version.parse(version)]
    return below[-1] if below else None


def check_forward(existing: list[str], version: str, *, allow_older: bool = False) -> None:
    """Versions go forward: a release below the latest of its X.Y line is refused, and so is a new X.Y
    line below the latest release (0.9.0 after 1.0.0). A maintenance release on an existing line is
    fine (1.0.1 after 1.1.0). Exit 5, as a bump the changes do not allow; `allow_older` lifts it.
    Republishing an existing version is not a new release (it is checked as identical elsewhere)."""
    if allow_older or version in existing or not existing:
        return
    new = semver.Version.parse(version)
    parsed = [semver.Version.parse(v) for v in existing]
    line = [v for v in parsed if (v.major, v.minor) == (new.major, new.minor)]
    hint = "versions go forward (--allow-older publishes it anyway)"
    if line and new < max(line):
        raise ModelzooError(
            f"version {version}: below {max(line)}, the latest {new.major}.{new.minor}.x release: {hint}", 5
        )
    if not line and new < max(parsed):
        raise ModelzooError(
            f"version {version}: a new {new.major}.{new.minor} line below the latest release {max(parsed)}: {hint}", 5
        )
