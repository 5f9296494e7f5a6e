"""Reference data and checkpoint for the YOLOX detector (deterministic).

Data: COCO-format images of three shape classes, each with its own size range and colour family
(circles: mid-size, red; rectangles: large, blue; triangles: small, yellow), on textured
backgrounds with grey distractor strokes. Shapes may overlap (each keeps at least half of itself
visible) and may cross the border (at least half inside; the box is clipped to the image). Boxes
are amodal, as COCO's are for occluded objects.

Training: a plain loop over mmdet's `YOLOX.loss()` on letterboxed images (the task's own
preprocessing, so training and evaluation see the same pixels), AdamW with warmup + cosine decay
and an EMA of the weights, which is what the checkpoint holds (as mmdet's YOLOX recipe saves).
"""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CLASSES = ("circle", "rectangle", "triangle")
# Image sizes (width, height): landscape, square and portrait, so the letterbox pads both ways.
SIZES = ((320, 240), (320, 320), (256, 320), (384, 288))
MIN_VISIBLE = 0.5


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    low = rng.uniform(60, 190, (rng.integers(3, 7), rng.integers(3, 7), 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, (h, w, 3)).astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        grey = float(rng.uniform(40, 220))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, (grey, grey, grey), int(rng.integers(1, 4)), cv2.LINE_AA)
    return img


def _shape_mask(rng: np.random.Generator, cls: int, h: int, w: int) -> tuple[np.ndarray, list[float]]:
    """A filled shape of class `cls` (mask over the whole image) and its amodal box x1, y1, x2, y2."""
    import cv2

    mask = np.zeros((h, w), np.uint8)
    cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    if cls == 0:
        r = float(rng.uniform(14, 30))
        cv2.circle(mask, (round(cx * 16), round(cy * 16)), round(r * 16), 1, -1, cv2.LINE_8, 4)
        box = [cx - r, cy - r, cx + r, cy + r]
    elif cls == 1:
        bw, bh = float(rng.uniform(50, 110)), float(rng.uniform(36, 80))
        box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
        cv2.rectangle(mask, (round(box[0]), round(box[1])), (round(box[2]) - 1, round(box[3]) - 1), 1, -1)
    else:
        s = float(rng.uniform(12, 24))
        pts = np.array([[cx, cy - s], [cx - s * 0.9, cy + s * 0.7], [cx + s * 0.9, cy + s * 0.7]])
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        box = [cx - s * 0.9, cy - s, cx + s * 0.9, cy + s * 0.7]
    return mask.astype(bool), box


def _colour(rng: np.random.Generator, cls: int) -> np.ndarray:
    # BGR: red circles, blue rectangles, yellow triangles, each with some spread.
    base = {0: (40, 40, 210), 1: (200, 70, 30), 2: (30, 210, 220)}[cls]
    return np.clip(np.asarray(base, np.float32) + rng.normal(0, 18, 3), 0, 255)


def make_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    img = _background(rng, h, w)
    owner = np.full((h, w), -1, np.int32)  # which object each pixel shows
    objects: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(2, 7))):
        for _attempt in range(20):
            cls = int(rng.integers(len(CLASSES)))
            mask, box = _shape_mask(rng, cls, h, w)
            full = mask.sum()
            x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
            inside = max(x2 - x1, 0) * max(y2 - y1, 0) / ((box[2] - box[0]) * (box[3] - box[1]))
            if full == 0 or inside < MIN_VISIBLE:
                continue
            trial = owner.copy()
            trial[mask] = len(objects)
            visible = [np.count_nonzero(trial == i) / o["pixels"] for i, o in enumerate(objects)]
            if all(v >= MIN_VISIBLE for v in visible):
                owner = trial
                img[mask] = _colour(rng, cls)
                objects.append({"cls": cls, "box": [x1, y1, x2, y2], "pixels": int(full)})
                break
    for i, o in enumerate(objects):
        o["area"] = int(np.count_nonzero(owner == i))
    return np.clip(img, 0, 255).round().astype(np.uint8), objects


def make_split(out: Path, split: str, n: int, seed: int) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    (out / split).mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(n):
        img, objects = make_image(rng)
        name = f"{i:06d}.jpg"
        cv2.imwrite(str(out / split / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "height": img.shape[0], "width": img.shape[1]})
        for o in objects:
            x1, y1, x2, y2 = (round(v, 2) for v in o["box"])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": o["cls"] + 1,
                    "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                    "area": o["area"],
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": f"modelzoo synthetic shapes, {split}, seed {seed}"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)],
    }
    (out / "annotations").mkdir(exist_ok=True)
    (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco, indent=1))
    log.info("%s: %d images, %d objects", split, n, len(annotations))


