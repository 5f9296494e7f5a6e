"""The machine an artifact was built on: interpreter, installed packages (as a lock hash), CPU, GPU.

Written beside each build (artifacts/<model>/build/environment.json) and published as the release's
provenance/build/environment.json, so a rebuild elsewhere can be compared with what was released.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Beside build.json in artifacts/<model>/build/.
BUILD_ENVIRONMENT = "environment.json"
# Packages whose version changes what a build writes; the lock hash covers all the others.
KEY_PACKAGES = ("onnx", "onnxruntime", "onnxconverter-common", "onnxslim", "torch", "numpy", "tensorrt")


@dataclass(frozen=True)
class BuildEnvironment:
    python: str
    platform: str
    machine: str
    # sha256 of the sorted `name==version` lines of every installed distribution (`packages`).
    packages_lock_sha256: str
    key_packages: dict[str, str]
    cpu_model: str
    cpu_flags: list[str]
    gpus: list[dict[str, str]] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def installed_packages() -> list[str]:
    found = {
        f"{(d.metadata['Name'] or '').lower().replace('_', '-')}=={d.version}"
        for d in importlib.metadata.distributions()
    }
    return sorted(p for p in found if not p.startswith("=="))


def _cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    model: str = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        text = cpuinfo.read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "CPU part") and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = sorted(set(value.split()))
    return model, flags


def _gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs by nvidia-smi (name, driver, compute capability); none where it is absent."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "compute_capability": parts[2]})
    return gpus


def build_environment() -> BuildEnvironment:
    packages = installed_packages()
    versions = dict(p.split("==", 1) for p in packages)
    model, flags = _cpu()
    return BuildEnvironment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        machine=platform.machine(),
        packages_lock_sha256=hashlib.sha256("\n".join(packages).encode()).hexdigest(),
        key_packages={k: versions[k] for k in KEY_PACKAGES if k in versions},
        cpu_model=model,
        cpu_flags=flags,
        gpus=_gpus(),
        packages=packages,
    )
