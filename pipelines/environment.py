"""Build-environment fingerprints: a different runtime or GPU must rebuild, never reuse."""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TargetEnvironment:
    target: str
    available: bool
    # Path component and DVC fingerprint, e.g. onnxruntime-1.31-cpu-x86_64, tensorrt-10.13-sm90.
    key: str
    reason: str = ""
    details: dict[str, str] | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def onnxruntime_environment() -> TargetEnvironment:
    version = importlib.metadata.version("onnxruntime")
    key = f"onnxruntime-{_major_minor(version)}-cpu-{platform.machine()}"
    return TargetEnvironment("onnxruntime", True, key, details={"onnxruntime": version})


def tensorrt_environment() -> TargetEnvironment:
    from pipelines.backends.tensorrt_env import probe  # imports tensorrt lazily

    return probe()


PROBES = {"onnxruntime": onnxruntime_environment, "tensorrt": tensorrt_environment}


def target_environment(target: str) -> TargetEnvironment:
    return PROBES[target]()
