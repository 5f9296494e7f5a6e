"""The two exported components of CenterPoint, cut from the mmdet3d detector as AWML/Autoware do.

pts_voxel_encoder: decorated pillar points (V, max_points, C) -> PFN layers -> (V, 1, channels).
pts_backbone_neck_head: BEV features (1, C, H, W) -> SECOND -> SECONDFPN -> CenterHead task 0's raw
outputs (heatmap logits, reg, height, log dim, rot sin/cos, vel), in Autoware's order.
Decoration, scatter and decoding live in pipelines/tasks/detection3d, shared by every backend.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

HEAD_OUTPUTS = ("heatmap", "reg", "height", "dim", "rot", "vel")


class PillarEncoder(nn.Module):
    def __init__(self, pillar_feature_net: nn.Module):
        super().__init__()
        self.pfn_layers = pillar_feature_net.pfn_layers

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        x = input_features
        for pfn in self.pfn_layers:
            x = pfn(x)
        return x


class BackboneNeckHead(nn.Module):
    def __init__(self, detector: nn.Module, outputs: tuple[str, ...]):
        super().__init__()
        self.backbone = detector.pts_backbone
        self.neck = detector.pts_neck
        self.shared_conv = detector.pts_bbox_head.shared_conv
        self.task_head = detector.pts_bbox_head.task_heads[0]
        self.outputs = outputs

    def forward(self, spatial_features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.neck(self.backbone(spatial_features))[0]
        out = self.task_head(self.shared_conv(x))
        return tuple(out[name] for name in self.outputs)


def components(detector: nn.Module, cfg: Any) -> dict[str, nn.Module]:
    outputs = tuple(n for n in HEAD_OUTPUTS if n in detector.pts_bbox_head.task_heads[0].heads)
    return {
        "pts_voxel_encoder": PillarEncoder(detector.pts_voxel_encoder),
        "pts_backbone_neck_head": BackboneNeckHead(detector, outputs),
    }
