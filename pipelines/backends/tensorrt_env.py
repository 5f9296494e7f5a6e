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

from pipelines.environment import TargetEnvironment

UNAVAILABLE_KEY = "tensorrt-unavailable"
# TensorRT 10 is the first with strongly typed networks and without implicit batch.
MIN_MAJOR = 10
KEY_PATTERN = re.compile(r"^tensorrt-(\d+)\.(\d+)-sm(\d+)$")


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
    try:
        import torch

        if not torch.cuda.is_available():
            return _unavailable(f"tensorrt {version}: no CUDA device visible")
        capability = torch.cuda.get_device_capability(0)
        gpu = torch.cuda.get_device_name(0)
    except Exception as err:  # a broken driver must not crash the probe
        return _unavailable(f"CUDA probe failed: {err}")
    return TargetEnvironment(
        "tensorrt",
        True,
        environment_key(version, capability),
        details={"tensorrt": version, "gpu": gpu, "compute_capability": f"{capability[0]}.{capability[1]}"},
    )
