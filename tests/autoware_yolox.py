"""autoware_tensorrt_yolox's decoding of a plain model's output, re-implemented in Python from
reading the node's source (`src/tensorrt_yolox.cpp`, `include/.../tensorrt_yolox.hpp`; revision in
tests/data/autoware/tensorrt_yolox/SOURCE.md), to test that the exported layout is the one the
node reads. It mirrors the node's arithmetic where that changes results: float32 maths, boxes held
in int32 (truncated) from the proposals on, strict `>` score threshold, a proposal per class over
the threshold, class-agnostic NMS on integer rectangles, clamping to width - 1 / height - 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.tasks.detection2d.boxes import Detections

f32 = np.float32


@dataclass(frozen=True)
class NodeObjects:
    """The node's `ObjectArray` for one image: x_offset, y_offset, width, height (int32), score, type."""

    rois: np.ndarray  # (K, 4) int32
    scores: np.ndarray  # (K,) float32
    labels: np.ndarray  # (K,) int32

    def boxes(self) -> np.ndarray:
        """x1, y1, x2, y2, as a consumer of the ROI message reads them."""
        x, y, w, h = self.rois.T
        return np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)


def _trunc(v: np.floating) -> int:
    # C++ float -> int32_t conversion: towards zero.
    return int(np.trunc(v))


def grid_strides(input_w: int, input_h: int, anchors: int) -> list[tuple[int, int, int]]:
    """generateGridsAndStride: strides 8, 16, 32 when their grids add up to the output's anchors,
    else a fourth head of stride 4; per stride, rows outer, columns inner."""
    strides = [8, 16, 32]
    if sum((input_w // s) * (input_h // s) for s in strides) != anchors:
        strides.append(4)
    return [(g0, g1, s) for s in strides for g1 in range(input_h // s) for g0 in range(input_w // s)]


def proposals(prob: np.ndarray, grids: list[tuple[int, int, int]], num_class: int, threshold: float) -> np.ndarray:
    """generateYoloxProposals: per anchor and class (anchor-major), objectness x class score >
    threshold. Rows: x_offset, y_offset, width, height (int32-truncated), score, class."""
    p = prob.astype(f32)
    g = np.asarray(grids, np.int64).reshape(-1, 3)
    stride = g[:, 2].astype(f32)
    x_center = (p[:, 0] + g[:, 0].astype(f32)) * stride
    y_center = (p[:, 1] + g[:, 1].astype(f32)) * stride
    w = np.exp(p[:, 2]) * stride
    h = np.exp(p[:, 3]) * stride
    x0, y0 = x_center - w * f32(0.5), y_center - h * f32(0.5)
    score = p[:, 4:5] * p[:, 5 : 5 + num_class]
    anchor, cls = np.nonzero(score > f32(threshold))
    # C++ float -> int32_t conversion truncates towards zero.
    rois = np.stack([x0[anchor], y0[anchor], w[anchor], h[anchor]], axis=1)
    out = np.empty((len(anchor), 6), np.float64)
    out[:, :4] = np.trunc(rois)
    out[:, 4] = score[anchor, cls]
    out[:, 5] = cls
    return out


def nms_sorted(objs: np.ndarray, nms_threshold: float) -> list[int]:
    """nmsSortedBboxes: greedy over score-sorted proposals, every class together, IoU of the
    integer rectangles (cv::Rect &: empty when they do not overlap), in float32."""
    x1, y1 = objs[:, 0], objs[:, 1]
    x2, y2 = x1 + objs[:, 2], y1 + objs[:, 3]
    areas = objs[:, 2] * objs[:, 3]
    picked: list[int] = []
    for i in range(len(objs)):
        if picked:
            j = np.asarray(picked)
            iw = np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j])
            ih = np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j])
            inter = np.where((iw > 0) & (ih > 0), iw * ih, 0).astype(f32)
            union = (areas[i] + areas[j]).astype(f32) - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                if np.any(inter / union > f32(nms_threshold)):
                    continue
        picked.append(i)
    return picked


