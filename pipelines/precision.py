"""Precision policies as ONNX transformations: fp32 (as exported), fp16, int8."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext


def make_variant(ctx: ModelContext, precision: str, component: str, dest: Path) -> dict[str, Any]:
    """Write the `precision` variant of a component's fp32 ONNX to `dest`; returns what was done."""
    raise ModelzooError(f"models/{ctx.name}/model.yaml: build.precisions: '{precision}' is not supported yet")
