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
from torch.nn.utils.fusion import fuse_linear_bn_eval

from pipelines.errors import ModelzooError

HEAD_OUTPUTS = ("heatmap", "reg", "height", "dim", "rot", "vel")


class PillarEncoder(nn.Module):
    """mmdet3d's PFN layers (linear, BatchNorm, ReLU, max over the pillar's points) with each BatchNorm
    folded into its linear. Exported as written, the BatchNorm sits between two Transposes, which ONNX
    Runtime does not fold and runs slowly on many threads (CPU, 4000 voxels, median: 3.1 ms on 1 thread,
    56 ms on 16; benchmarks/results/ort-threads-h200.json)."""

    def __init__(self, pillar_feature_net: nn.Module):
        super().__init__()
        layers = list(pillar_feature_net.pfn_layers)
        for i, pfn in enumerate(layers):
            norm = pfn.norm
            if pfn.mode != "max" or not isinstance(norm, nn.BatchNorm1d) or not norm.affine or norm.running_var is None:
                raise ModelzooError(
                    f"models/centerpoint/config.py: model.pts_voxel_encoder, PFN layer {i}: the export folds an "
                    f"affine BatchNorm1d with running statistics into mode='max' layers; got mode={pfn.mode!r}, "
                    f"norm={type(norm).__name__}"
                )
        self.linears = nn.ModuleList(fuse_linear_bn_eval(pfn.linear.eval(), pfn.norm.eval()) for pfn in layers)
        self.last = [pfn.last_vfe for pfn in layers]

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        x = input_features
        for linear, last in zip(self.linears, self.last, strict=True):
            x = torch.relu(linear(x))
            x_max = torch.max(x, dim=1, keepdim=True)[0]
            x = x_max if last else torch.cat([x, x_max.expand(-1, x.shape[1], -1)], dim=2)
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
