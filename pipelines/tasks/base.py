"""The task interface and `Model`, which runs a model's components on one backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from pipelines.descriptor import format_validation_error
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.runtimes import get_backend

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import numpy as np

    from pipelines.descriptor import Endpoint, Tolerance
    from pipelines.latency import Timer
    from pipelines.runtimes.base import Arrays, Session
    from pipelines.workspace import ModelContext


def require_class_names(where: str, dataset_names: Iterable[object], class_names: Sequence[str], named_in: str) -> None:
    """The one rule for a dataset's categories and a model's classes, for every task: each class the
    model predicts must be a category of the evaluation dataset, matched by name (`where`: the dataset's
    file and field; `named_in`: where the model's class names come from). Categories the model does not
    predict are ignored."""
    have = {str(n) for n in dataset_names}
    if missing := [n for n in class_names if n not in have]:
        raise ModelzooError(f"{where}: no {missing} (has {sorted(have)}); {named_in} must match")


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
        self.where = f"models/{ctx.name}/model.yaml"
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


class Task(ABC):
    """Pre/post-processing and metrics of one task, identical for every backend."""

    Options: ClassVar[type[BaseModel]]
    # The result keys `compare_predictions` produces: names that tolerances and report_only may use
    # besides the component outputs (checked by `modelzoo validate`).
    prediction_checks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: ModelContext):
        self.ctx = ctx
        try:
            self.options = self.Options.model_validate(ctx.descriptor.task_options)
        except ValidationError as err:
            raise DescriptorError(format_validation_error(f"models/{ctx.name}/model.yaml: task_options", err)) from None

    @abstractmethod
    def load_samples(self, dataset: Path, split: str, limit: int) -> Sequence[Any]:
        """The first `limit` samples of a split (all when limit < 0), in a fixed order."""

    @abstractmethod
    def infer(self, model: Model, sample: Any, timer: Timer) -> Any:
        """preprocess -> model components -> postprocess; returns the prediction."""

    @abstractmethod
    def metrics(self, predictions: Sequence[Any], samples: Sequence[Any]) -> dict[str, Any]:
        """Task metrics; scalars at the top level, for `dvc metrics`."""

    def plots(self, predictions: Sequence[Any], samples: Sequence[Any]) -> dict[str, list[dict[str, Any]]]:
        """Optional plot data: file stem -> records (for `dvc plots`)."""
        return {}

    def ros_params(self) -> dict[str, dict[str, Any]]:
        """Autoware ROS parameter files: file stem -> content, written as `<stem>.param.yaml` beside
        the ONNX files at export. Derived from the model's own config, so they cannot disagree with it."""
        return {}

    def deploy_files(self) -> dict[str, str]:
        """Other files a consumer's node reads beside the ONNX files (parameter files whose schema
        allows no extra keys, label files): file name -> text, written as they are at export."""
        return {}

    def compare_predictions(
        self, ref: Any, test: Any, tolerance: Callable[[str], Tolerance]
    ) -> dict[str, dict[str, Any]]:
        """End-to-end checks of one sample for verify, beside the per-tensor ones: result key -> a
        `compare`-style dict with at least "pass" (detection: matched boxes within tolerance)."""
        return {}

    def calibration_inputs(self, samples: Sequence[Any], component: str) -> list[Arrays]:
        """Inputs of one component for int8 calibration, taken from a PyTorch run of `samples`."""
        from pipelines.stages.capture import capture_inputs

        return capture_inputs(self, samples)[component]

    def run(self, model: Model, sample: Any, timer: Timer) -> Result:
        model.raw = {}
        model.timer = timer
        prediction = self.infer(model, sample, timer)
        return Result(prediction, dict(model.raw))
