"""The detection2d task: YOLOX-style decoding, NMS, COCO metrics and the Autoware files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.comparison import OutputComparison
from pipelines.descriptor import Tolerance
from pipelines.errors import DescriptorError
from pipelines.latency import Timer
from pipelines.tasks.base import Task
from pipelines.tasks.detection2d import autoware, coco
from pipelines.tasks.detection2d.boxes import (
    DETECTION_CHECKS,
    Detections,
    Letterbox,
    compare_detections,
    decode,
    grid_priors,
    letterbox,
    select,
    unletterbox,
)
from pipelines.tasks.detection2d.coco import Sample
from pipelines.tasks.model import Model


class Detection2DOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class_names: list[str] = Field(min_length=1)
    strides: list[int] = Field([8, 16, 32], min_length=1)
    pad_value: int = Field(114, ge=0, le=255)
    # Evaluation post-processing (COCO mAP wants the low-score tail too, as mmdet's val does).
    score_threshold: float = Field(0.01, ge=0, le=1)
    nms_threshold: float = Field(0.65, gt=0, le=1)
    max_detections: int = Field(100, ge=1)
    # The operating point written to the ml_package parameter file (Autoware's tensorrt_yolox default).
    ros_score_threshold: float = Field(0.35, ge=0, le=1)
    # Class name -> the Autoware ObjectClassification label the node publishes it as (ROI remap
    # file); classes not listed are UNKNOWN.
    autoware_labels: dict[str, Literal[tuple(autoware.OBJECT_CLASSIFICATION)]] = {}  # type: ignore[valid-type]
    # Dataset layout, relative to the dataset folder; {split} is the evaluation split (COCO's own).
    annotations: str = "annotations/instances_{split}.json"
    images: str = "{split}"

    @model_validator(mode="after")
    def _labels_name_classes(self) -> Detection2DOptions:
        unknown = sorted(set(self.autoware_labels) - set(self.class_names))
        if unknown:
            raise ValueError(f"autoware_labels: {unknown} are not in class_names {self.class_names}")
        return self


class Detection2DTask(Task):
    Options = Detection2DOptions
    prediction_checks = DETECTION_CHECKS
    options: Detection2DOptions

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        where = f"{ctx.descriptor_file}: components"
        comp = ctx.descriptor.components[0]
        if len(ctx.descriptor.components) != 1 or len(comp.inputs) != 1 or len(comp.outputs) != 1:
            raise DescriptorError(
                f"{where}: detection2d needs one component, one input, one output [batch, anchors, 5 + classes] "
                "(autoware_tensorrt_yolox binds [input, output])"
            )
        self.component = comp.name
        self.input_name = comp.inputs[0].name
        self.output_name = comp.outputs[0].name
        _, channels, h, w = comp.inputs[0].shape
        if channels != 3 or not isinstance(h, int) or not isinstance(w, int):
            raise DescriptorError(f"{where}.{comp.name}.inputs: needs [batch, 3, height, width], fixed height/width")
        self.input_size = (h, w)
        if any(h % s or w % s for s in self.options.strides):
            raise DescriptorError(f"{where}.{comp.name}.inputs: {h}x{w} is not divisible by {self.options.strides}")
        self.priors = grid_priors(self.input_size, self.options.strides)
        self._last: tuple[Sequence[Detections], Sequence[Sample], coco.CocoMetrics] | None = None
        shape = comp.outputs[0].shape
        if shape[1:] != [len(self.priors), 5 + len(self.options.class_names)]:
            raise DescriptorError(
                f"{where}.{comp.name}.outputs.{self.output_name}: shape {shape}, expected "
                f"[batch, {len(self.priors)}, {5 + len(self.options.class_names)}] "
                "(anchors x dx, dy, log w, log h, objectness + task_options.class_names)"
            )

    def paths(self, dataset: Path, split: str) -> tuple[Path, Path]:
        return (
            dataset / self.options.annotations.format(split=split),
            dataset / self.options.images.format(split=split),
        )

    def load_samples(self, dataset: Path, split: str, limit: int) -> list[Sample]:
        annotations, images = self.paths(dataset, split)
        return coco.load(annotations, images, self.options.class_names, limit)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """HWC BGR uint8 -> (1, 3, H, W) float32 letterboxed pixels, and where the image went."""
        boxed, lb = letterbox(image, self.input_size, self.options.pad_value)
        return np.ascontiguousarray(boxed.transpose(2, 0, 1)[None], dtype=np.float32), lb

    def postprocess(self, outputs: dict[str, np.ndarray], index: int = 0) -> Detections:
        """Image `index` of a batch of raw outputs -> detections in input pixels (before unletterbox)."""
        out = outputs[self.output_name][index]
        o = self.options
        boxes = decode(out[:, :4], self.priors)
        return select(boxes, out[:, 4], out[:, 5:], o.score_threshold, o.nms_threshold, o.max_detections)

    def infer(self, model: Model, sample: Sample, timer: Timer) -> Detections:
        image = coco.read_image(sample)
        with timer.part("preprocess"):
            x, lb = self.preprocess(image)
        outputs = model(self.component, {self.input_name: x})
        with timer.part("postprocess"):
            return unletterbox(self.postprocess(outputs), lb, sample.width, sample.height)

    def _evaluate(self, predictions: Sequence[Detections], samples: Sequence[Sample]) -> coco.CocoMetrics:
        # metrics() and plots() are called back to back on the same lists: evaluate once. The lists
        # themselves are kept (not their ids, which a new list could reuse once they are freed).
        last = self._last
        if last is None or last[0] is not predictions or last[1] is not samples:
            names = self.options.class_names
            gt = coco.ground_truth(samples, names)
            last = (predictions, samples, coco.evaluate(gt, coco.results(predictions, samples), names))
            self._last = last
        return last[2]

    def metrics(self, predictions: Sequence[Detections], samples: Sequence[Sample]) -> dict[str, Any]:
        m = self._evaluate(predictions, samples)
        out: dict[str, Any] = {k: round(v, 6) for k, v in m.stats.items()}
        out.update({f"AP_{name}": round(v, 6) for name, v in m.per_class_ap.items()})
        out["detections"] = int(sum(len(p) for p in predictions))
        return out

    def plots(self, predictions: Sequence[Detections], samples: Sequence[Sample]) -> dict[str, list[dict[str, Any]]]:
        m = self._evaluate(predictions, samples)
        recall = np.linspace(0, 1, 101)
        return {
            "pr_curve_iou50": [
                {"class": name, "recall": round(float(r), 2), "precision": round(p, 6)}
                for name, curve in m.pr_curve_50.items()
                for r, p in zip(recall, curve, strict=True)
                if p >= 0
            ]
        }

    def compare_predictions(
        self, ref: Detections, test: Detections, tolerance: Callable[[str], Tolerance]
    ) -> dict[str, OutputComparison]:
        tol = tolerance(DETECTION_CHECKS[0])
        return compare_detections(ref, test, tol.atol, tol.rtol, self.options.ros_score_threshold)

    def deploy_files(self) -> dict[str, str]:
        """What autoware_tensorrt_yolox reads beside the ONNX file (`autoware` says how each is named)."""
        return autoware.bundle(self.ctx.descriptor, self.component, self.options)
