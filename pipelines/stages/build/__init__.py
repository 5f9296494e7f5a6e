"""build: precision variants of the exported ONNX files (precision.py), then one deployable
artifact per target (stage.py)."""

from pipelines.stages.build.stage import run_build

__all__ = ["run_build"]
