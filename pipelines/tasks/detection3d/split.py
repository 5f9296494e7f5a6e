"""The two exported components of a pillar CenterPoint, cut from the mmdet3d detector as AWML/Autoware
do: the detection3d task's built-in split for `kind: mmdet3d` (a model folder may still name its own
`source.factory`).

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

from pipelines.errors import DescriptorError
from pipelines.tasks.detection3d.task import HEAD_OUTPUTS


class PillarEncoder(nn.Module):
    """mmdet3d's PFN layers (linear, BatchNorm, ReLU, max over the pillar's points) with each BatchNorm
    folded into its linear. Exported as written, the BatchNorm sits between two Transposes, which ONNX
    Runtime does not fold and runs slowly on many threads (CPU, 4000 voxels, median: 3.1 ms on 1 thread,
    56 ms on 16; benchmarks/results/ort-threads-h200.json)."""

    def __init__(self, pillar_feature_net: Any, where: str = "the config"):
        super().__init__()
        layers = list(pillar_feature_net.pfn_layers)
        for i, pfn in enumerate(layers):
            norm = pfn.norm
            if pfn.mode != "max" or not isinstance(norm, nn.BatchNorm1d) or not norm.affine or norm.running_var is None:
                raise DescriptorError(
                    f"{where}: model.pts_voxel_encoder, PFN layer {i}: the export folds an affine BatchNorm1d "
                    f"with running statistics into mode='max' layers; got mode={pfn.mode!r}, "
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
    def __init__(self, detector: Any, outputs: tuple[str, ...]):
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


def components(detector: Any, cfg: Any, where: str = "the config") -> dict[str, nn.Module]:
    """The split of a detector whose config `from_config` accepted (`where`: its file, for messages)."""
    outputs = tuple(n for n in HEAD_OUTPUTS if n in detector.pts_bbox_head.task_heads[0].heads)
    return {
        "pts_voxel_encoder": PillarEncoder(detector.pts_voxel_encoder, where),
        "pts_backbone_neck_head": BackboneNeckHead(detector, outputs),
    }
