"""Tasks: pre/post-processing and metrics, shared by every backend. One module per task."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pipelines.tasks.base import Task
from pipelines.tasks.model import Model, Result

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

_MODULES = {
    "classification": "pipelines.tasks.classification",
    "detection2d": "pipelines.tasks.detection2d",
    "detection3d": "pipelines.tasks.detection3d",
}


def get_task(ctx: ModelContext) -> Task:
    module = importlib.import_module(_MODULES[ctx.descriptor.task])
    task: Task = module.TASK(ctx)
    return task


__all__ = ["Model", "Result", "Task", "get_task"]
