"""Releases for the Hugging Face channel's tests: models that name Autoware packages, in a local registry.
The local hub itself (olah on 127.0.0.1) is scripts/local_hub.py, shared with the release rehearsal.
"""

from __future__ import annotations

import hashlib

from pipelines.registry.manifest import (
    AutowarePackage,
    FileEntry,
    Manifest,
    ModelEntry,
    artifact_prefix,
    manifest_path,
)
from pipelines.registry.stores import LocalStore, Store
from tests.consumer_registry import Art, model_entry

PACKAGES = {"alpha": "lidar_alpha", "beta": "pkg_two", "gamma": "pkg_two"}


def put_release(store: Store, version: str, models: dict[str, list[Art]], alias_of: str | None = None) -> Manifest:
    """A release whose models name Autoware packages; each version's files under their own artifact version."""
    entries: dict[str, ModelEntry] = {}
    for name, arts in models.items():
        base = model_entry(LocalStore(store.root / ".scratch"), name, arts)  # type: ignore[attr-defined]
        files = []
        for a, f in zip(arts, base.files, strict=True):
            digest = hashlib.sha256(a.data).hexdigest()[:12]
            path = f"{artifact_prefix('classifier', name, f'1.0.0-{digest}', a.target)}/{a.name}"
            store.put_bytes(path, a.data)
            files.append(FileEntry(**{**f.model_dump(), "path": path}))
        entries[name] = base.model_copy(
            update={
                "files": files,
                "artifact_version": f"1.0.0-{hashlib.sha256(b''.join(a.data for a in arts)).hexdigest()[:12]}",
                "autoware": AutowarePackage(package=PACKAGES[name], repository=f"AutowareFoundation/{PACKAGES[name]}"),
            }
        )
    manifest = Manifest(version=version, alias_of=alias_of, models=entries)
    store.put_bytes(manifest_path(version), manifest.to_json().encode())
    return manifest
