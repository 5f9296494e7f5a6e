"""The task interface: what every task does around the model, identical for every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from pipelines.descriptor import format_validation_error
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.tasks.capture import capture_inputs
from pipelines.tasks.model import Model, Result

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from pipelines.comparison import OutputComparison
    from pipelines.descriptor import Tolerance
    from pipelines.latency import Timer
    from pipelines.runtimes.base import Arrays
    from pipelines.workspace import ModelContext


def require_class_names(where: str, dataset_names: Iterable[object], class_names: Sequence[str], named_in: str) -> None:
    """The one rule for a dataset's categories and a model's classes, for every task: each class the
    model predicts must be a category of the evaluation dataset, matched by name (`where`: the dataset's
    file and field; `named_in`: where the model's class names come from). Categories the model does not
    predict are ignored."""
    have = {str(n) for n in dataset_names}
    if missing := [n for n in class_names if n not in have]:
        raise ModelzooError(f"{where}: no {missing} (has {sorted(have)}); {named_in} must match")


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
            raise DescriptorError(format_validation_error(f"{ctx.descriptor_file}: task_options", err)) from None

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
    ) -> dict[str, OutputComparison]:
        """End-to-end checks of one sample for verify, beside the per-tensor ones: result key -> its
        comparison (detection: matched boxes within tolerance)."""
        return {}

    def capture_inputs(self, samples: Sequence[Any]) -> dict[str, list[Arrays]]:
        """What each component receives when this task runs the PyTorch model on `samples`."""
        return capture_inputs(self.ctx, self.run, samples)

    def calibration_inputs(self, samples: Sequence[Any], component: str) -> list[Arrays]:
        """Inputs of one component for int8 calibration, taken from a PyTorch run of `samples`."""
        return self.capture_inputs(samples)[component]

    def run(self, model: Model, sample: Any, timer: Timer) -> Result:
        model.raw = {}
        model.timer = timer
        prediction = self.infer(model, sample, timer)
        return Result(prediction, dict(model.raw))
