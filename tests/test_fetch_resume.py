"""`modelzoo fetch` under crashes and neighbours: a killed fetch resumes from its partial download (range
requests, the partial hashed again, never trusted unverified), two fetches into one destination both end
with verified files. Real servers only: moto's S3 and an HTTP server with range support, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.consumer.fetch import STAGING_SUFFIX, _Parts, fetch
from pipelines.consumer.pin import Pin
from pipelines.registry.location import open_store
from pipelines.registry.stores import S3Store
from tests.conftest import S3Server
from tests.consumer_registry import Art, put_release

MODELZOO = str(Path(sys.executable).with_name("modelzoo"))
SIZE = 3 << 20


def big(seed: bytes) -> bytes:
    return hashlib.shake_256(seed).digest(SIZE)


class RangeServer:
    """A static HTTP server over a local registry folder that honours `Range: bytes=N-` (or ignores it),
    counts the body bytes it sends, and can stall mid-body (to kill a fetch there)."""

    def __init__(self, root: Path, *, ranges: bool = True) -> None:
        self.sent = 0
        self.stall_after: int | None = None
        self.ranges = ranges
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if m and outer.ranges:
                    start = int(m.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = memoryview(data)[start:]
                for i in range(0, len(body), 64 << 10):
                    if outer.stall_after is not None and i >= outer.stall_after:
                        time.sleep(60)  # until the client is killed
                        return
                    self.wfile.write(body[i : i + (64 << 10)])
                    with outer.lock:
                        outer.sent += len(body[i : i + (64 << 10)])

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def local_release(tmp_path: Path) -> tuple[Path, list[Art]]:
    arts = [Art("alpha.onnx", "onnx", big(b"a"), "fp32"), Art("alpha.param.yaml", "ros", b"/**: {}\n")]
    put_release(open_store(str(tmp_path / "reg")), "1.2.0", {"alpha": arts})
    return tmp_path / "reg", arts


@pytest.fixture
def server(local_release: tuple[Path, list[Art]]) -> Iterator[RangeServer]:
    srv = RangeServer(local_release[0])
    yield srv
    srv.close()


def write_pin(path: Path, registry: str, endpoint: str | None = None) -> Path:
    data = {
        "registry": registry,
        "version": "1.2.0",
        "models": ["alpha"],
        **({"endpoint_url": endpoint} if endpoint else {}),
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_killed_fetch_resumes_from_its_partial(
    tmp_path: Path, local_release: tuple[Path, list[Art]], server: RangeServer
) -> None:
    arts = local_release[1]
    pin = write_pin(tmp_path / "modelzoo.yaml", server.url)
    dest = tmp_path / "dest"
    server.stall_after = SIZE // 3
    proc = subprocess.Popen([MODELZOO, "fetch", "--pin", str(pin), "--dest", str(dest), "--no-progress"])
    part = _Parts(dest.resolve()).path(_entry(local_release[0], "alpha.onnx"))
    deadline = time.time() + 60
    while time.time() < deadline and (not part.exists() or part.stat().st_size < SIZE // 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    have = part.stat().st_size
    assert SIZE // 4 < have < SIZE, have
    assert not dest.exists()  # nothing placed by the killed fetch
    params = _Parts(dest.resolve()).path(_entry(local_release[0], "alpha.param.yaml"))
    params_left = len(arts[1].data) - (params.stat().st_size if params.exists() else 0)

    server.stall_after, server.sent = None, 0
    report = fetch(Pin.model_validate(yaml.safe_load(pin.read_text())), tmp_path, dest)

    assert (dest / "alpha" / "alpha.onnx").read_bytes() == arts[0].data
    assert report.bytes_downloaded == SIZE - have + params_left  # only the missing part
    assert server.sent == report.bytes_downloaded + _manifest_size(local_release[0])
    assert not (tmp_path / f".dest{STAGING_SUFFIX}").exists()


def test_bad_partial_is_not_trusted(tmp_path: Path, local_release: tuple[Path, list[Art]], server: RangeServer) -> None:
    """A partial whose bytes are wrong fails the whole-file hash: it is dropped and the file downloaded whole."""
    dest = (tmp_path / "dest").resolve()
    part = _Parts(dest).path(_entry(local_release[0], "alpha.onnx"))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * (SIZE // 2))
    pin = Pin(registry=server.url, version="1.2.0", models=["alpha"])
    report = fetch(pin, tmp_path, dest)
    assert (dest / "alpha" / "alpha.onnx").read_bytes() == local_release[1][0].data
    assert report.fetched == ["alpha/alpha.onnx", "alpha/alpha.param.yaml"]


def test_server_ignoring_ranges(tmp_path: Path, local_release: tuple[Path, list[Art]]) -> None:
    srv = RangeServer(local_release[0], ranges=False)
    try:
        dest = (tmp_path / "dest").resolve()
        part = _Parts(dest).path(_entry(local_release[0], "alpha.onnx"))
        part.parent.mkdir(parents=True)
        part.write_bytes(local_release[1][0].data[: SIZE // 2])
        fetch(Pin(registry=srv.url, version="1.2.0", models=["alpha"]), tmp_path, dest)
    finally:
        srv.close()
    assert (dest / "alpha" / "alpha.onnx").read_bytes() == local_release[1][0].data


def test_resume_over_s3(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    """What a killed fetch leaves (a prefix of the object in its part file) is completed with an S3 range GET."""
    store = S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint)
    data = big(b"s3")
    manifest = put_release(store, "1.2.0", {"alpha": [Art("alpha.onnx", "onnx", data, "fp32")]})
    entry = manifest.models["alpha"].files[0]
    dest = (tmp_path / "dest").resolve()
    part = _Parts(dest).path(entry)
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: SIZE - 12345])
    pin = Pin(registry=store.url, endpoint_url=s3_server.endpoint, version="1.2.0", models=["alpha"])
    report = fetch(pin, tmp_path, dest)
    assert report.bytes_downloaded == 12345
    assert (dest / "alpha" / "alpha.onnx").read_bytes() == data


def test_two_fetches_into_one_destination(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    """Two launch scripts at once: both end with exit 0 and the same verified files."""
    store = S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint)
    arts = [Art(f"alpha{i}.onnx", "onnx", big(b"c%d" % i), "fp32") for i in range(3)]
    put_release(store, "1.2.0", {"alpha": arts})
    pin = write_pin(tmp_path / "modelzoo.yaml", store.url, s3_server.endpoint)
    dest = tmp_path / "dest"
    env = {**os.environ, "MODELZOO_LOG": "WARNING"}
    procs = [
        subprocess.Popen(
            [MODELZOO, "fetch", "--pin", str(pin), "--dest", str(dest), "--no-progress"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o[0].split(": ")[1].split(" (")[0] for o in outs) == ["0 file(s) fetched", "3 file(s) fetched"], outs
    for a in arts:
        assert (dest / "alpha" / a.name).read_bytes() == a.data


def _entry(reg: Path, name: str) -> Any:
    from pipelines.registry.releases import read_manifest

    manifest = read_manifest(open_store(str(reg)), "1.2.0")
    assert manifest is not None
    return next(f for f in manifest.models["alpha"].files if f.name == name)


def _manifest_size(reg: Path) -> int:
    return (reg / "releases" / "1.2.0" / "manifest.json").stat().st_size
