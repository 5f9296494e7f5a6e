"""The tag a release of the current build would need: the latest release, bumped as the changes demand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import semver

if TYPE_CHECKING:
    from pipelines.registry.location import RegistryLocation

FIRST = "1.0.0"


@dataclass(frozen=True)
class Bump:
    latest: str | None
    level: str  # "X", "Y", "Z" (ModelZoo rules), or "" for a first release
    tag: str


def bumped(latest: str, level: str) -> str:
    v = semver.Version.parse(latest)
    nxt = {"X": v.bump_major, "Y": v.bump_minor, "Z": v.bump_patch}[level]()
    return str(nxt)


def next_tag(root: Path, location: RegistryLocation) -> Bump:
    from pipelines.registry.entry import local_models
    from pipelines.registry.releases import release_versions, require_manifest
    from pipelines.registry.versioning import compare, required_bump

    store = location.store()
    versions = release_versions(store)
    if not versions:
        return Bump(None, "", f"v{FIRST}")
    latest = versions[-1]
    changes = compare(require_manifest(store, latest), {n: m.entry for n, m in local_models(root).items()})
    level = required_bump(changes)
    return Bump(latest, level, f"v{bumped(latest, level)}")
