"""Inference backends. Each module registers one backend; add a backend by adding a module here."""

from __future__ import annotations

import importlib

from pipelines.backends.base import Backend, BackendUnavailable, Session

_MODULES = {
    "pytorch": "pipelines.backends.pytorch",
    "onnxruntime": "pipelines.backends.onnxruntime",
    "tensorrt": "pipelines.backends.tensorrt",
}


def get_backend(name: str) -> Backend:
    if name not in _MODULES:
        raise KeyError(f"unknown backend '{name}' (known: {', '.join(_MODULES)})")
    module = importlib.import_module(_MODULES[name])
    backend: Backend = module.BACKEND
    return backend


__all__ = ["Backend", "BackendUnavailable", "Session", "get_backend"]
