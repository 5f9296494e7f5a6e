"""Probe for the TensorRT target: TensorRT version and GPU compute capability, or why not.

The key names the engine folder and is the DVC fingerprint of every build (artifacts/env/tensorrt.json):
`tensorrt-10.13-sm90`. An engine only runs on the TensorRT minor version and the compute capability it
was built for, so engines for several GPUs live side by side and none is ever loaded on another.
Where TensorRT cannot run the key is UNAVAILABLE_KEY, which matches no real key, so a GPU machine never
trusts a build that was skipped elsewhere.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pipelines.runtimes.base import TargetEnvironment

UNAVAILABLE_KEY = "tensorrt-unavailable"
# TensorRT 10 is the first with strongly typed networks and without implicit batch.
MIN_MAJOR = 10
KEY_PATTERN = re.compile(r"^tensorrt-(\d+)\.(\d+)-sm(\d+)$")


@dataclass(frozen=True)
class CudaDevice:
    name: str
    capability: tuple[int, int]

    @property
    def sm(self) -> str:
        return f"sm{self.capability[0]}{self.capability[1]}"


def cuda_device() -> CudaDevice | str:
    """The first CUDA device as torch sees it, or why there is none."""
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU"
        return CudaDevice(torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
    except Exception as err:  # a broken driver must not crash the probe
        return f"CUDA probe failed: {err}"


def environment_key(trt_version: str, capability: tuple[int, int]) -> str:
    """`tensorrt-<major>.<minor>-sm<cc>`: what an engine is tied to (patch releases keep the format)."""
    major, minor = trt_version.split(".")[:2]
    return f"tensorrt-{int(major)}.{int(minor)}-sm{capability[0]}{capability[1]}"


def _unavailable(reason: str) -> TargetEnvironment:
    return TargetEnvironment("tensorrt", False, UNAVAILABLE_KEY, reason=reason)


@functools.cache
def probe() -> TargetEnvironment:
    try:
        import tensorrt as trt
    except ImportError as err:
        return _unavailable(f"import tensorrt failed: {err}")
    # tensorrt-stubs alone leaves an empty namespace package `tensorrt` that imports fine.
    version = getattr(trt, "__version__", None)
    if not isinstance(version, str):
        return _unavailable("tensorrt is not installed (only its type stubs: no tensorrt.__version__)")
    if int(version.split(".")[0]) < MIN_MAJOR:
        return _unavailable(f"tensorrt {version} is older than {MIN_MAJOR}.0 (no strongly typed networks)")
    device = cuda_device()
    if isinstance(device, str):
        return _unavailable(f"tensorrt {version}: {device}")
    cc = device.capability
    return TargetEnvironment(
        "tensorrt",
        True,
        environment_key(version, cc),
        details={"tensorrt": version, "gpu": device.name, "compute_capability": f"{cc[0]}.{cc[1]}"},
    )
