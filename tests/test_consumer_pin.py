"""The pin file, `modelzoo pin`, the target matching rule and the interface compatibility check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.consumer import IncompatibleRelease, check_interface
from pipelines.consumer.pin import load_pin
from pipelines.consumer.targets import target_matches
from pipelines.errors import ModelzooError, UsageError
from pipelines.registry.stores import S3Store
from tests.conftest import S3Server
from tests.consumer_registry import put_release, standard_files

MODELZOO = str(Path(sys.executable).with_name("modelzoo"))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELZOO_LOG": "WARNING"}
    env.pop("MODELZOO_DEBUG", None)
    return subprocess.run([MODELZOO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("version", "accepted", "outcome"),
    [
        ("1.0.0", ">=1.0.0,<2.0.0", None),
        ("1.0.7", ">=1.0.0,<2.0.0", None),
        ("1.4.0", ">=1.0.0,<2.0.0", "warn"),  # unknown newer minor
        ("1.4.0", ">=1.4.0,<2.0.0", None),
        ("2.0.0", ">=1.0.0,<2.0.0", "error"),  # known unsupported major
        ("0.9.0", ">=1.0.0,<2.0.0", "error"),
        ("3.1.0", ">=1.0.0", "warn"),
        ("1.2.0", "==1.2.0", None),
        ("1.2", ">=1.0.0,<2.0.0", "error"),
    ],
)
def test_check_interface(version: str, accepted: str, outcome: str | None) -> None:
    if outcome == "error":
        with pytest.raises(IncompatibleRelease, match=r"release 9.9.9: interface"):
            check_interface(version, accepted, release="release 9.9.9")
        return
    warning = check_interface(version, accepted)
    assert (warning is not None) == (outcome == "warn")
    if warning:
        assert "unknown version" in warning and version in warning


def test_check_interface_bad_range() -> None:
    with pytest.raises(ModelzooError, match=r"interface range '>=1.0,<2': '1.0' is not a semantic version"):
        check_interface("1.0.0", ">=1.0,<2")


@pytest.mark.parametrize(
    ("pin", "key", "match"),
    [
        ("onnx", "onnx", True),
        ("onnx", "onnxruntime-1.31-cpu-x86_64", False),
        ("onnxruntime-cpu", "onnxruntime-1.31-cpu-x86_64", True),
        ("onnxruntime-1.31", "onnxruntime-1.31-cpu-x86_64", True),
        ("onnxruntime-1.30", "onnxruntime-1.31-cpu-x86_64", False),
        ("tensorrt-sm86", "tensorrt-10.13-sm86", True),
        ("tensorrt-sm86", "tensorrt-10.13-sm90", False),
        ("tensorrt-10.13-sm86", "tensorrt-10.13-sm86", True),
        ("tensorrt", "tensorrt-10.13-sm86", True),
        ("tensorrt-sm86", "onnxruntime-1.31-cpu-x86_64", False),
    ],
)
def test_target_matches(pin: str, key: str, match: bool) -> None:
    assert target_matches(pin, key) is match


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registry: [unclosed", "invalid YAML"),
        ("- a list", "expected a mapping"),
        ("registry: r\nversion: 1.2\nmodels: [a]\n", "version: Input should be a valid string"),
        (
            "registry: r\nversion: v1.2.0\nmodels: [a]\n",
            "version: version 'v1.2.0': expected X.Y.Z or bleedingedge (numbers only)",
        ),
        ("registry: r\nversion: 1.2.0\nmodels: []\n", "models: name at least one model"),
        ("registry: r\nversion: 1.2.0\nmodels: [../x]\n", "models: '../x' is not a model name"),
        ("registry: r\nversion: 1.2.0\nmodels: [a]\ninterface: '>=1'\n", "interface: '1' is not"),
        ("registry: r\nversion: 1.2.0\nmodels: [a]\ntarget: TensorRT\n", "target: 'TensorRT': expected dash-separated"),
        ("registry: r\nversion: 1.2.0\nmodels: [a]\nprecision: fp16\n", "precision: Extra inputs are not permitted"),
        ("version: 1.2.0\nmodels: [a]\n", "registry: Field required"),
    ],
)
def test_bad_pin_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "modelzoo.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_pin(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value) and "\n" not in str(err.value)


def test_missing_pin_file_cli(tmp_path: Path) -> None:
    proc = run_cli("fetch", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr == "error: modelzoo.yaml: not found (write one with `modelzoo pin`)\n"


def test_pin_writes_then_updates(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    store = S3Store(f"s3://{s3_bucket}/reg", endpoint_url=s3_server.endpoint)
    put_release(store, "1.2.0", {"alpha": standard_files("alpha"), "beta": standard_files("beta")})
    put_release(store, "1.3.0", {"alpha": standard_files("alpha", b"new")})
    put_release(store, "2.0.0", {"alpha": standard_files("alpha")}, interface="2.0.0")
    pin = tmp_path / "modelzoo.yaml"

    made = run_cli(
        "pin",
        *("--registry", store.url, "--endpoint-url", s3_server.endpoint),
        *("--version", "1.2.0", "--models", "alpha,beta", "--target", "tensorrt-sm86"),
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert "1.2.0, 2 model(s), target tensorrt-sm86: 4 file(s)" in made.stdout
    data = yaml.safe_load(pin.read_text())
    assert data == {
        "registry": store.url,
        "endpoint_url": s3_server.endpoint,
        "version": "1.2.0",
        "target": "tensorrt-sm86",
        "interface": ">=1.0.0,<2.0.0",
        "models": ["alpha", "beta"],
        "dest": "autoware_data",
    }

    # beta is not in 1.3.0: refused, and the pin file is left as it was.
    before = pin.read_text()
    moved = run_cli("pin", "--version", "1.3.0", cwd=tmp_path)
    assert moved.returncode == 1 and "release 1.3.0: no model 'beta' (has: alpha)" in moved.stderr
    assert pin.read_text() == before

    moved = run_cli("pin", "--version", "1.3.0", "--models", "alpha", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr
    assert yaml.safe_load(pin.read_text()) == {**data, "version": "1.3.0", "models": ["alpha"]}

    major = run_cli("pin", "--version", "2.0.0", cwd=tmp_path)
    assert major.returncode == 5 and "interface 2.0.0 is not accepted (>=1.0.0,<2.0.0)" in major.stderr
    assert yaml.safe_load(pin.read_text())["version"] == "1.3.0"
    accepted = run_cli("pin", "--version", "2.0.0", "--interface", ">=2.0.0,<3.0.0", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr

    fresh = run_cli("pin", "--pin", "other.yaml", "--version", "1.2.0", cwd=tmp_path)
    assert fresh.returncode == 2 and "other.yaml: does not exist yet: pass --registry" in fresh.stderr
