"""A local Hugging Face Hub for tests: olah (a Hub-compatible server) on 127.0.0.1, offline, serving
git repositories laid out as <mirrors>/models/<org>/<repo>.

olah is read-only (no upload API): the channel pushes with git to the bare repositories themselves
(file:// URLs), and the real `hf download` / `snapshot_download` read them back through olah. olah looks
for LFS objects under `<repo>/.git/lfs/objects`, so each bare repository gets a `.git -> .` link.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

OLAH = Path(sys.executable).with_name("olah-cli")
HF = Path(sys.executable).with_name("hf")


def missing_tools() -> str | None:
    """Why the hub tests cannot run here, or None."""
    if not OLAH.exists() or not HF.exists():
        return "olah and huggingface_hub are not installed (pip install olah==0.5.4 huggingface_hub)"
    if shutil.which("git") is None:
        return "git is not installed"
    done = subprocess.run(["git", "lfs", "version"], capture_output=True)
    if done.returncode != 0:
        return "git-lfs is not installed (apt-get install git-lfs)"
    return None


@dataclass
class LocalHub:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def push_url(self) -> str:
        """What `publish-hf --hub-url` gets: <push_url>/<org>/<repo> is the bare repository."""
        return (self.root / "mirrors" / "models").as_uri()

    def bare(self, repo_id: str) -> Path:
        """A new, empty repository <org>/<repo> (as `hf repos create` makes one on the Hub)."""
        path = self.root / "mirrors" / "models" / repo_id
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
            (path / ".git").symlink_to(".")
        return path

    def env(self, home: Path) -> dict[str, str]:
        """The environment of an `hf` client pointed at this hub (no token, no telemetry, no shared cache)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=self.endpoint, HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(home))
        return env

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_hub(root: Path, port: int, timeout: float = 60.0) -> LocalHub:
    """olah on 127.0.0.1:port over <root>/mirrors, offline; returns once it answers."""
    (root / "mirrors" / "models").mkdir(parents=True, exist_ok=True)
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'mirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f'mirrors-path = ["{root / "mirrors"}"]\n'
        f'repos-path = "{root / "cache"}"\n'
        "[accessibility]\n"
        "offline = true\n"
    )
    with open(root / "olah.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [str(OLAH), "--config", str(config), "--log-path", str(root / "logs")],
            cwd=root, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    hub = LocalHub(root, port, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"olah exited ({proc.returncode}): {(root / 'olah.log').read_text()[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return hub
        time.sleep(0.2)
    hub.stop()
    raise RuntimeError(f"olah did not listen on 127.0.0.1:{port} within {timeout} s")


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