def decode_outputs(
    prob: np.ndarray,
    input_hw: tuple[int, int],
    num_class: int,
    score_threshold: float,
    nms_threshold: float,
    scale: float,
    image_wh: tuple[int, int],
) -> NodeObjects:
    """decodeOutputs for one image of a [N, 5 + C] output: proposals, sort by score (descending),
    NMS, then back to the original image by the letterbox scale and clamped to it."""
    if prob.shape[1] != 5 + num_class:
        raise ValueError(f"output has {prob.shape[1]} values per anchor, the node reads 5 + {num_class}")
    grids = grid_strides(input_hw[1], input_hw[0], prob.shape[0])
    objs = proposals(prob, grids, num_class, score_threshold)
    # qsortDescentInplace is an unstable quicksort: ties may come out in any order.
    objs = objs[np.argsort(-objs[:, 4], kind="stable")]
    picked = nms_sorted(objs, nms_threshold)
    s = f32(scale)
    width, height = image_wh
    rois, scores, labels = [], [], []
    for i in picked:
        x, y, w, h, score, cls = objs[i].tolist()
        x0 = min(max(f32(x) / s, f32(0)), f32(width - 1))
        y0 = min(max(f32(y) / s, f32(0)), f32(height - 1))
        x1 = min(max(f32(x + w) / s, f32(0)), f32(width - 1))
        y1 = min(max(f32(y + h) / s, f32(0)), f32(height - 1))
        rois.append([_trunc(x0), _trunc(y0), _trunc(x1 - x0), _trunc(y1 - y0)])
        scores.append(score)
        labels.append(int(cls))
    return NodeObjects(
        np.asarray(rois, np.int32).reshape(-1, 4), np.asarray(scores, np.float32), np.asarray(labels, np.int32)
    )


def letterbox_scale(input_hw: tuple[int, int], image_wh: tuple[int, int]) -> float:
    """The node's per-image scale: min(input width / image width, input height / image height), in float."""
    return float(min(f32(input_hw[1]) / f32(image_wh[0]), f32(input_hw[0]) / f32(image_wh[1])))


def read_label_file(text: str) -> list[str]:
    """read_label_file: every line, trimmed, is the name of the class of that index."""
    return [line.strip() for line in text.splitlines()]


def read_remap_file(text: str) -> dict[str, int]:
    """load_label_id_remap_file (read_csv): header skipped, '#' comments and blank lines dropped,
    exactly two trimmed columns, the second an integer."""
    out: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        row = [cell.strip() for cell in line.split(",")]
        if len(row) != 2:
            raise ValueError(f"remap row {line!r}: 2 columns expected")
        out[row[0]] = int(row[1])
    return out


def assert_same_objects(node: NodeObjects, mine: Detections, scale: float) -> None:
    """The node's objects and the task's detections (at the node's thresholds) are the same objects
    in the same score order: labels, scores, and boxes up to the node's integer truncations (< 1 px
    in the input before the letterbox scale, < 1 px after, per edge) and its clamp to width - 1."""
    assert node.labels.tolist() == mine.labels.tolist(), (node.labels, mine.labels)
    np.testing.assert_allclose(node.scores, mine.scores, rtol=1e-6)
    np.testing.assert_allclose(node.boxes(), mine.boxes, atol=2 / scale + 2)


def _lround(v: np.ndarray) -> np.ndarray:
    # lroundf: halfway cases away from zero.
    return (np.sign(v) * np.floor(np.abs(v) + f32(0.5))).astype(np.int64)


def gpu_letterbox(image: np.ndarray, input_hw: tuple[int, int], norm: float = 1.0) -> np.ndarray:
    """resize_bilinear_letterbox_nhwc_to_nchw32_batch_kernel (src/preprocess.cu) for one HWC uint8
    image: the node's GPU preprocessing, to (1, 3, H, W) float32. Its sampling, as read: source
    index lround(centroid) - 1 clamped to [0, size - 2], weight (1 + lround(c) - c) / 2 towards the
    next pixel, the result rounded; 114 right of / below the resized size (truncated); x norm."""
    src_h, src_w = image.shape[:2]
    dst_h, dst_w = input_hw
    scale = min(f32(dst_w) / f32(src_w), f32(dst_h) / f32(src_h))
    letter_bot, letter_right = int(scale * f32(src_h)), int(scale * f32(src_w))
    inv = f32(1.0 / float(scale))  # the kernel receives 1.0 / scale as a float

    def axis(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        centroid = inv * (np.arange(n, dtype=f32) + f32(0.5))
        idx = np.clip(_lround(centroid) - 1, 0, None)
        idx = np.where(idx >= size - 1, size - 2, idx)
        weight = (f32(1) + _lround(centroid).astype(f32) - centroid) / f32(2)
        return idx, weight.astype(f32)

    hi, hw = axis(dst_h, src_h)
    wi, ww = axis(dst_w, src_w)
    img = image.astype(f32)
    f00, f01 = img[hi][:, wi], img[hi][:, wi + 1]
    f10, f11 = img[hi + 1][:, wi], img[hi + 1][:, wi + 1]
    w_w, w_h = ww[None, :, None], hw[:, None, None]
    r0 = f00 + w_w * (f01 - f00)
    r1 = f10 + w_w * (f11 - f10)
    out = _lround(r0 + w_h * (r1 - r0)).astype(f32)
    out[letter_bot:] = 114
    out[:, letter_right:] = 114
    return np.ascontiguousarray((out * f32(norm)).transpose(2, 0, 1)[None])
