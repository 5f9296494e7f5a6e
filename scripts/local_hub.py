"""A local Hugging Face Hub: olah (a Hub-compatible server) on 127.0.0.1, offline, serving git repositories
laid out as <root>/mirrors/models/<org>/<repo>, read by the real client (`hf download`, `snapshot_download`).

Used by the release rehearsal (scripts/rehearse-release), tests/test_huggingface.py and
benchmarks/hf_channel.py. olah and huggingface_hub are development dependencies (pyproject's `dev`
extra), never runtime ones; the product does not import this module.

olah is read-only (no upload API): `modelzoo publish-hf --hub-url <push_url>` pushes with git + git-lfs
to the bare repositories themselves (file:// URLs), as it pushes to huggingface.co over HTTPS. olah looks
for LFS objects under `<repo>/.git/lfs/objects`, so each bare repository gets a `.git -> .` link.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OLAH = Path(sys.executable).with_name("olah-cli")
HF = Path(sys.executable).with_name("hf")
REQUIREMENTS = "olah==0.5.4 and huggingface_hub (pip install -e '.[dev]'), git and git-lfs"


def missing_tools() -> str | None:
    """Why a local hub cannot run here, or None."""
    if not OLAH.exists() or not HF.exists():
        return f"olah and huggingface_hub are not installed beside {sys.executable} (needs {REQUIREMENTS})"
    if shutil.which("git") is None:
        return "git is not installed"
    done = subprocess.run(["git", "lfs", "version"], capture_output=True)
    if done.returncode != 0:
        return "git-lfs is not installed (apt-get install git-lfs)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalHub:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        """What HF_ENDPOINT is for the client."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def push_url(self) -> str:
        """What `publish-hf --hub-url` (or $MODELZOO_HF_URL) gets: <push_url>/<org>/<repo> is the bare repository."""
        return (self.root / "mirrors" / "models").as_uri()

    def bare(self, repo_id: str) -> Path:
        """The repository <org>/<repo>, made empty if new (as `hf repos create` makes one on the Hub)."""
        path = self.root / "mirrors" / "models" / repo_id
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
            (path / ".git").symlink_to(".")
        return path

    def refs(self, repo_id: str) -> dict[str, str]:
        """ref -> commit (tags peeled) of repository <org>/<repo>."""
        out = subprocess.run(
            ["git", "show-ref", "--dereference"], cwd=self.bare(repo_id), capture_output=True, text=True
        ).stdout
        refs = {}
        for sha, ref in (line.split() for line in out.splitlines()):
            refs[ref.removesuffix("^{}")] = sha  # an annotated tag's peeled line comes after it
        return refs

    def env(self, home: Path) -> dict[str, str]:
        """The environment of an `hf` client pointed at this hub (no token, no telemetry, no shared cache)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=self.endpoint, HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(home))
        return env

    def download(self, repo_id: str, revision: str, dest: Path, home: Path) -> subprocess.CompletedProcess[str]:
        """`hf download <org>/<repo> --revision <rev> --local-dir <dest>`, as Autoware's ansible role runs it."""
        return subprocess.run(
            [str(HF), "download", repo_id, "--revision", revision, "--local-dir", str(dest)],
            env=self.env(home), capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_hub(root: Path, port: int | None = None, timeout: float = 60.0) -> LocalHub:
    """olah on 127.0.0.1:port (a free one by default) over <root>/mirrors, offline; returns once it answers."""
    port = port or free_port()
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
