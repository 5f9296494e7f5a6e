"""CenterPoint box decoding and circle NMS (mmdet3d's `CenterPointBBoxCoder.decode` and `circle_nms`),
the work after `pts_backbone_neck_head`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.tasks.detection3d.params import DeployParams


@dataclass(frozen=True)
class Boxes3D:
    """Boxes in the LiDAR frame: x, y, z (gravity centre), length, width, height, yaw."""

    boxes: np.ndarray  # (N, 7) float32
    velocity: np.ndarray  # (N, 2) float32
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Boxes3D:
        return Boxes3D(self.boxes[index], self.velocity[index], self.scores[index], self.labels[index])


def circle_nms(xy: np.ndarray, scores: np.ndarray, radius: float, max_keep: int) -> np.ndarray:
    """Indices kept, best first: a box is dropped when a better one lies within `radius` (BEV)."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(order), bool)
    keep: list[int] = []
    for rank, i in enumerate(order):
        if suppressed[rank]:
            continue
        keep.append(int(i))
        if len(keep) == max_keep:
            break
        rest = order[rank + 1 :]
        d2 = ((xy[rest] - xy[i]) ** 2).sum(axis=1)
        suppressed[rank + 1 :] |= d2 <= radius * radius
    return np.asarray(keep, np.int64)


def autoware_filter(
    scores: np.ndarray, labels: np.ndarray, xy: np.ndarray, rot: np.ndarray, p: DeployParams
) -> np.ndarray:
    """What Autoware's postprocess kernel keeps besides mmdet3d's threshold: a score at least its class's
    threshold in the box's radial distance bin (beyond the last bin: dropped), and a (sin, cos) yaw
    vector at least its class's yaw norm threshold long. Unset settings keep everything."""
    keep = np.ones(len(scores), bool)
    if p.score_thresholds:
        dist = np.hypot(xy[:, 0], xy[:, 1])
        bins = np.searchsorted(np.asarray(p.distance_bins), dist, side="right")
        inside = bins < len(p.distance_bins)
        table = np.asarray(p.score_thresholds, np.float32)  # (classes, bins)
        keep &= inside
        keep[inside] &= scores[inside] >= table[labels[inside], bins[inside]]
    if p.yaw_norm_thresholds:
        keep &= np.hypot(rot[:, 0], rot[:, 1]) >= np.asarray(p.yaw_norm_thresholds, np.float32)[labels]
    return keep


def decode(heads: dict[str, np.ndarray], p: DeployParams) -> Boxes3D:
    """Raw head outputs (batch of one) -> boxes above the score threshold, after circle NMS."""
    heat = heads["heatmap"][0].astype(np.float32)
    _, h, w = heat.shape
    score = 1.0 / (1.0 + np.exp(-heat.reshape(-1)))
    cand = np.flatnonzero(score > p.score_threshold)
    if len(cand) > p.pre_nms_top_k:
        cand = cand[np.argsort(-score[cand], kind="stable")[: p.pre_nms_top_k]]
    label, pix = np.divmod(cand, h * w)
    ys, xs = np.divmod(pix, w)

    def at(name: str) -> np.ndarray:
        return heads[name][0][:, ys, xs].T  # (K, channels)

    reg = at("reg")
    cx = (xs + reg[:, 0]) * p.downsample_factor * p.voxel_size[0] + p.point_cloud_range[0]
    cy = (ys + reg[:, 1]) * p.downsample_factor * p.voxel_size[1] + p.point_cloud_range[1]
    rot = at("rot")
    dim = np.exp(at("dim")) if p.exp_dim else at("dim")
    boxes = np.column_stack([cx, cy, at("height")[:, 0], dim, np.arctan2(rot[:, 0], rot[:, 1])]).astype(np.float32)
    vel = at("vel").astype(np.float32) if "vel" in heads else np.zeros((len(cand), 2), np.float32)
    lo, hi = np.asarray(p.post_center_range[:3]), np.asarray(p.post_center_range[3:])
    ok = np.all((boxes[:, :3] >= lo) & (boxes[:, :3] <= hi), axis=1)
    ok &= autoware_filter(score[cand], label, boxes[:, :2], rot, p)
    found = Boxes3D(boxes[ok], vel[ok], score[cand][ok].astype(np.float32), label[ok].astype(np.int64))
    return found.take(circle_nms(found.boxes[:, :2], found.scores, p.circle_nms_dist_threshold, p.max_detections))
