"""Run a task over samples on one endpoint, or say why the endpoint is skipped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.latency import Timer
from pipelines.runtimes import BackendUnavailable, get_backend
from pipelines.tasks.model import Model, Result

if TYPE_CHECKING:
    from pipelines.descriptor import Endpoint
    from pipelines.tasks.base import Task


def skip_reason(endpoint: Endpoint) -> str | None:
    try:
        get_backend(endpoint.backend).check(endpoint)
    except BackendUnavailable as err:
        return str(err)
    return None


def run_endpoint(task: Task, endpoint: Endpoint, samples: Sequence[Any], warmup: int = 0) -> tuple[list[Result], Timer]:
    """All samples through the model on `endpoint`; the first `warmup` runs of sample 0 are untimed."""
    model = Model(task.ctx, endpoint)
    timer = Timer()
    try:
        for _ in range(warmup if samples else 0):
            task.run(model, samples[0], timer)
            timer.discard()
        results = []
        for s in samples:
            results.append(task.run(model, s, timer))
            timer.next_sample()
    finally:
        model.close()
    return results, timer
