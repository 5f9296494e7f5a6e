"""Probe of the onnxruntime target: ONNX Runtime's minor version, the CPU EP and the architecture."""

from __future__ import annotations

import importlib.metadata
import platform

from pipelines.runtimes.base import TargetEnvironment, major_minor


def probe() -> TargetEnvironment:
    version = importlib.metadata.version("onnxruntime")
    key = f"onnxruntime-{major_minor(version)}-cpu-{platform.machine()}"
    return TargetEnvironment("onnxruntime", True, key, details={"onnxruntime": version})
