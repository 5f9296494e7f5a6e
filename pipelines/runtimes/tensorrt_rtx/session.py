"""TensorRT-RTX backend: runs the engine of the present GPU's compute capability, on the GPUs its
runtime supports (not Hopper: an H200 is refused with "compute capability 9.0"). Sessions are the
TensorRT backend's, on the TensorRT-RTX module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.runtimes.base import BackendUnavailable
from pipelines.runtimes.tensorrt.build import engine_path
from pipelines.runtimes.tensorrt.session import TrtSession
from pipelines.runtimes.tensorrt_rtx.probe import folder_key, load, not_executed, probe, supported_gpu

if TYPE_CHECKING:
    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext


class TensorRTRTXBackend:
    name = "tensorrt_rtx"

    def check(self, endpoint: Endpoint) -> None:
        env = probe()
        if not env.available:
            raise BackendUnavailable(env.reason)
        if not endpoint.device.startswith("cuda"):
            raise BackendUnavailable(f"tensorrt_rtx needs a cuda device, not {endpoint.device}")
        if isinstance(supported_gpu(), str):
            raise BackendUnavailable(not_executed((env.details or {})["tensorrt_rtx"]))

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> TrtSession:
        self.check(endpoint)
        device = supported_gpu()
        api = load()
        assert not isinstance(device, str) and not isinstance(api, str)  # check() said so
        path = engine_path(ctx, folder_key(probe().key, device.sm), endpoint.precision, component)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not built (add {device.sm} to build.rtx_compute_capabilities)")
        return TrtSession(path, endpoint.device, api)


BACKEND = TensorRTRTXBackend()
