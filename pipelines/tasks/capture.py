"""Record what each component receives when a task runs the PyTorch model: export and int8
calibration then use real inputs, shaped exactly as the pipeline makes them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.descriptor import Endpoint
from pipelines.latency import Timer
from pipelines.tasks.model import Model

if TYPE_CHECKING:
    from pipelines.runtimes.base import Arrays
    from pipelines.workspace import ModelContext


class _Recording(Model):
    def __init__(self, ctx: ModelContext, endpoint: Endpoint):
        super().__init__(ctx, endpoint)
        self.seen: dict[str, list[Arrays]] = defaultdict(list)

    def __call__(self, component: str, inputs: Arrays) -> Arrays:
        self.seen[component].append({k: v.copy() for k, v in inputs.items()})
        return super().__call__(component, inputs)


def capture_inputs(
    ctx: ModelContext, run: Callable[[Model, Any, Timer], object], samples: Sequence[Any]
) -> dict[str, list[Arrays]]:
    """Each component's inputs, per sample, when `run` (a task's `Task.run`) processes `samples` on
    the PyTorch model (CPU)."""
    model = _Recording(ctx, Endpoint(backend="pytorch", device="cpu"))
    try:
        for s in samples:
            run(model, s, Timer())
    finally:
        model.close()
    return dict(model.seen)
