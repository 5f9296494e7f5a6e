"""The exported side of the detection2d contract for mmdet's YOLOX: a wrapper returning raw
per-anchor predictions, which `boxes.decode` turns into boxes. Both sides of the layout live in
this package, so the export stage of every detection2d model depends on them (DVC: pipelines/tasks).

Used as an OpenMMLab `source.factory`: `pipelines.tasks.detection2d.yolox:raw_outputs`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class YOLOXRawOutputs(nn.Module):
    """images (B, 3, H, W) BGR 0-255 -> boxes (B, N, 4), objectness (B, N), class_scores (B, N, C).

    The config's data_preprocessor normalization is the first op of the graph, so consumers feed
    letterboxed pixels and cannot normalize differently from training. N runs over the strides'
    grids in order, row-major, as mmdet's prior generator and `boxes.grid_priors` lay them out.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, detector: Any):
        super().__init__()
        pre = detector.data_preprocessor
        self.detector = detector
        self.swap_channels = bool(getattr(pre, "_channel_conversion", False))
        self.normalize = bool(getattr(pre, "_enable_normalize", False))
        if self.normalize:
            self.register_buffer("mean", pre.mean.detach().clone().view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", pre.std.detach().clone().view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = images
        if self.swap_channels:
            x = x[:, [2, 1, 0]]
        if self.normalize:
            x = (x - self.mean) / self.std
        cls_scores, bbox_preds, objectness = self.detector.bbox_head(self.detector.extract_feat(x))
        batch = images.shape[0]

        def flat(levels: list[torch.Tensor], channels: int) -> torch.Tensor:
            return torch.cat([t.permute(0, 2, 3, 1).reshape(batch, -1, channels) for t in levels], dim=1)

        num_classes = cls_scores[0].shape[1]
        boxes = flat(bbox_preds, 4)
        obj = flat(objectness, 1).sigmoid().reshape(batch, -1)
        scores = flat(cls_scores, num_classes).sigmoid()
        return boxes, obj, scores


def raw_outputs(detector: Any, cfg: Any, component: str = "yolox") -> dict[str, nn.Module]:
    """OpenMMLab factory: the one exported component."""
    return {component: YOLOXRawOutputs(detector).eval()}
