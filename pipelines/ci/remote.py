"""Point DVC's `registry` remote at the registry's dvc/ folder (the DVC cache of every built artifact).

The repository's .dvc/config names an embedded local registry; a runner overrides it in
.dvc/config.local (never committed) with the S3 registry the workflow is given.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipelines.errors import ModelzooError, UsageError

REMOTE = "registry"
REGISTRY_ENV = "MODELZOO_REGISTRY"
ENDPOINT_ENV = "MODELZOO_S3_ENDPOINT_URL"


def _dvc(root: Path, *args: str) -> None:
    try:
        proc = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise ModelzooError("dvc: not found on PATH") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise ModelzooError(f"dvc {' '.join(args[:3])}: {detail}")


def remote_url(registry: str) -> str:
    registry = registry.rstrip("/")
    if not registry:
        raise UsageError(f"registry URL is empty: pass --registry or set {REGISTRY_ENV}")
    if registry.startswith("s3://") or "://" not in registry:
        return f"{registry}/dvc"
    raise UsageError(f"registry '{registry}': expected s3://bucket[/prefix] or a local folder")


def configure_remote(root: Path, registry: str | None = None, endpoint: str | None = None) -> str:
    registry = registry or os.environ.get(REGISTRY_ENV, "")
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    url = remote_url(registry)
    if "://" not in url:
        url = str(Path(url).resolve())
    _dvc(root, "remote", "add", "--local", "--force", "--default", REMOTE, url)
    if endpoint and url.startswith("s3://"):
        _dvc(root, "remote", "modify", "--local", REMOTE, "endpointurl", endpoint)
    return url
