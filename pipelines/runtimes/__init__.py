"""Runtimes: one package per runtime, `pipelines/runtimes/<name>/`, holding what it can do:

    session.py   BACKEND: runs a component (an endpoint `backend: <name>` in model.yaml)
    probe.py     probe() -> TargetEnvironment: the build environment key (artifacts/env/<name>.json)
    build.py     SUFFIX, build(): makes the deployable file (`build.targets: [<name>]`)

A new runtime is one folder, one line in RUNTIMES, and its name in the descriptor's BACKENDS
and/or TARGETS (a runtime with a session is a backend, one with a build is a target; a test checks
that the two agree).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from pipelines.runtimes.base import Backend, BackendUnavailable, Session, TargetEnvironment

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

RUNTIMES = ("pytorch", "onnxruntime", "tensorrt", "tensorrt_rtx")


def _has(runtime: str, part: str) -> bool:
    return importlib.util.find_spec(f"{__name__}.{runtime}.{part}") is not None


BACKENDS = tuple(r for r in RUNTIMES if _has(r, "session"))
TARGETS = tuple(r for r in RUNTIMES if _has(r, "build") and _has(r, "probe"))


def _module(runtime: str, part: str, known: tuple[str, ...], what: str) -> Any:
    if runtime not in known:
        raise KeyError(f"unknown {what} '{runtime}' (known: {', '.join(known)})")
    return importlib.import_module(f"{__name__}.{runtime}.{part}")


def get_backend(name: str) -> Backend:
    backend: Backend = _module(name, "session", BACKENDS, "backend").BACKEND
    return backend


def get_target(name: str) -> Any:
    """The build module of a target (see base.Target)."""
    return _module(name, "build", TARGETS, "target")


def target_environment(name: str) -> TargetEnvironment:
    env: TargetEnvironment = _module(name, "probe", TARGETS, "target").probe()
    return env


def build_folders(name: str, ctx: ModelContext, env: TargetEnvironment) -> dict[str, dict[str, str]]:
    """The build folders of a target in this environment, each with its manifest details."""
    folders = getattr(get_target(name), "folders", None)
    if folders is None:
        return {env.key: dict(env.details or {})}
    out: dict[str, dict[str, str]] = folders(ctx, env)
    return out


__all__ = [
    "BACKENDS",
    "RUNTIMES",
    "TARGETS",
    "Backend",
    "BackendUnavailable",
    "Session",
    "TargetEnvironment",
    "build_folders",
    "get_backend",
    "get_target",
    "target_environment",
]
