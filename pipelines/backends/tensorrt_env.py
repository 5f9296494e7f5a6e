"""Probe for the TensorRT target: TensorRT version and GPU compute capability, or why not."""

from __future__ import annotations

import functools

from pipelines.environment import TargetEnvironment

UNAVAILABLE_KEY = "tensorrt-unavailable"


@functools.cache
def probe() -> TargetEnvironment:
    try:
        import tensorrt as trt
    except ImportError as err:
        return TargetEnvironment("tensorrt", False, UNAVAILABLE_KEY, reason=f"import tensorrt failed: {err}")
    try:
        import torch

        if not torch.cuda.is_available():
            return TargetEnvironment("tensorrt", False, UNAVAILABLE_KEY, reason="no CUDA device visible")
        major, minor = torch.cuda.get_device_capability(0)
        gpu = torch.cuda.get_device_name(0)
    except Exception as err:  # a broken driver must not crash the probe
        return TargetEnvironment("tensorrt", False, UNAVAILABLE_KEY, reason=f"CUDA probe failed: {err}")
    version = ".".join(trt.__version__.split(".")[:2])
    return TargetEnvironment(
        "tensorrt",
        True,
        f"tensorrt-{version}-sm{major}{minor}",
        details={"tensorrt": trt.__version__, "gpu": gpu, "compute_capability": f"{major}.{minor}"},
    )
