"""Helpers of the registry tests: a copy of the built repository, registries on both back ends, a cuttable proxy."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

MODEL = "calibration_status"
ALGORITHM = "CalibrationStatusClassification"
ONNX = f"artifacts/{MODEL}/onnx/calibration_classifier.onnx"


@dataclass
class Registry:
    url: str
    endpoint: str | None

    def location(self):  # type: ignore[no-untyped-def]
        from pipelines.registry.location import RegistryLocation

        return RegistryLocation.parse(self.url, self.endpoint)

    def store(self):  # type: ignore[no-untyped-def]
        return self.location().store()

    def cli_args(self) -> list[str]:
        return ["--registry", self.url] + (["--endpoint-url", self.endpoint] if self.endpoint else [])


def clone_built(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def commit_workspace(repo: Path, message: str = "change") -> None:
    """What a maintainer does before publishing: record changed outputs in dvc.lock, commit everything."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (
        [sys.executable, "-m", "dvc", "commit", "-f", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message],
    ):
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def change_weights(repo: Path, delta: float = 1e-3) -> None:
    """A behaviour change: one weight of the exported ONNX moves (as a retrained checkpoint would), committed."""
    import onnx
    from onnx import numpy_helper

    path = repo / ONNX
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += delta
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(path))
    commit_workspace(repo, "change weights")


def restamp(repo: Path, commit: str) -> None:
    """Re-export at another commit: metadata changes, behaviour does not (committed)."""
    import onnx

    path = repo / ONNX
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "git_commit":
            prop.value = commit
    model.producer_version = "9.9.9"
    onnx.save(model, str(path))
    commit_workspace(repo, "restamp")


def modelzoo(repo: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MODELZOO_ROOT", None)
    env.pop("MODELZOO_REGISTRY", None)
    done = subprocess.run(["modelzoo", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


class CutProxy:
    """A TCP proxy on 127.0.0.1 that stops forwarding (closes every connection) after `budget` bytes upstream."""

    def __init__(self, target_port: int, budget: int | None = None) -> None:
        self.target_port, self.budget, self.sent = target_port, budget, 0
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while data := src.recv(65536):
                if counted:
                    with self._lock:
                        self.sent += len(data)
                        over = self.budget is not None and self.sent > self.budget
                    if over:
                        self.kill()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def kill(self) -> None:
        """The server is gone: every open connection drops, new ones are refused."""
        self.cut.set()
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self._conns.clear()

    def close(self) -> None:
        self.kill()
        self.listener.close()
