"""Box arithmetic shared by every backend: letterbox, YOLOX-style decoding, score threshold, NMS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.comparison import OutputComparison


@dataclass(frozen=True)
class Letterbox:
    """Where an image went in the model input: resized by `scale`, pasted at the top-left corner."""

    scale: float
    width: int  # the resized image inside the input
    height: int


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int) -> tuple[np.ndarray, Letterbox]:
    """Resize an HWC image to fit (height, width) keeping its aspect ratio; pad right/bottom.

    As Autoware's tensorrt_yolox does: scale = min(width ratio, height ratio) in float32, the
    resized size truncated (mmdet's Resize rounds instead: the same size for the bundled data's
    image sizes), the image at the top-left corner, `pad_value` (the node's 114) right and bottom.
    The resampling is OpenCV's bilinear; the node's own GPU kernel samples differently.
    """
    import cv2

    h, w = image.shape[:2]
    scale = float(min(np.float32(size[0]) / np.float32(h), np.float32(size[1]) / np.float32(w)))
    nw, nh = int(np.float32(w) * np.float32(scale)), int(np.float32(h) * np.float32(scale))
    out = np.full((size[0], size[1], image.shape[2]), pad_value, dtype=image.dtype)
    out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, Letterbox(scale, nw, nh)


def grid_priors(size: tuple[int, int], strides: list[int]) -> np.ndarray:
    """(N, 3): x, y, stride of every anchor point, level by level, row-major (mmdet's MlvlPointGenerator)."""
    levels = []
    for s in strides:
        ys, xs = np.mgrid[0 : size[0] // s, 0 : size[1] // s]
        levels.append(np.stack([xs.ravel() * s, ys.ravel() * s, np.full(xs.size, s)], axis=1))
    return np.concatenate(levels).astype(np.float32)


def decode(raw: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """YOLOX regressions (dx, dy, log w, log h) in stride units -> x1, y1, x2, y2 in input pixels."""
    stride = priors[:, 2:3]
    centre = raw[..., :2] * stride + priors[:, :2]
    half = np.exp(np.minimum(raw[..., 2:4], 20.0)) * stride / 2
    return np.concatenate([centre - half, centre + half], axis=-1)


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray  # (K, 4) x1, y1, x2, y2 in original image pixels
    scores: np.ndarray  # (K,)
    labels: np.ndarray  # (K,) class index into class_names

    def __len__(self) -> int:
        return len(self.scores)


def select(
    boxes: np.ndarray,
    objectness: np.ndarray,
    class_scores: np.ndarray,
    score_threshold: float,
    nms_threshold: float,
    max_detections: int,
) -> Detections:
    """One image: score = objectness x best class score, threshold, class-aware NMS, top-k."""
    import cv2

    labels = class_scores.argmax(axis=1)
    scores = objectness * class_scores[np.arange(len(labels)), labels]
    keep = scores >= score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if len(scores):
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        kept = np.asarray(
            cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), labels.tolist(), 0.0, nms_threshold),
            dtype=np.int64,
        ).reshape(-1)
        kept = kept[np.argsort(-scores[kept], kind="stable")][:max_detections]
        boxes, scores, labels = boxes[kept], scores[kept], labels[kept]
    return Detections(boxes.astype(np.float32), scores.astype(np.float32), labels.astype(np.int64))


def unletterbox(dets: Detections, lb: Letterbox, width: int, height: int) -> Detections:
    """Input-pixel boxes back to the original image, clipped to it."""
    boxes = dets.boxes / lb.scale
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    return Detections(boxes, dets.scores, dets.labels)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box with each of (K, 4) boxes."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


# What compare_detections returns: the names a verify tolerance or report_only may use beside outputs.
DETECTION_CHECKS = ("detections.score", "detections.matched")


def compare_detections(
    ref: Detections, test: Detections, atol: float, rtol: float, threshold: float, min_iou: float = 0.5
) -> dict[str, OutputComparison]:
    """verify's end-to-end check of one image at the deployed operating point (`threshold`): every
    detection scoring over threshold + atol on either side has a partner on the other (same class,
    IoU >= min_iou, greedy by score), and partners' scores agree within atol + rtol x |ref|. This
    judges the scores on their own, which the tensor check cannot when regressions and scores
    share one output tensor and its tolerance."""
    near = threshold - atol
    r_idx = [int(i) for i in np.argsort(-ref.scores, kind="stable") if ref.scores[i] >= near]
    t_idx = [int(j) for j in np.argsort(-test.scores, kind="stable") if test.scores[j] >= near]
    pairs: list[tuple[int, int]] = []
    free = list(t_idx)
    for i in r_idx:
        cands = [j for j in free if test.labels[j] == ref.labels[i]]
        if cands:
            overlaps = iou(ref.boxes[i], test.boxes[cands])
            k = int(np.argmax(overlaps))
            if overlaps[k] >= min_iou:
                pairs.append((i, cands[k]))
                free.remove(cands[k])
    r_s = np.asarray([ref.scores[i] for i, _ in pairs], np.float64)
    t_s = np.asarray([test.scores[j] for _, j in pairs], np.float64)
    err = np.abs(r_s - t_s)
    passed = bool(np.all(err <= atol + rtol * np.abs(r_s)))
    why = None
    if not passed:
        k = int(np.argmax(err))
        why = (
            f"score {t_s[k]:.4f} vs reference {r_s[k]:.4f} (class {int(ref.labels[pairs[k][0]])}; "
            f"atol {atol:g}, rtol {rtol:g})"
        )
    score = OutputComparison(
        passed, error=why, max_abs_error=float(err.max()) if len(err) else 0.0, pairs=len(pairs), atol=atol, rtol=rtol
    )
    paired_r, paired_t = {i for i, _ in pairs}, {j for _, j in pairs}
    lonely = [("reference", ref, i) for i in r_idx if i not in paired_r and ref.scores[i] > threshold + atol]
    lonely += [("test", test, j) for j in t_idx if j not in paired_t and test.scores[j] > threshold + atol]
    why = None
    if lonely:
        side, d, k = lonely[0]
        x1, y1, x2, y2 = (round(float(v), 1) for v in d.boxes[k])
        why = (
            f"{len(lonely)} detections without a partner; first: {side} class {int(d.labels[k])} score "
            f"{float(d.scores[k]):.3f} at ({x1}, {y1}, {x2}, {y2})"
        )
    matched = OutputComparison(not lonely, error=why, max_abs_error=float(len(lonely)), pairs=len(pairs))
    return dict(zip(DETECTION_CHECKS, (score, matched), strict=True))
