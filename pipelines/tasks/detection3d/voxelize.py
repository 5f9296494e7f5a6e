"""Hard voxelization (mmcv's `Voxelization`, in numpy) and PointPillars' point decoration
(mmdet3d's `PillarFeatureNet` before its PFN layers): the work before `pts_voxel_encoder`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.tasks.detection3d.params import DeployParams

F32 = np.float32


@dataclass(frozen=True)
class Voxels:
    points: np.ndarray  # (V, max_points, F) float32, zero-padded
    coors: np.ndarray  # (V, 3) int64: z, y, x grid indices
    num_points: np.ndarray  # (V,) int64


def voxelize(points: np.ndarray, p: DeployParams) -> Voxels:
    """Points (N, F) into pillars, as mmcv's CPU kernel does: a voxel's index is the order of its first
    point, a voxel keeps its first `max_points_per_voxel` points, voxels after `max_voxels` are dropped."""
    pts = np.ascontiguousarray(points, dtype=F32)
    lo = np.asarray(p.point_cloud_range[:3], F32)
    size = np.asarray(p.voxel_size, F32)
    grid = np.asarray(p.grid_size, np.int64)
    # float32 arithmetic, as the kernel's, so that points on a voxel border land in the same voxel.
    c = np.floor((pts[:, :3] - lo) / size).astype(np.int64)
    inside = np.all((c >= 0) & (c < grid), axis=1)
    pts, c = pts[inside], c[inside]
    key = (c[:, 2] * grid[1] + c[:, 1]) * grid[0] + c[:, 0]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    vid = rank[inverse.reshape(-1)]
    # Position of each point inside its voxel, in point order.
    order = np.argsort(vid, kind="stable")
    sizes = np.bincount(vid, minlength=len(first))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.empty_like(vid)
    pos[order] = np.arange(len(vid)) - np.repeat(starts, sizes)
    keep = (vid < p.max_voxels) & (pos < p.max_points_per_voxel)
    nv = min(len(first), p.max_voxels)
    voxels = np.zeros((nv, p.max_points_per_voxel, pts.shape[1]), F32)
    voxels[vid[keep], pos[keep]] = pts[keep]
    coors = np.empty((nv, 3), np.int64)
    firsts = np.sort(first)[:nv]
    coors[:] = c[firsts][:, ::-1]
    num = np.minimum(sizes[:nv], p.max_points_per_voxel)
    return Voxels(voxels, coors, num.astype(np.int64))


def decorate(v: Voxels, p: DeployParams) -> np.ndarray:
    """The encoder's input features (V, max_points, encoder_in_feature_size): each point, then its
    offset from the pillar's point mean and from the pillar centre; padding rows stay zero."""
    xyz = v.points[:, :, :3]
    parts = [v.points]
    if p.with_cluster_center:
        mean = xyz.sum(axis=1, keepdims=True) / v.num_points.astype(F32)[:, None, None]
        parts.append(xyz - mean)
    if p.with_voxel_center:
        centre = np.empty_like(xyz)
        for axis, col in ((0, 2), (1, 1), (2, 0)):  # x, y, z from coors' z, y, x
            size = F32(p.voxel_size[axis])
            offset = F32(p.voxel_size[axis] / 2 + p.point_cloud_range[axis])
            centre[:, :, axis] = xyz[:, :, axis] - (v.coors[:, col].astype(F32)[:, None] * size + offset)
        parts.append(centre)
    if p.with_distance:
        parts.append(np.linalg.norm(xyz, axis=2, keepdims=True))
    features = np.concatenate(parts, axis=2)
    mask = np.arange(features.shape[1])[None, :] < v.num_points[:, None]
    features *= mask[:, :, None].astype(F32)
    return features
