"""The backend interface: open a component of a model on a device, run it on named numpy arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext

Arrays = dict[str, np.ndarray]


class BackendUnavailable(Exception):
    """This backend cannot run here (no TensorRT, no CUDA device...): skip with this reason."""


class Session(Protocol):
    """One loaded component. `run` blocks until the outputs are on the host. A session on a GPU
    also keeps `device_ms: list[float]`, the CUDA-event time of each run's computation."""

    def run(self, inputs: Arrays) -> Arrays: ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str

    def check(self, endpoint: Endpoint) -> None:
        """Raise BackendUnavailable when the endpoint cannot run on this machine."""

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> Session: ...
