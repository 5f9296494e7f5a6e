"""What every runtime package provides: a session (backend), a probe and a build (target).

A session opens a component of a model on a device and runs it on named numpy arrays. A probe
fingerprints the build environment: a different runtime or GPU must rebuild, never reuse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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


class Target(Protocol):
    """A runtime's `build` module. `folders(ctx, env)` (optional) names the build folders of one
    environment when a target builds several (TensorRT-RTX: one per compute capability), each with
    the details the release manifest records, and `build` then also takes `folder=`; without it the
    one folder is the environment key. `describe(ctx, env)` (optional) says in build.json what ran."""

    SUFFIX: str

    def build(self, src: Path, dest: Path, ctx: ModelContext, component: str) -> dict[str, Any]: ...


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
