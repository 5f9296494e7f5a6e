"""`modelzoo fetch` against a real S3 server (moto's, over HTTP on 127.0.0.1), plain HTTP and a local registry."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.consumer.compat import RELEASE_RECORD, IncompatibleRelease, check_fetched
from pipelines.consumer.fetch import IntegrityError, fetch
from pipelines.consumer.pin import Pin
from pipelines.errors import ModelzooError
from pipelines.registry.location import open_store
from pipelines.registry.manifest import manifest_path
from pipelines.registry.stores import RegistryError, S3Store
from tests.conftest import S3Server, free_port
from tests.consumer_registry import Art, put_raw_manifest, put_release, sha256, standard_files

MODELZOO = str(Path(sys.executable).with_name("modelzoo"))


@pytest.fixture
def registry(s3_server: S3Server, s3_bucket: str) -> S3Store:
    return S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint)


def make_pin(store: S3Store, **over: object) -> Pin:
    data: dict[str, object] = {
        "registry": store.url,
        "endpoint_url": store.endpoint_url,
        "version": "1.2.0",
        "target": "onnx",
        "models": ["alpha"],
    }
    data.update(over)
    return Pin.model_validate(data)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELZOO_LOG": "WARNING"}
    env.pop("MODELZOO_DEBUG", None)
    return subprocess.run([MODELZOO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def write_pin(path: Path, pin: Pin) -> Path:
    path.write_text(yaml.safe_dump(pin.model_dump(mode="json", exclude_none=True)))
    return path


def test_fetch_one_model_of_two_then_noop(registry: S3Store, tmp_path: Path) -> None:
    alpha, beta = standard_files("alpha"), standard_files("beta")
    put_release(registry, "1.2.0", {"alpha": alpha, "beta": beta})
    dest = tmp_path / "dest"

    report = fetch(make_pin(registry), tmp_path, dest)

    wanted = [a for a in alpha if a.target in ("onnx", "ros")]
    assert files_under(dest) == {
        **{f"alpha/{a.name}": a.data for a in wanted},
        f"alpha/{RELEASE_RECORD}": (dest / "alpha" / RELEASE_RECORD).read_bytes(),
    }
    assert report.bytes_downloaded == sum(len(a.data) for a in wanted)
    assert sorted(report.fetched) == sorted(f"alpha/{a.name}" for a in wanted)
    record = json.loads((dest / "alpha" / RELEASE_RECORD).read_text())
    assert record["version"] == "1.2.0" and record["interface_version"] == "1.0.0"
    assert record["io_signature"]["main"]["inputs"][0]["name"] == "image"
    assert check_fetched(dest / "alpha", ">=1.0.0,<2.0.0") is None

    mtimes = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    again = fetch(make_pin(registry), tmp_path, dest)
    assert again.fetched == [] and again.bytes_downloaded == 0
    assert sorted(again.up_to_date) == sorted(report.fetched)
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == mtimes


def test_target_selects_one_build_environment(registry: S3Store, tmp_path: Path) -> None:
    alpha = standard_files("alpha")
    put_release(registry, "1.2.0", {"alpha": alpha})

    fetch(make_pin(registry, target="tensorrt-sm90"), tmp_path, tmp_path / "trt")
    got = files_under(tmp_path / "trt" / "alpha")
    assert got["alpha.fp16.engine"] == next(a.data for a in alpha if a.target == "tensorrt-10.13-sm90")
    assert set(got) == {"alpha.fp16.engine", "alpha.param.yaml", RELEASE_RECORD}

    fetch(make_pin(registry, target="onnx", precisions=["fp16"]), tmp_path, tmp_path / "fp16")
    assert set(files_under(tmp_path / "fp16" / "alpha")) == {"alpha.fp16.onnx", "alpha.param.yaml", RELEASE_RECORD}

    with pytest.raises(ModelzooError, match=r"matches several builds of model 'alpha'.*sm86.*sm90"):
        fetch(make_pin(registry, target="tensorrt"), tmp_path, tmp_path / "ambiguous")
    with pytest.raises(ModelzooError, match=r"no files for target 'tensorrt-sm75'"):
        fetch(make_pin(registry, target="tensorrt-sm75"), tmp_path, tmp_path / "none")
    with pytest.raises(ModelzooError, match=r"no model 'gamma' \(has: alpha\)"):
        fetch(make_pin(registry, models=["gamma"]), tmp_path, tmp_path / "unknown")
    assert not (tmp_path / "ambiguous").exists() and not (tmp_path / "none").exists()


def test_modified_local_file_is_fetched_again(registry: S3Store, tmp_path: Path) -> None:
    alpha = standard_files("alpha")
    put_release(registry, "1.2.0", {"alpha": alpha})
    dest = tmp_path / "dest"
    fetch(make_pin(registry), tmp_path, dest)
    onnx = dest / "alpha" / "alpha.onnx"
    onnx.write_bytes(b"edited by hand")
    stale = dest / "alpha" / ".alpha.onnx.k1ll3d.part"  # what a killed fetch leaves
    stale.write_bytes(b"half")

    report = fetch(make_pin(registry), tmp_path, dest)
    assert report.fetched == ["alpha/alpha.onnx"]
    assert onnx.read_bytes() == alpha[0].data
    assert not stale.exists()
    assert sorted(p.name for p in (dest / "alpha").iterdir()) == sorted(
        [a.name for a in alpha if a.target in ("onnx", "ros")] + [RELEASE_RECORD]
    )


@pytest.mark.parametrize("damage", ["corrupted", "truncated", "longer"])
def test_bad_object_is_refused_and_nothing_placed(registry: S3Store, tmp_path: Path, damage: str) -> None:
    alpha, beta = standard_files("alpha"), standard_files("beta")
    manifest = put_release(registry, "1.2.0", {"alpha": alpha, "beta": beta})
    bad = next(f for f in manifest.models["beta"].files if f.name == "beta.onnx")
    good = next(a.data for a in beta if a.name == "beta.onnx")
    damaged = {
        "corrupted": good[:100] + bytes([good[100] ^ 1]) + good[101:],
        "truncated": good[: len(good) // 2],
        "longer": good + b"\0",
    }[damage]
    registry.put_bytes(bad.path, damaged)
    dest = tmp_path / "dest"
    pin = write_pin(tmp_path / "modelzoo.yaml", make_pin(registry, models=["alpha", "beta"]))

    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(dest), cwd=tmp_path)

    assert proc.returncode == 6, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert bad.path in lines[0] and bad.sha256 in lines[0]
    if damage != "longer":  # a longer object is cut off at the manifest size, before its whole hash
        assert sha256(damaged) in lines[0]
    assert not dest.exists()  # alpha's good files were not placed either


def test_interface_outside_accepted_major_is_refused(registry: S3Store, tmp_path: Path) -> None:
    put_release(registry, "2.0.0", {"alpha": standard_files("alpha")}, interface="2.0.0")
    dest = tmp_path / "dest"
    with pytest.raises(IncompatibleRelease, match=r"release 2.0.0: interface 2.0.0 is not accepted \(>=1.0.0,<2.0.0\)"):
        fetch(make_pin(registry, version="2.0.0"), tmp_path, dest)
    assert not dest.exists()

    pin = write_pin(tmp_path / "modelzoo.yaml", make_pin(registry, version="2.0.0"))
    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(dest), cwd=tmp_path)
    assert proc.returncode == 5 and proc.stderr.count("\n") == 1 and "known unsupported" in proc.stderr
    assert not dest.exists()


def test_unknown_newer_minor_warns_and_fetches(registry: S3Store, tmp_path: Path) -> None:
    put_release(registry, "1.4.0", {"alpha": standard_files("alpha")}, interface="1.3.0")
    pin = write_pin(tmp_path / "modelzoo.yaml", make_pin(registry, version="1.4.0", interface=">=1.0.0,<2.0.0"))

    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(tmp_path / "dest"), cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "warning: release 1.4.0: interface 1.3.0 is newer than the 1.0" in proc.stderr
    assert (tmp_path / "dest" / "alpha" / "alpha.onnx").is_file()
    assert "newer than the 1.0" in (check_fetched(tmp_path / "dest" / "alpha", ">=1.0.0,<2.0.0") or "")
    assert check_fetched(tmp_path / "dest" / "alpha", ">=1.3.0,<2.0.0") is None


def test_patch_release_alias_resolves(registry: S3Store, tmp_path: Path) -> None:
    alpha = standard_files("alpha")
    put_release(registry, "1.2.0", {"alpha": alpha})
    put_release(registry, "1.2.1", {}, alias_of="1.2.0")

    report = fetch(make_pin(registry, version="1.2.1"), tmp_path, tmp_path / "dest")

    assert (report.release.requested, report.release.resolved) == ("1.2.1", "1.2.0")
    assert (tmp_path / "dest" / "alpha" / "alpha.onnx").read_bytes() == alpha[0].data

    put_release(registry, "1.2.2", {}, alias_of="1.2.1")
    with pytest.raises(RegistryError, match=r"alias_of 1.2.1, itself an alias of 1.2.0"):
        fetch(make_pin(registry, version="1.2.2"), tmp_path, tmp_path / "chain")


@pytest.mark.parametrize("field", ["path", "name"])
def test_path_traversal_in_manifest_is_refused(registry: S3Store, tmp_path: Path, field: str) -> None:
    manifest = put_release(registry, "1.2.0", {"alpha": standard_files("alpha")})
    data = manifest.model_dump(mode="json")
    data["models"]["alpha"]["files"][0][field] = "../../etc/x"
    put_raw_manifest(registry, "1.2.0", data)
    dest = tmp_path / "deep" / "dest"
    pin = write_pin(tmp_path / "modelzoo.yaml", make_pin(registry))

    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(dest), cwd=tmp_path)

    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"models.alpha.files.0.{field}" in proc.stderr and "unsafe path '../../etc/x'" in proc.stderr
    assert not dest.exists() and not (tmp_path / "etc").exists()


def test_unreachable_registry_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    for registry, endpoint in (
        ("s3://bucket/reg", f"http://127.0.0.1:{port}"),
        (f"http://127.0.0.1:{port}/reg", None),
    ):
        pin = write_pin(
            tmp_path / "modelzoo.yaml",
            Pin(registry=registry, endpoint_url=endpoint, version="1.2.0", models=["alpha"]),
        )
        proc = run_cli("fetch", "--pin", str(pin), cwd=tmp_path)
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
        assert manifest_path("1.2.0") in lines[0]
        assert not (tmp_path / "autoware_data").exists()


def test_missing_release_and_bad_manifest(registry: S3Store, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"releases/9.9.9/manifest.json: not found"):
        fetch(make_pin(registry, version="9.9.9"), tmp_path, tmp_path / "dest")
    registry.put_bytes(manifest_path("1.2.0"), b"{not json")
    with pytest.raises(RegistryError, match=r"releases/1.2.0/manifest.json: invalid manifest"):
        fetch(make_pin(registry), tmp_path, tmp_path / "dest")
    put_release(registry, "1.3.0", {"alpha": standard_files("alpha")})
    registry.put_bytes(manifest_path("1.2.0"), registry.open_read(manifest_path("1.3.0")).read())
    with pytest.raises(RegistryError, match=r"says version 1.3.0, expected 1.2.0"):
        fetch(make_pin(registry), tmp_path, tmp_path / "dest")


def test_print_checksums_matches_sha256sum(registry: S3Store, tmp_path: Path) -> None:
    put_release(registry, "1.2.0", {"alpha": standard_files("alpha"), "beta": standard_files("beta")})
    dest = tmp_path / "dest"
    pin = write_pin(tmp_path / "modelzoo.yaml", make_pin(registry, models=["alpha", "beta"], target="onnxruntime-cpu"))

    listed = run_cli("fetch", "--pin", str(pin), "--dest", str(dest), "--print-checksums", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert not dest.exists()  # listing downloads nothing
    assert len(listed.stdout.splitlines()) == 6  # per model: the ORT model, the ROS params, the release record

    fetched = run_cli("fetch", "--pin", str(pin), "--dest", str(dest), cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    (tmp_path / "SHA256SUMS").write_text(listed.stdout)
    check = subprocess.run(["sha256sum", "-c", str(tmp_path / "SHA256SUMS")], cwd=dest, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 6, check.stdout + check.stderr


def test_http_registry_over_public_bucket(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    # What Ansible's get_url would read: plain GETs of <base>/<key> from a public-read bucket.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{s3_bucket}/*"}
        ],
    }
    s3_server.client().put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(policy))
    s3 = S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint)
    alpha = standard_files("alpha")
    manifest = put_release(s3, "1.2.0", {"alpha": alpha, "beta": standard_files("beta")})
    base = f"{s3_server.endpoint}/{s3_bucket}/registry"

    http = open_store(base)
    assert http.stat(manifest_path("1.2.0")) is not None and http.stat("releases/0.0.1/manifest.json") is None
    with pytest.raises(RegistryError, match="read-only"):
        http.put_bytes("x", b"x")

    report = fetch(Pin(registry=base, version="1.2.0", models=["alpha"]), tmp_path, tmp_path / "dest")
    assert report.bytes_downloaded == sum(f.size for f in manifest.models["alpha"].files if f.target in ("onnx", "ros"))
    assert (tmp_path / "dest" / "alpha" / "alpha.onnx").read_bytes() == alpha[0].data
    assert fetch(Pin(registry=base, version="1.2.0", models=["alpha"]), tmp_path, tmp_path / "dest").fetched == []

    s3.put_bytes(manifest.models["alpha"].files[0].path, b"tampered")
    with pytest.raises(IntegrityError, match="size and sha256 mismatch"):
        fetch(Pin(registry=base, version="1.2.0", models=["alpha"]), tmp_path, tmp_path / "dest2")
    assert not (tmp_path / "dest2").exists()


def test_local_registry_relative_to_pin_file(tmp_path: Path) -> None:
    local = open_store(str(tmp_path / "reg"))
    alpha = standard_files("alpha")
    put_release(local, "1.2.0", {"alpha": alpha})
    (tmp_path / "consumer").mkdir()
    write_pin(tmp_path / "consumer" / "modelzoo.yaml", Pin(registry="../reg", version="1.2.0", models=["alpha"]))

    proc = run_cli("fetch", cwd=tmp_path / "consumer")

    assert proc.returncode == 0, proc.stderr
    assert "3 file(s) fetched" in proc.stdout, proc.stdout
    assert (tmp_path / "consumer" / "autoware_data" / "alpha" / "alpha.param.yaml").read_bytes() == alpha[5].data


def test_progress_for_large_files(tmp_path: Path) -> None:
    local = open_store(str(tmp_path / "reg"))
    big = os.urandom(17 << 20)
    put_release(local, "1.2.0", {"alpha": [Art("alpha.onnx", "onnx", big, "fp32")]})
    pin = write_pin(tmp_path / "modelzoo.yaml", Pin(registry="reg", version="1.2.0", models=["alpha"]))

    shown = run_cli("fetch", "--pin", str(pin), "--dest", "a", cwd=tmp_path)
    quiet = run_cli("fetch", "--pin", str(pin), "--dest", "b", "--no-progress", cwd=tmp_path)

    assert shown.returncode == 0 and quiet.returncode == 0
    assert "alpha/alpha.onnx: 100%" in shown.stderr and "17.0M/17.0M" in shown.stderr, shown.stderr
    assert quiet.stderr == "warning: release 1.2.0: signature not checked (no public_key in the pin file)\n"
    assert (tmp_path / "a" / "alpha" / "alpha.onnx").read_bytes() == big


def test_http_connection_cut_mid_file(tmp_path: Path) -> None:
    """A server that promises more bytes than it sends (a dropped connection): refused, nothing placed."""
    local = open_store(str(tmp_path / "reg"))
    alpha = standard_files("alpha")
    manifest = put_release(local, "1.2.0", {"alpha": alpha})
    entry = next(f for f in manifest.models["alpha"].files if f.name == "alpha.onnx")
    cut, owed = entry.path, entry.size - entry.size // 2

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(tmp_path / "reg"), **kw)

        def copyfile(self, source: Any, outputfile: Any) -> None:
            data = source.read()
            outputfile.write(data[: len(data) // 2] if self.path.endswith(cut) else data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pin = Pin(registry=f"http://127.0.0.1:{server.server_address[1]}", version="1.2.0", models=["alpha"])
        with pytest.raises(RegistryError, match=rf"{cut}: download interrupted: connection closed {owed} bytes early"):
            fetch(pin, tmp_path, tmp_path / "dest")
    finally:
        server.shutdown()
    assert not (tmp_path / "dest").exists()
