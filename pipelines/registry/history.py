"""Every release of a registry read once, in version order: what MODELS.md, its charts and the site draw from."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.registry.manifest import BLEEDING_EDGE, Manifest
from pipelines.registry.releases import read_manifest, release_versions
from pipelines.registry.stores import Store


@dataclass(frozen=True)
class History:
    releases: list[Manifest]  # X.Y.Z, oldest first
    bleedingedge: Manifest | None

    @property
    def ordered(self) -> list[Manifest]:
        """The releases oldest first, then the bleeding edge (the newest build of main)."""
        return [*self.releases, *([self.bleedingedge] if self.bleedingedge else [])]

    def previous(self, version: str) -> Manifest | None:
        """The release before `version` in this history (for the bleeding edge: the latest release)."""
        order = [m.version for m in self.ordered]
        i = order.index(version)
        return self.ordered[i - 1] if i > 0 else None


def read_history(store: Store) -> History:
    releases = [m for v in release_versions(store) if (m := read_manifest(store, v)) is not None]
    return History(releases, read_manifest(store, BLEEDING_EDGE))
