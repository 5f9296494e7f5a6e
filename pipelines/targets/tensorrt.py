"""Target `tensorrt`: a strongly typed TensorRT engine (needs TensorRT and a CUDA GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

SUFFIX = ".engine"


def build(src: Path, dest: Path, ctx: ModelContext, component: str) -> dict[str, Any]:
    raise NotImplementedError("the TensorRT engine builder is not implemented yet")
