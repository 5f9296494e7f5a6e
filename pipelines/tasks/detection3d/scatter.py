"""PointPillars' scatter (mmdet3d's `PointPillarsScatter`): pillar features onto the BEV grid, the
step between `pts_voxel_encoder` and `pts_backbone_neck_head`."""

from __future__ import annotations

import numpy as np


def scatter(pillar_features: np.ndarray, coors: np.ndarray, grid_xy: tuple[int, int]) -> np.ndarray:
    """(V, 1, C) or (V, C) features at (V, 3) z/y/x coordinates -> (1, C, ny, nx) spatial features."""
    nx, ny = grid_xy
    feats = pillar_features.reshape(len(coors), -1)
    canvas = np.zeros((feats.shape[1], ny * nx), np.float32)
    canvas[:, coors[:, 1] * nx + coors[:, 2]] = feats.T
    return canvas.reshape(1, -1, ny, nx)
