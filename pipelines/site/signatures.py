"""Whether a release's manifest is signed: a detached signature beside it (`releases/<v>/manifest.json.<ext>`).

The site reports presence only; checking a signature is the consumer's and `modelzoo` verify's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.registry.manifest import manifest_path
from pipelines.registry.stores import Store


@dataclass(frozen=True)
class Signature:
    state: str  # "signed" or "unsigned"
    files: list[str]  # registry keys of the signature files


def signature_status(store: Store, version: str) -> Signature:
    manifest = manifest_path(version)
    files = [o.key for o in store.list(f"{manifest}.")]
    return Signature("signed" if files else "unsigned", files)
