"""`Model`: a model's components opened on one backend, called by the tasks; `Result`: one sample's
prediction and raw outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import DescriptorError
from pipelines.runtimes import get_backend

if TYPE_CHECKING:
    import numpy as np

    from pipelines.descriptor import Endpoint
    from pipelines.latency import Timer
    from pipelines.runtimes.base import Arrays, Session
    from pipelines.workspace import ModelContext


class Model:
    """A model's components opened on one endpoint; calls are timed under the component's name."""

    def __init__(self, ctx: ModelContext, endpoint: Endpoint):
        self.endpoint = endpoint
        backend = get_backend(endpoint.backend)
        self.sessions: dict[str, Session] = {}
        try:
            for comp in ctx.descriptor.components:
                self.sessions[comp.name] = backend.open(ctx, comp.name, endpoint)
        except BaseException:
            self.close()
            raise
        self.timer: Timer | None = None
        self.where = ctx.descriptor_file
        self.output_names = {c.name: [o.name for o in c.outputs] for c in ctx.descriptor.components}
        # Every component output of the last sample, keyed "<component>.<output>", for verify.
        self.raw: dict[str, np.ndarray] = {}

    def __call__(self, component: str, inputs: Arrays) -> Arrays:
        session = self.sessions[component]
        if self.timer is None:
            outputs = session.run(inputs)
        else:
            # Sessions on a GPU append the CUDA-event time of each run to `device_ms`.
            gpu: list[float] | None = getattr(session, "device_ms", None)
            before = len(gpu) if gpu is not None else 0
            with self.timer.part(component):
                outputs = session.run(inputs)
            if gpu is not None and len(gpu) > before:
                self.timer.add_device(component, gpu[-1])
        missing = [n for n in self.output_names[component] if n not in outputs]
        if missing:
            raise DescriptorError(
                f"{self.where}: components.{component}: outputs {missing} not produced by its "
                f"{self.endpoint.key} artifact (it has {sorted(outputs)}): re-export after renaming an output"
            )
        self.raw.update({f"{component}.{k}": v for k, v in outputs.items()})
        return outputs

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()


@dataclass
class Result:
    prediction: Any
    raw: dict[str, np.ndarray] = field(default_factory=dict)
