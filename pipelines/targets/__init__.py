"""Build targets: turn a (precision variant) ONNX file into a deployable artifact for a runtime.

A target module exposes `SUFFIX` and `build(src: Path, dest: Path, ctx, component) -> dict`.
Add a target by adding a module and a line in _MODULES (and its probe in environment.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {
    "onnxruntime": "pipelines.targets.onnxruntime",
    "tensorrt": "pipelines.targets.tensorrt",
}


def get_target(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])
