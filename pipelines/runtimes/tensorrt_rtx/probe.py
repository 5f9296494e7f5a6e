"""Probe for the TensorRT-RTX target: its version (`tensorrt_rtx-1.7`), and which GPU, if any, runs its engines.

TensorRT for RTX builds ahead of time on the CPU for the compute capabilities it is told (no GPU is
needed, and the GPU of the build machine plays no part), so the build environment is the version
alone. Its kernels are compiled on the GPU at first run, and only on the GPUs its runtime supports:
Ampere, Ada and Blackwell (sm80, sm86, sm89, sm120 and later), not Hopper (sm90, the H200).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from types import ModuleType

from pipelines.runtimes.base import TargetEnvironment, major_minor
from pipelines.runtimes.tensorrt.probe import CudaDevice, cuda_device

TARGET = "tensorrt_rtx"
PRODUCT = "TensorRT-RTX"
# The wheel tensorrt-rtx-cu13-bindings installs this module (the `tensorrt_rtx` metapackage is an sdist).
MODULE = "tensorrt_rtx_bindings"
UNAVAILABLE_KEY = f"{TARGET}-unavailable"


def runs_on(capability: tuple[int, int]) -> bool:
    return capability in ((8, 0), (8, 6), (8, 9)) or capability >= (12, 0)


def load() -> ModuleType | str:
    """The TensorRT-RTX Python module, or why it cannot be imported."""
    try:
        return importlib.import_module(MODULE)
    except ImportError as err:
        return f"import {MODULE} failed: {err} (install tensorrt-rtx-cu13-libs and -bindings: scripts/setup)"


@functools.cache
def probe() -> TargetEnvironment:
    api = load()
    if isinstance(api, str):
        return TargetEnvironment(TARGET, False, UNAVAILABLE_KEY, reason=api)
    version = str(api.__version__)
    return TargetEnvironment(
        TARGET, True, f"{TARGET}-{major_minor(version)}", details={"tensorrt_rtx": version, "built_on": "cpu"}
    )


def folder_key(env_key: str, sm: str) -> str:
    """`tensorrt_rtx-1.7-sm86`: the engines of one compute capability."""
    return f"{env_key}-{sm}"


def supported_gpu() -> CudaDevice | str:
    """The GPU that runs TensorRT-RTX engines here, or why none does (naming the GPU when there is one)."""
    device = cuda_device()
    if isinstance(device, str):
        return device
    if not runs_on(device.capability):
        return f"{device.name}, {device.sm}: not supported by {PRODUCT}"
    return device


def not_executed(version: str) -> str:
    """What a report says of an engine nobody ran here."""
    device = supported_gpu()
    why = device if isinstance(device, str) else f"no {device.sm} engine"
    return f"built by {PRODUCT} {major_minor(version)} on the CPU, not executed: {why}"
