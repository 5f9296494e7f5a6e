"""The build environment recorded beside every build (published as provenance/build/environment.json)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from pathlib import Path

from pipelines.buildenv import _cpu, build_environment


def test_build_environment_of_this_machine() -> None:
    env = build_environment()
    assert env.python == sys.version.split()[0]
    assert env.key_packages["onnxruntime"] == importlib.metadata.version("onnxruntime")
    assert f"onnx=={importlib.metadata.version('onnx')}" in env.packages
    assert env.packages_lock_sha256 == hashlib.sha256("\n".join(env.packages).encode()).hexdigest()
    assert env.packages == sorted(env.packages) and build_environment().packages_lock_sha256 == env.packages_lock_sha256
    if Path("/proc/cpuinfo").is_file():
        assert env.cpu_flags and env.cpu_model
    assert isinstance(env.gpus, list)  # [] where nvidia-smi is absent


def test_cpu_flags_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: sse4_2 avx2 fma avx2\n\n"
        "processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: sse4_2 avx2 fma\n"
    )
    assert _cpu(info) == ("Example CPU 9000", ["avx2", "fma", "sse4_2"])
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimdhp\nCPU part\t: 0xd42\n")
    assert _cpu(arm)[1] == ["asimd", "asimdhp", "fp"]
