"""Image classification (e.g. calibration status): normalization, softmax, accuracy and per-class P/R.

Dataset layout: `<dataset>/<split>.npz` with `images` (N, C, H, W) uint8 and `labels` (N,) int.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.errors import ModelzooError
from pipelines.latency import Timer
from pipelines.tasks.base import Task
from pipelines.tasks.model import Model


class ClassificationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class_names: list[str] = Field(min_length=2)
    # Per-channel normalization applied to uint8 inputs: (x - mean) / std.
    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _channels(self) -> ClassificationOptions:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} channels, std {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        return self


@dataclass(frozen=True)
class Sample:
    index: int
    image: np.ndarray  # (C, H, W) uint8
    label: int


@dataclass(frozen=True)
class Prediction:
    label: int
    scores: np.ndarray


def load_split(dataset: Path, split: str, shown: str) -> tuple[np.ndarray, np.ndarray]:
    path = dataset / f"{split}.npz"
    if not path.is_file():
        raise ModelzooError(f"{shown}/{split}.npz: dataset split not found")
    with np.load(path) as data:
        if "images" not in data or "labels" not in data:
            raise ModelzooError(f"{shown}/{split}.npz: needs arrays 'images' and 'labels', has {sorted(data.files)}")
        return data["images"], data["labels"]


class ClassificationTask(Task):
    Options = ClassificationOptions
    options: ClassificationOptions

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        comp = ctx.descriptor.components[0]
        self.component = comp.name
        self.input_name = comp.inputs[0].name
        self.output_name = comp.outputs[0].name
        channels = len(self.options.mean)
        self._mean = np.asarray(self.options.mean, np.float32).reshape(channels, 1, 1)
        self._std = np.asarray(self.options.std, np.float32).reshape(channels, 1, 1)

    def load_samples(self, dataset: Path, split: str, limit: int) -> list[Sample]:
        images, labels = load_split(dataset, split, self.ctx.rel(dataset))
        n = len(labels) if limit < 0 else min(limit, len(labels))
        return [Sample(i, images[i], int(labels[i])) for i in range(n)]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        x = (image.astype(np.float32) - self._mean) / self._std
        return x[None]

    @staticmethod
    def postprocess(logits: np.ndarray) -> Prediction:
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        return Prediction(int(p.argmax()), p)

    def infer(self, model: Model, sample: Sample, timer: Timer) -> Prediction:
        with timer.part("preprocess"):
            x = self.preprocess(sample.image)
        logits = model(self.component, {self.input_name: x})[self.output_name]
        with timer.part("postprocess"):
            return self.postprocess(logits)

    def confusion(self, predictions: Sequence[Prediction], samples: Sequence[Sample]) -> np.ndarray:
        k = len(self.options.class_names)
        cm = np.zeros((k, k), dtype=np.int64)
        for pred, s in zip(predictions, samples, strict=True):
            cm[s.label, pred.label] += 1
        return cm

    def metrics(self, predictions: Sequence[Prediction], samples: Sequence[Sample]) -> dict[str, Any]:
        cm = self.confusion(predictions, samples)
        out: dict[str, Any] = {"accuracy": round(float(np.trace(cm) / max(cm.sum(), 1)), 6)}
        for i, name in enumerate(self.options.class_names):
            tp = cm[i, i]
            out[f"precision_{name}"] = round(float(tp / max(cm[:, i].sum(), 1)), 6)
            out[f"recall_{name}"] = round(float(tp / max(cm[i, :].sum(), 1)), 6)
        out["confusion_matrix"] = cm.tolist()
        return out

    def plots(self, predictions: Sequence[Prediction], samples: Sequence[Sample]) -> dict[str, list[dict[str, Any]]]:
        names = self.options.class_names
        return {
            "confusion": [
                {"actual": names[s.label], "predicted": names[p.label]}
                for p, s in zip(predictions, samples, strict=True)
            ]
        }


TASK = ClassificationTask
