"""COCO-format annotations in, COCO metrics out (pycocotools: the reference implementation).

A dataset is laid out as COCO's own: `annotations/instances_<split>.json` and the images of the
split in `<split>/`, so a real COCO (split `val2017`) loads the same way as the synthetic data.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import ModelzooError
from pipelines.tasks.base import require_class_names
from pipelines.tasks.detection2d.boxes import Detections


@dataclass(frozen=True)
class Sample:
    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (K, 4) x1, y1, x2, y2
    labels: np.ndarray  # (K,) class index
    # The annotations as the file has them (COCO fields), for evaluation and round trips.
    annotations: list[dict[str, Any]] = field(default_factory=list, repr=False)
    file_name: str = ""


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelzooError(f"{path}: COCO annotation file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelzooError(f"{path}: not a readable JSON file: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ModelzooError(f"{path}: expected a COCO object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ModelzooError(f"{path}: {key}: missing or not a list (not a COCO instances file)")
    return data


def category_map(data: dict[str, Any], class_names: list[str], path: Path) -> dict[int, int]:
    """COCO category id -> class index, matched by name; categories the model lacks are dropped."""
    by_name = {c.get("name"): c.get("id") for c in data["categories"]}
    require_class_names(f"{path}: categories", by_name, class_names, "task_options.class_names")
    return {int(by_name[n]): i for i, n in enumerate(class_names)}


def load(path: Path, images_dir: Path, class_names: list[str], limit: int = -1) -> list[Sample]:
    """The first `limit` images of a COCO instances file (all when limit < 0), in id order."""
    data = read_json(path)
    cats = category_map(data, class_names, path)
    per_image: dict[int, list[dict[str, Any]]] = {}
    for i, ann in enumerate(data["annotations"]):
        try:
            per_image.setdefault(int(ann["image_id"]), []).append(ann)
            int(ann["category_id"])
            if len([float(v) for v in ann["bbox"]]) != 4:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise ModelzooError(f"{path}: annotations.{i}: needs image_id, category_id and bbox [x, y, w, h]") from None
    images = sorted(data["images"], key=lambda im: int(im["id"]))
    if limit >= 0:
        images = images[:limit]
    samples = []
    for im in images:
        try:
            image_id, name, width, height = int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"])
        except (KeyError, TypeError, ValueError):
            raise ModelzooError(f"{path}: images: entry {im!r:.80} needs id, file_name, width, height") from None
        anns = per_image.get(image_id, [])
        kept = [a for a in anns if int(a["category_id"]) in cats and not a.get("iscrowd", 0)]
        boxes = np.array([[*a["bbox"][:2], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in kept])
        labels = np.array([cats[int(a["category_id"])] for a in kept], dtype=np.int64)
        samples.append(
            Sample(
                image_id=image_id,
                path=images_dir / name,
                width=width,
                height=height,
                boxes=boxes.reshape(-1, 4).astype(np.float32),
                labels=labels,
                annotations=anns,
                file_name=name,
            )
        )
    return samples


def read_image(sample: Sample) -> np.ndarray:
    """HWC uint8, BGR (OpenCV's order, as mmdet and Autoware's camera pipeline use)."""
    import cv2

    img = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
    if img is None:
        raise ModelzooError(f"{sample.path}: image missing or unreadable (image id {sample.image_id})")
    if img.shape[:2] != (sample.height, sample.width):
        raise ModelzooError(
            f"{sample.path}: image is {img.shape[1]}x{img.shape[0]}, the annotation file says "
            f"{sample.width}x{sample.height}"
        )
    return img


def ground_truth(samples: Sequence[Sample], class_names: list[str]) -> dict[str, Any]:
    """A COCO instances object of exactly these samples (category ids 1..K in class order)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for s in samples:
        images.append({"id": s.image_id, "file_name": s.file_name, "width": s.width, "height": s.height})
        for box, label in zip(s.boxes, s.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": s.image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": _area(s, box),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _area(sample: Sample, box: np.ndarray) -> float:
    # COCO's size buckets use the annotation's (mask) area: keep the file's when it has one.
    for a in sample.annotations:
        ax, ay, aw, ah = a["bbox"]
        if np.allclose([ax, ay, ax + aw, ay + ah], box, atol=1e-3) and "area" in a:
            return float(a["area"])
    return float((box[2] - box[0]) * (box[3] - box[1]))


def results(predictions: Sequence[Detections], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Detections in COCO's results format (category ids as in `ground_truth`)."""
    out = []
    for dets, s in zip(predictions, samples, strict=True):
        for box, score, label in zip(dets.boxes, dets.scores, dets.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append(
                {
                    "image_id": s.image_id,
                    "category_id": int(label) + 1,
                    "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                    "score": round(float(score), 5),
                }
            )
    return out


@dataclass
class CocoMetrics:
    stats: dict[str, float]
    per_class_ap: dict[str, float]
    # Precision at each of COCO's 101 recall points, IoU 0.5, per class (-1: no ground truth).
    pr_curve_50: dict[str, list[float]]


STAT_NAMES = ("mAP", "mAP_50", "mAP_75", "mAP_small", "mAP_medium", "mAP_large", "AR_1", "AR_10", "AR_100")


def evaluate(gt: dict[str, Any], dts: list[dict[str, Any]], class_names: list[str]) -> CocoMetrics:
    from pycocotools.coco import COCO  # type: ignore[import-untyped]
    from pycocotools.cocoeval import COCOeval  # type: ignore[import-untyped]

    zero = CocoMetrics({k: 0.0 for k in STAT_NAMES}, dict.fromkeys(class_names, 0.0), {})
    if not dts or not gt["annotations"]:
        return zero
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dts)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval says -1 where there is nothing to measure (no large objects, say): leave those out.
    stats = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats, strict=False) if v >= 0}
    # precision: [iou thresholds, recall points, classes, area ranges, max dets]; area "all", 100 dets.
    precision = ev.eval["precision"][:, :, :, 0, -1]
    per_class, curves = {}, {}
    for k, name in enumerate(class_names):
        p = precision[:, :, k]
        valid = p[p > -1]
        per_class[name] = float(valid.mean()) if valid.size else 0.0
        curves[name] = [float(v) for v in precision[0, :, k]]
    return CocoMetrics(stats, per_class, curves)
