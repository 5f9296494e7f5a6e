"""TensorRT-RTX backend: runs the engine of the present GPU's compute capability, on the GPUs its
runtime supports (not Hopper: an H200 is refused with "compute capability 9.0"). Sessions are the
TensorRT backend's, on the TensorRT-RTX module."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pipelines.runtimes.base import BackendUnavailable, TargetEnvironment
from pipelines.runtimes.tensorrt.build import engine_path
from pipelines.runtimes.tensorrt.session import TensorRTBackend
from pipelines.runtimes.tensorrt_rtx.probe import folder_key, load, not_executed, probe, supported_gpu

if TYPE_CHECKING:
    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext


class TensorRTRTXBackend(TensorRTBackend):
    name = "tensorrt_rtx"

    def environment(self) -> TargetEnvironment:
        return probe()

    def check(self, endpoint: Endpoint) -> None:
        super().check(endpoint)
        if isinstance(supported_gpu(), str):
            raise BackendUnavailable(not_executed((self.environment().details or {})["tensorrt_rtx"]))

    def engine(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> tuple[Path, str]:
        device = supported_gpu()
        assert not isinstance(device, str)  # check() said so
        path = engine_path(ctx, folder_key(self.environment().key, device.sm), endpoint.precision, component)
        return path, f"add {device.sm} to build.rtx_compute_capabilities"

    def api(self) -> ModuleType:
        api = load()
        assert not isinstance(api, str)  # check() said so
        return api


BACKEND = TensorRTRTXBackend()
