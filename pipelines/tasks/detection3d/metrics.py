"""Center-distance average precision, nuScenes' way (`nuscenes.eval.detection.algo`): greedy matching
by score within a BEV centre distance, precision at 101 recall points, AP over recall and precision
above 0.1, normalized. mAP is the mean over classes with ground truth and over distance thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.tasks.detection3d.data import Frame
from pipelines.tasks.detection3d.decode import Boxes3D

MIN_RECALL = 0.1
MIN_PRECISION = 0.1


def in_range(xy: np.ndarray, bev_range: Sequence[float]) -> np.ndarray:
    return (
        (xy[:, 0] >= bev_range[0])
        & (xy[:, 0] <= bev_range[2])
        & (xy[:, 1] >= bev_range[1])
        & (xy[:, 1] <= bev_range[3])
    )


def average_precision(
    preds: Sequence[Boxes3D], frames: Sequence[Frame], label: int, threshold: float, bev_range: Sequence[float]
) -> float | None:
    """AP of one class at one distance threshold; None when the class has no ground truth."""
    gts = []
    for f in frames:
        keep = (f.gt_labels == label) & in_range(f.gt_boxes[:, :2], bev_range) & (f.gt_num_points != 0)
        gts.append(f.gt_boxes[keep, :2])
    npos = sum(len(g) for g in gts)
    if npos == 0:
        return None
    rows = [
        (float(s), i, xy)
        for i, p in enumerate(preds)
        for s, xy, lab in zip(p.scores, p.boxes[:, :2], p.labels, strict=True)
        if lab == label and in_range(xy[None], bev_range)[0]
    ]
    if not rows:
        return 0.0
    rows.sort(key=lambda r: -r[0])
    taken = [np.zeros(len(g), bool) for g in gts]
    tp = np.zeros(len(rows))
    for k, (_, i, xy) in enumerate(rows):
        if len(gts[i]) == 0:
            continue
        d = np.linalg.norm(gts[i] - xy, axis=1)
        d[taken[i]] = np.inf
        j = int(np.argmin(d))
        if d[j] < threshold:
            taken[i][j] = True
            tp[k] = 1
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    prec = ctp / (ctp + cfp)
    rec = ctp / npos
    prec_at = np.interp(np.linspace(0, 1, 101), rec, prec, right=0)
    prec_at = prec_at[round(100 * MIN_RECALL) + 1 :] - MIN_PRECISION
    return float(np.clip(prec_at, 0, None).mean() / (1 - MIN_PRECISION))


def detection_metrics(
    preds: Sequence[Boxes3D],
    frames: Sequence[Frame],
    class_names: Sequence[str],
    thresholds: Sequence[float],
    bev_range: Sequence[float],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    per_class: dict[str, float] = {}
    for label, name in enumerate(class_names):
        aps = [average_precision(preds, frames, label, t, bev_range) for t in thresholds]
        if aps[0] is None:
            continue
        for t, ap in zip(thresholds, aps, strict=True):
            out[f"AP_{name}_{t:g}m"] = round(float(ap or 0.0), 6)
        per_class[name] = float(np.mean([ap or 0.0 for ap in aps]))
        out[f"AP_{name}"] = round(per_class[name], 6)
    out["mAP"] = round(float(np.mean(list(per_class.values()))) if per_class else 0.0, 6)
    out["gt_boxes"] = int(sum(len(f.gt_labels) for f in frames))
    out["predicted_boxes"] = int(sum(len(p) for p in preds))
    return dict(sorted(out.items()))