def make_data(out: Path, seed: int, options: dict[str, Any]) -> None:
    for offset, split in enumerate(("train", "val")):
        make_split(out, split, int(options[split]), seed * 100 + offset)


def _batch(
    images: np.ndarray, targets: list[tuple[np.ndarray, np.ndarray]], idx: np.ndarray, flips: np.ndarray
) -> tuple[Any, list[Any]]:
    """A training batch: letterboxed images (some mirrored) and mmdet data samples with their boxes."""
    import torch
    from mmdet.structures import DetDataSample  # type: ignore[import-untyped]
    from mmengine.structures import InstanceData  # type: ignore[import-untyped]

    size = images.shape[1:3]
    x = images[idx].copy()
    x[flips] = x[flips][:, :, ::-1]
    samples = []
    for i, flip in zip(idx, flips, strict=True):
        boxes, labels = targets[i]
        boxes = boxes.copy()
        if flip:
            boxes[:, [0, 2]] = size[1] - boxes[:, [2, 0]]
        s = DetDataSample(metainfo={"img_shape": size, "ori_shape": size})
        s.gt_instances = InstanceData(bboxes=torch.from_numpy(boxes), labels=torch.from_numpy(labels))
        samples.append(s)
    return torch.from_numpy(x).permute(0, 3, 1, 2).float(), samples


def save_checkpoint(state_dict: dict[str, Any], meta: dict[str, Any], path: Path) -> None:
    """Byte-reproducible: torch.save into a buffer names the archive "archive", while a file would
    name it after the (random) temporary path, and DVC would see a retrained, identical checkpoint
    as changed."""
    import torch

    buf = io.BytesIO()
    torch.save({"state_dict": state_dict, "meta": meta}, buf)
    path.write_bytes(buf.getvalue())


def train(ctx: Any, checkpoint: Path) -> dict[str, Any]:
    """Deterministic training through mmdet's YOLOX.loss(); returns the training log."""
    import torch
    from mmengine.logging import MMLogger  # type: ignore[import-untyped]

    from pipelines.sources.openmmlab import build_detector
    from pipelines.tasks import get_task
    from pipelines.tasks.detection2d.coco import read_image

    ref = ctx.descriptor.reference
    seed, opts = ref.seed, ref.options
    iterations, batch, lr = int(opts["iterations"]), int(opts["batch"]), float(opts["lr"])
    warmup, clip = int(opts.get("warmup", 10)), float(opts.get("clip_grad", 35.0))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)  # init_weights logs every tensor

    start = time.perf_counter()
    cpu_start = time.process_time()
    task: Any = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "train", -1)
    images = np.empty((len(samples), *task.input_size, 3), np.uint8)
    targets = []
    for i, s in enumerate(samples):
        x, lb = task.preprocess(read_image(s))
        images[i] = x[0].transpose(1, 2, 0)
        targets.append(((s.boxes * lb.scale).astype(np.float32), s.labels))
    detector: Any = build_detector(ctx, checkpoint=False)[0]
    detector.init_weights()
    detector.train()
    opt = torch.optim.AdamW(detector.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(i, iterations) / iterations))
    )
    gen = torch.Generator().manual_seed(seed)
    lines = []
    # mmdet 3.3 calls torch.cuda.amp.autocast and meshgrid without indexing: deprecation noise.
    warnings.filterwarnings("ignore", category=FutureWarning, module="mmdet")
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    for it in range(iterations):
        idx = torch.randint(0, len(samples), (batch,), generator=gen).numpy()
        flips = (torch.rand(batch, generator=gen) < 0.5).numpy()
        x, data_samples = _batch(images, targets, idx, flips)
        data = detector.data_preprocessor({"inputs": x, "data_samples": data_samples}, True)
        loss, parts = detector.parse_losses(detector.loss(data["inputs"], data["data_samples"]))
        if not torch.isfinite(loss):
            raise RuntimeError(f"iteration {it + 1}: loss is {float(loss)}")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(detector.parameters(), clip)
        opt.step()
        sched.step()
        if (it + 1) % 10 == 0 or it + 1 == iterations:
            line = f"iter {it + 1}/{iterations} " + " ".join(f"{k} {v.item():.4f}" for k, v in parts.items())
            log.info(line)
            lines.append(line)
    detector.eval()
    save_checkpoint(detector.state_dict(), {"iterations": iterations, "seed": seed}, checkpoint)
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "threads": torch.get_num_threads(),
        "images": len(samples),
        "log": lines,
    }
