"""The exported side of the detection2d contract for mmdet's YOLOX: a wrapper returning the raw
per-anchor predictions in the one-tensor layout Autoware's `autoware_tensorrt_yolox` decodes, which
`boxes.decode` turns into boxes here. Both sides of the layout live in this package, so the export
stage of every detection2d model depends on them (DVC: pipelines/tasks).

Used as an OpenMMLab `source.factory`: `pipelines.tasks.detection2d.yolox:raw_outputs`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class YOLOXRawOutputs(nn.Module):
    """images (B, 3, H, W) BGR 0-255 -> output (B, N, 5 + C).

    Per anchor: dx, dy, log w, log h (raw regressions in stride units), objectness and the C class
    scores (both after the sigmoid): the original YOLOX head's layout with `decode_in_inference`
    off, which is what autoware_tensorrt_yolox reads from a model of two bindings ([input, output]):
    it adds the grid cell and applies exp and the stride itself, and multiplies objectness by class
    score without a sigmoid of its own.

    The config's data_preprocessor normalization is the first op of the graph, so consumers feed
    letterboxed pixels (the node sends BGR 0-255: its norm_factor is 1) and cannot normalize
    differently from training. N runs over the strides' grids in order, row-major, as mmdet's prior
    generator, `boxes.grid_priors` and the node's grid generator lay them out.
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if self.swap_channels:
            x = x[:, [2, 1, 0]]
        if self.normalize:
            x = (x - self.mean) / self.std
        cls_scores, bbox_preds, objectness = self.detector.bbox_head(self.detector.extract_feat(x))
        # Per level (B, 4 + 1 + C, H, W), then anchors level by level, row-major.
        levels = [
            torch.cat([box, obj.sigmoid(), cls.sigmoid()], dim=1)
            for box, obj, cls in zip(bbox_preds, objectness, cls_scores, strict=True)
        ]
        return torch.cat([t.flatten(2) for t in levels], dim=2).permute(0, 2, 1)


def raw_outputs(detector: Any, cfg: Any, component: str = "yolox") -> dict[str, nn.Module]:
    """OpenMMLab factory: the one exported component (named by `source.factory_args.component`)."""
    return {component: YOLOXRawOutputs(detector).eval()}
