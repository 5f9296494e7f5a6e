"""3D object detection from LiDAR (pillar CenterPoint): the work around the two exported components,
shared by every backend.

    points -> voxelize + decorate (preprocess) -> pts_voxel_encoder -> scatter to the BEV grid (scatter)
           -> pts_backbone_neck_head -> decode + circle NMS (postprocess) -> boxes

Dataset: mmdet3d's v2 info files (`info_<split>.pkl`, or AWML's T4dataset infos) with `.bin` points.
"""

from pipelines.tasks.detection3d.task import Detection3DOptions, Detection3DTask

TASK = Detection3DTask

__all__ = ["TASK", "Detection3DOptions", "Detection3DTask"]
