"""TensorRT backend: deserializes engines of the `tensorrt` target (needs TensorRT and a CUDA GPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.backends.base import BackendUnavailable
from pipelines.backends.tensorrt_env import probe

if TYPE_CHECKING:
    from pipelines.backends.base import Session
    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext


class TensorRTBackend:
    name = "tensorrt"

    def check(self, endpoint: Endpoint) -> None:
        env = probe()
        if not env.available:
            raise BackendUnavailable(env.reason)
        if not endpoint.device.startswith("cuda"):
            raise BackendUnavailable(f"tensorrt needs a cuda device, not {endpoint.device}")

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> Session:
        self.check(endpoint)
        raise BackendUnavailable("the TensorRT runtime session is not implemented yet")


BACKEND = TensorRTBackend()
