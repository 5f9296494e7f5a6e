"""The one DVC remote of the pipeline cache: `registry`, at <registry>/dvc (verify = true).

The repository's .dvc/config names the embedded local registry; `modelzoo ci dvc-remote` and publish
point it, in .dvc/config.local (never committed), at the registry a command is given.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from pipelines.registry.location import RegistryLocation
from pipelines.registry.stores.base import RegistryError

log = logging.getLogger(__name__)

REMOTE = "registry"  # the name .dvc/config, the workflows and the README use
# The second name publish once gave the same <registry>/dvc in .dvc/config.local: removed when found.
OLD_REMOTE = "modelzoo-registry"


def _dvc(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "failed")
        raise RegistryError(f"dvc {' '.join(args[:2])} to {url}: {why.strip()}")
    return done


def configure_remote(root: Path, location: RegistryLocation) -> str:
    """Point the `registry` remote (the default, verify = true) at `location`'s dvc/ folder; its URL."""
    url = location.dvc_remote_url()
    local = root / ".dvc" / "config.local"
    if local.is_file() and f'remote "{OLD_REMOTE}"' in local.read_text():
        _dvc(root, url, "remote", "remove", "--local", OLD_REMOTE)
        log.info("dvc: removed the remote '%s' from .dvc/config.local (the remote is '%s')", OLD_REMOTE, REMOTE)
    _dvc(root, url, "remote", "add", "--local", "--force", "--default", REMOTE, url)
    _dvc(root, url, "remote", "modify", "--local", REMOTE, "verify", "true")
    if location.endpoint_url and location.kind == "s3":
        _dvc(root, url, "remote", "modify", "--local", REMOTE, "endpointurl", location.endpoint_url)
    return url


def push(root: Path, location: RegistryLocation) -> None:
    """`dvc push` of the pipeline cache to <registry>/dvc."""
    url = configure_remote(root, location)
    _dvc(root, url, "push", "--remote", REMOTE)
    log.info("dvc push: pipeline cache in %s", url)
