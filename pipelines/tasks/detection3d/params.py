"""The numbers that pre/post-processing need, derived from the OpenMMLab config (PyTorch side) or read
back from the exported Autoware ROS parameter files (deployed side), so a file that disagrees with the
model shows up in verify."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipelines.errors import ModelzooError
from pipelines.yamlio import load_yaml

CONFIG = "source.config"
ML_PACKAGE = "centerpoint_ml_package"
NODE = "centerpoint"


@dataclass(frozen=True)
class DeployParams:
    class_names: tuple[str, ...]
    point_cloud_range: tuple[float, ...]  # x, y, z min then x, y, z max (metres)
    voxel_size: tuple[float, ...]  # x, y, z (metres)
    max_points_per_voxel: int
    max_voxels: int
    point_feature_size: int  # features per point read by the encoder (x, y, z, intensity...)
    with_cluster_center: bool
    with_voxel_center: bool
    with_distance: bool
    downsample_factor: int  # BEV grid cells per heatmap cell
    score_threshold: float
    circle_nms_dist_threshold: float  # metres between BEV centres
    pre_nms_top_k: int
    max_detections: int
    post_center_range: tuple[float, ...]
    exp_dim: bool  # the head predicts log sizes
    has_twist: bool  # the head predicts velocity

    @property
    def grid_size(self) -> tuple[int, int, int]:
        r, v = self.point_cloud_range, self.voxel_size
        return tuple(round((r[i + 3] - r[i]) / v[i]) for i in range(3))  # type: ignore[return-value]

    @property
    def encoder_in_feature_size(self) -> int:
        return (
            self.point_feature_size
            + 3 * self.with_cluster_center
            + 3 * self.with_voxel_center
            + int(self.with_distance)
        )

    def ros_params(self, encoder: str, head: str) -> dict[str, dict[str, Any]]:
        """`centerpoint_ml_package` (the model) and `centerpoint` (the node's post-processing), in the
        style of Autoware's lidar_centerpoint. Changing this key set is an API change (X)."""
        return {
            ML_PACKAGE: {
                "model_params": {
                    "class_names": list(self.class_names),
                    "point_feature_size": self.point_feature_size,
                    "max_voxel_size": self.max_voxels,
                    "max_points_per_voxel": self.max_points_per_voxel,
                    "point_cloud_range": list(self.point_cloud_range),
                    "voxel_size": list(self.voxel_size),
                    "downsample_factor": self.downsample_factor,
                    "encoder_in_feature_size": self.encoder_in_feature_size,
                    "has_variance": False,
                    "has_twist": self.has_twist,
                }
            },
            NODE: {
                "encoder_onnx_path": f"{encoder}.onnx",
                "head_onnx_path": f"{head}.onnx",
                "post_process_params": {
                    "score_threshold": self.score_threshold,
                    "circle_nms_dist_threshold": self.circle_nms_dist_threshold,
                    "pre_nms_top_k": self.pre_nms_top_k,
                    "max_detections": self.max_detections,
                    "post_center_range": list(self.post_center_range),
                },
            },
        }


def _get(cfg: Any, path: str, default: Any = KeyError) -> Any:
    node = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            if default is KeyError:
                raise ModelzooError(f"{CONFIG}: model.{path}: missing")
            return default
        node = node[key]
    return node


def _same(a: Any, b: Any, where: str, what: str) -> None:
    if not all(math.isclose(float(x), float(y), abs_tol=1e-9) for x, y in zip(a, b, strict=True)):
        raise ModelzooError(f"{CONFIG}: model.{where}: {list(a)} disagrees with {what} {list(b)}")


def from_config(cfg: Any) -> DeployParams:
    """DeployParams of a pillar CenterPoint config; a config the split pipeline cannot run is refused."""
    model = cfg["model"]
    vl = _get(model, "data_preprocessor.voxel_layer")
    pcr, vs = tuple(float(x) for x in vl["point_cloud_range"]), tuple(float(x) for x in vl["voxel_size"])
    max_voxels = vl.get("max_voxels", 20000)
    enc = _get(model, "pts_voxel_encoder")
    if enc.get("type") != "PillarFeatureNet":
        raise ModelzooError(f"{CONFIG}: model.pts_voxel_encoder.type: {enc.get('type')!r}, needs 'PillarFeatureNet'")
    if enc.get("legacy", True) or enc.get("mode", "max") != "max":
        raise ModelzooError(f"{CONFIG}: model.pts_voxel_encoder: needs legacy=False and mode='max'")
    _same(enc["voxel_size"], vs, "pts_voxel_encoder.voxel_size", "voxel_layer.voxel_size")
    _same(enc["point_cloud_range"], pcr, "pts_voxel_encoder.point_cloud_range", "voxel_layer.point_cloud_range")
    head = _get(model, "pts_bbox_head")
    if len(head["tasks"]) != 1:
        raise ModelzooError(f"{CONFIG}: model.pts_bbox_head.tasks: {len(head['tasks'])} tasks, the export needs one")
    heads = set(head.get("common_heads", {}))
    if not {"reg", "height", "dim", "rot"} <= heads:
        raise ModelzooError(f"{CONFIG}: model.pts_bbox_head.common_heads: needs reg, height, dim, rot; has {heads}")
    coder = head["bbox_coder"]
    _same(coder["voxel_size"], vs[:2], "pts_bbox_head.bbox_coder.voxel_size", "voxel_layer.voxel_size")
    _same(coder["pc_range"], pcr[:2], "pts_bbox_head.bbox_coder.pc_range", "voxel_layer.point_cloud_range")
    test = _get(model, "test_cfg.pts")
    if test.get("nms_type") != "circle":
        raise ModelzooError(f"{CONFIG}: model.test_cfg.pts.nms_type: {test.get('nms_type')!r}, needs 'circle'")
    p = DeployParams(
        class_names=tuple(head["tasks"][0]["class_names"]),
        point_cloud_range=pcr,
        voxel_size=vs,
        max_points_per_voxel=int(vl["max_num_points"]),
        max_voxels=int(max_voxels[1] if isinstance(max_voxels, (list, tuple)) else max_voxels),
        point_feature_size=int(enc.get("in_channels", 4)),
        with_cluster_center=bool(enc.get("with_cluster_center", True)),
        with_voxel_center=bool(enc.get("with_voxel_center", True)),
        with_distance=bool(enc.get("with_distance", False)),
        downsample_factor=int(coder["out_size_factor"]),
        score_threshold=float(coder.get("score_threshold") or 0.0),
        # mmdet3d's circle_nms compares *squared* centre distances with min_radius.
        circle_nms_dist_threshold=math.sqrt(float(test["min_radius"][0])),
        pre_nms_top_k=int(coder.get("max_num", 100)),
        max_detections=int(test.get("post_max_size", 83)),
        post_center_range=tuple(float(x) for x in coder["post_center_range"]),
        exp_dim=bool(head.get("norm_bbox", True)),
        has_twist="vel" in heads,
    )
    grid = _get(model, "pts_middle_encoder.output_shape")
    if tuple(grid) != (p.grid_size[1], p.grid_size[0]):
        raise ModelzooError(
            f"{CONFIG}: model.pts_middle_encoder.output_shape: {list(grid)}, the voxel grid is "
            f"{[p.grid_size[1], p.grid_size[0]]} (y, x)"
        )
    return p


def read_ros_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelzooError(f"{path}: ROS parameter file not found (run the export stage)")
    data = load_yaml(path, error=ModelzooError)
    try:
        return dict(data["/**"]["ros__parameters"])
    except (KeyError, TypeError) as err:
        raise ModelzooError(f"{path}: not a ROS parameter file (/**: ros__parameters: ...): {err}") from None


def from_ros_files(base: DeployParams, folder: Path) -> DeployParams:
    """`base` with every value the exported parameter files hold taken from them, as Autoware would."""
    ml_path, node_path = folder / f"{ML_PACKAGE}.param.yaml", folder / f"{NODE}.param.yaml"
    try:
        m = read_ros_file(ml_path)["model_params"]
        post = read_ros_file(node_path)["post_process_params"]
        p = replace(
            base,
            class_names=tuple(m["class_names"]),
            point_cloud_range=tuple(float(x) for x in m["point_cloud_range"]),
            voxel_size=tuple(float(x) for x in m["voxel_size"]),
            max_points_per_voxel=int(m["max_points_per_voxel"]),
            max_voxels=int(m["max_voxel_size"]),
            point_feature_size=int(m["point_feature_size"]),
            downsample_factor=int(m["downsample_factor"]),
            has_twist=bool(m["has_twist"]),
            score_threshold=float(post["score_threshold"]),
            circle_nms_dist_threshold=float(post["circle_nms_dist_threshold"]),
            pre_nms_top_k=int(post["pre_nms_top_k"]),
            max_detections=int(post["max_detections"]),
            post_center_range=tuple(float(x) for x in post["post_center_range"]),
        )
        declared = int(m["encoder_in_feature_size"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelzooError(f"{ml_path.parent}: ROS parameter files lack or garble {err}") from None
    if declared != p.encoder_in_feature_size:
        raise ModelzooError(
            f"{ml_path}: model_params.encoder_in_feature_size: {declared}, the encoder's decoration makes "
            f"{p.encoder_in_feature_size}"
        )
    return p
