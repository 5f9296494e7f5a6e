"""The numbers that pre/post-processing need, derived from the OpenMMLab config (PyTorch side) or read
back from the exported Autoware bundle (deployed side), so a file that disagrees with the model shows
up in verify; and the bundle itself, in the layout Autoware's `autoware_lidar_centerpoint` reads.

Autoware contract read: autowarefoundation/autoware_universe, perception/autoware_lidar_centerpoint
(schema/ml_package.schema.json and lib/ml_package_version.cpp at 656cdab8e8628ec34de27c11e07d1297111f06ac,
launch/lidar_centerpoint.launch.xml, src/node.cpp, lib/postprocess/postprocess_kernel.cu); copies of
the schemas are test data in tests/data/autoware/lidar_centerpoint/ (SOURCE.md there).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipelines.errors import DescriptorError, ModelzooError
from pipelines.yamlio import load_yaml

# The bundle format version the node requires: include/autoware/lidar_centerpoint/ml_package_version.hpp
# (SUPPORTED_ML_PACKAGE_MAJOR_VERSION 4, MINIMUM_ML_PACKAGE_MINOR_VERSION 1; the node refuses a bundle
# without one), which is also the revision autoware's ansible artifacts role pins (lidar_centerpoint v4.1).
ML_PACKAGE_VERSION = "v4.1"
# Files the launch file reads from model_path: <model_name>_ml_package.param.yaml and this one.
CLASS_REMAPPER = "detection_class_remapper"
# The node's own parameters (post-processing, densification, diagnostics): the launch reads them from
# common_param_path; the bundle carries a file for it so that they match the model.
COMMON = "centerpoint_common"
ML_PACKAGE_SUFFIX = "_ml_package"
# Points per pillar the node's encoder input has: MAX_POINT_IN_VOXEL_SIZE, a constant in
# lib/preprocess/preprocess_kernel.cu ("the same as max_point_in_voxel_size_ in config"), not a parameter.
NODE_POINTS_PER_PILLAR = 32
# trt_precision values the schema admits; other precision variants get no bundle file.
TRT_PRECISIONS = ("fp32", "fp16")

# Label names the node turns into ObjectClassification labels (src/ros_utils.cpp getSemanticType:
# anything else becomes UNKNOWN), in the label order the class remapper's matrices use.
AUTOWARE_LABELS = ("UNKNOWN", "CAR", "TRUCK", "BUS", "TRAILER", "MOTORBIKE", "BICYCLE", "PEDESTRIAN")
# Training class name -> Autoware label where the name says it (nuScenes / T4 names);
# task_options.autoware_labels maps any other.
DEFAULT_LABELS = {
    "car": "CAR",
    "truck": "TRUCK",
    "bus": "BUS",
    "trailer": "TRAILER",
    "motorcycle": "MOTORBIKE",
    "motorbike": "MOTORBIKE",
    "bicycle": "BICYCLE",
    "pedestrian": "PEDESTRIAN",
}
# Autoware's documented defaults (schema defaults), used where neither config nor task_options say.
DEFAULT_YAW_NORM = {"PEDESTRIAN": 0.0}  # every other label: 0.3
DEFAULT_YAW_NORM_OTHER = 0.3
DEFAULT_DISTANCE_BINS = (50.0, 90.0, 121.0, 200.0)
DEFAULT_COMMON = {
    "cloud_capacity": 2000000,
    "iou_nms_search_distance_2d": 10.0,
    "iou_nms_threshold": 0.1,
    "diagnostics": {
        "max_allowed_processing_time_ms": 200.0,
        "max_acceptable_consecutive_delay_ms": 1000.0,
        "validation_callback_interval_ms": 100,
    },
}


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
    score_threshold: float  # candidates: every per-class threshold below is at least this
    circle_nms_dist_threshold: float  # metres between BEV centres
    pre_nms_top_k: int
    max_detections: int
    post_center_range: tuple[float, ...]
    exp_dim: bool  # the head predicts log sizes
    has_twist: bool  # the head predicts velocity
    autoware_labels: tuple[str, ...] = ()  # per class, Autoware's name for it
    yaw_norm_thresholds: tuple[float, ...] = ()  # per class: boxes with a shorter (sin, cos) are dropped
    distance_bins: tuple[float, ...] = (math.inf,)  # upper limits of BEV radial distance bins (metres)
    score_thresholds: tuple[tuple[float, ...], ...] = ()  # per class, per distance bin

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


# The frame Autoware accumulates past sweeps in (its default, config/centerpoint_common.param.yaml).
DENSIFICATION_WORLD_FRAME = "map"


def densification_params(num_past_frames: int) -> dict[str, Any]:
    """The node's `densification_params`: the past sweeps it stacks (mmdet3d's `sweeps_num`, the key
    frame not counted) in `world_frame_id`."""
    return {"world_frame_id": DENSIFICATION_WORLD_FRAME, "num_past_frames": num_past_frames}


def bundle(
    p: DeployParams,
    model_name: str,
    encoder: str,
    head: str,
    precisions: Sequence[str],
    *,
    num_past_frames: int,
) -> dict[str, Any]:
    """Every Autoware parameter file of the model, file stem -> ros__parameters: one
    `<model_name>[_<precision>]_ml_package` per precision Autoware's trt_precision admits (fp32 on the
    exported ONNX files, others on their variants in `<precision>/`), the class remapper and the
    node's common parameters. Changing this key set is an API change (X)."""
    model_params = {
        "class_names": list(p.autoware_labels),
        "point_feature_size": p.point_feature_size,
        "max_voxel_size": p.max_voxels,
        "max_points_per_voxel": p.max_points_per_voxel,  # the node's is fixed at 32: from_config refuses others
        "point_cloud_range": list(p.point_cloud_range),
        "voxel_size": list(p.voxel_size),
        "downsample_factor": p.downsample_factor,
        "encoder_in_feature_size": p.encoder_in_feature_size,
        "has_variance": False,
        "has_twist": p.has_twist,
        "yaw_norm_thresholds": list(p.yaw_norm_thresholds),
        "detection_score_thresholds": {
            "distance_bin_upper_limits": list(p.distance_bins),
            "min_confidence_scores": {
                label: list(t) for label, t in zip(p.autoware_labels, p.score_thresholds, strict=True)
            },
        },
    }
    files: dict[str, Any] = {}
    for precision in [x for x in TRT_PRECISIONS if x in precisions]:
        folder = "" if precision == "fp32" else f"{precision}/"
        stem = model_name if precision == "fp32" else f"{model_name}_{precision}"
        files[f"{stem}{ML_PACKAGE_SUFFIX}"] = {
            "version": ML_PACKAGE_VERSION,
            "encoder_onnx_path": f"{folder}{encoder}.onnx",
            "encoder_engine_path": f"{folder}{encoder}.engine",
            "head_onnx_path": f"{folder}{head}.onnx",
            "head_engine_path": f"{folder}{head}.engine",
            "class_remapper_param_path": f"{CLASS_REMAPPER}.param.yaml",
            "trt_precision": precision,
            "model_params": copy.deepcopy(model_params),
        }
    n = len(AUTOWARE_LABELS)
    # No remapping: the node publishes the labels the model predicts.
    files[CLASS_REMAPPER] = {
        "allow_remapping_by_area_matrix": [0] * (n * n),
        "min_area_matrix": [0.0] * (n * n),
        "max_area_matrix": [0.0] * (n * n),
    }
    files[COMMON] = {
        "cloud_capacity": DEFAULT_COMMON["cloud_capacity"],
        "post_process_params": {
            "circle_nms_dist_threshold": p.circle_nms_dist_threshold,
            "iou_nms_search_distance_2d": DEFAULT_COMMON["iou_nms_search_distance_2d"],
            "iou_nms_threshold": DEFAULT_COMMON["iou_nms_threshold"],
            # mmdet3d's decoder settings that the task's decode reproduces; the node does not read them.
            "pre_nms_top_k": p.pre_nms_top_k,
            "max_detections": p.max_detections,
            "post_center_range": list(p.post_center_range),
        },
        "densification_params": densification_params(num_past_frames),
        "diagnostics": dict(DEFAULT_COMMON["diagnostics"]),  # type: ignore[call-overload]
    }
    return files


def autoware_labels(class_names: Sequence[str], mapping: Mapping[str, str], where: str) -> tuple[str, ...]:
    labels = []
    for name in class_names:
        label = mapping.get(name, DEFAULT_LABELS.get(name.lower()))
        if label is None:
            raise DescriptorError(
                f"{where}.autoware_labels: class '{name}' has no Autoware label: map it to one of "
                f"{', '.join(AUTOWARE_LABELS)}"
            )
        if label not in AUTOWARE_LABELS:
            raise DescriptorError(
                f"{where}.autoware_labels.{name}: '{label}' is no Autoware label (one of {', '.join(AUTOWARE_LABELS)})"
            )
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise DescriptorError(f"{where}.autoware_labels: {labels}: two classes map to one label")
    return tuple(labels)


def with_autoware_settings(
    p: DeployParams,
    where: str,
    labels: Mapping[str, str] | None = None,
    yaw_norm_thresholds: Mapping[str, float] | None = None,
    distance_bins: Sequence[float] | None = None,
    min_confidence_scores: Mapping[str, Sequence[float]] | None = None,
) -> DeployParams:
    """`p` with the bundle's per-class settings: task_options (`where`) where given, else Autoware's
    defaults; score thresholds default to the config's score_threshold in every distance bin."""
    names = autoware_labels(p.class_names, labels or {}, where)
    per_class = {"yaw_norm_thresholds": yaw_norm_thresholds, "min_confidence_scores": min_confidence_scores}
    for field, given in per_class.items():
        if unknown := sorted(set(given or {}) - set(p.class_names)):
            raise DescriptorError(f"{where}.{field}: {unknown}: not among the class names {list(p.class_names)}")
    yaw = tuple(
        float((yaw_norm_thresholds or {}).get(c, DEFAULT_YAW_NORM.get(label, DEFAULT_YAW_NORM_OTHER)))
        for c, label in zip(p.class_names, names, strict=True)
    )
    bins = tuple(float(b) for b in (distance_bins or DEFAULT_DISTANCE_BINS))
    if list(bins) != sorted(bins) or not bins:
        raise DescriptorError(f"{where}.distance_bin_upper_limits: {list(bins)}: needs ascending upper limits")
    scores = []
    for c in p.class_names:
        row = tuple(float(s) for s in (min_confidence_scores or {}).get(c, [p.score_threshold] * len(bins)))
        if len(row) != len(bins):
            raise DescriptorError(
                f"{where}.min_confidence_scores.{c}: {len(row)} values, one per distance bin ({len(bins)}) needed"
            )
        if min(row) < p.score_threshold:
            raise DescriptorError(
                f"{where}.min_confidence_scores.{c}: {min(row)} is below the config's "
                f"test_cfg.pts.score_threshold {p.score_threshold}: lower that instead"
            )
        scores.append(row)
    return replace(
        p, autoware_labels=names, yaw_norm_thresholds=yaw, distance_bins=bins, score_thresholds=tuple(scores)
    )


def _get(cfg: Any, path: str, where: str) -> Any:
    node = cfg
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise DescriptorError(f"{where}: model.{path}: missing")
        node = node[key]
    return node


def _same(a: Any, b: Any, where: str, field: str, what: str) -> None:
    if not all(math.isclose(float(x), float(y), abs_tol=1e-9) for x, y in zip(a, b, strict=True)):
        raise DescriptorError(f"{where}: model.{field}: {list(a)} disagrees with {what} {list(b)}: make them equal")


RETRAIN = "and retrain"


def from_config(cfg: Any, where: str) -> DeployParams:
    """DeployParams of a pillar CenterPoint config (`where`: the config file, for messages); a config
    the two-component split cannot run is refused, with the field and the fix."""
    model = cfg["model"]
    vl = _get(model, "data_preprocessor.voxel_layer", where)
    pcr, vs = tuple(float(x) for x in vl["point_cloud_range"]), tuple(float(x) for x in vl["voxel_size"])
    max_voxels = vl.get("max_voxels", 20000)
    enc = _get(model, "pts_voxel_encoder", where)
    if enc.get("type") != "PillarFeatureNet":
        raise DescriptorError(
            f"{where}: model.pts_voxel_encoder.type: {enc.get('type')!r}: Autoware's CenterPoint runs a pillar "
            f"encoder: use 'PillarFeatureNet' {RETRAIN}"
        )
    if enc.get("legacy", True):
        raise DescriptorError(
            f"{where}: model.pts_voxel_encoder.legacy: True: the deployed decoration is mmdet3d's non-legacy "
            f"one: set legacy=False {RETRAIN}"
        )
    if enc.get("mode", "max") != "max":
        raise DescriptorError(
            f"{where}: model.pts_voxel_encoder.mode: {enc.get('mode')!r}: the exported encoder max-pools: "
            f"set mode='max' {RETRAIN}"
        )
    _same(enc["voxel_size"], vs, where, "pts_voxel_encoder.voxel_size", "data_preprocessor.voxel_layer.voxel_size")
    _same(
        enc["point_cloud_range"],
        pcr,
        where,
        "pts_voxel_encoder.point_cloud_range",
        "data_preprocessor.voxel_layer.point_cloud_range",
    )
    head = _get(model, "pts_bbox_head", where)
    if len(head["tasks"]) != 1:
        raise DescriptorError(
            f"{where}: model.pts_bbox_head.tasks: {len(head['tasks'])} tasks: Autoware's CenterPoint runs one "
            f"head task: merge the classes into one task {RETRAIN}"
        )
    heads = set(head.get("common_heads", {}))
    if not {"reg", "height", "dim", "rot"} <= heads:
        raise DescriptorError(
            f"{where}: model.pts_bbox_head.common_heads: has {sorted(heads)}: Autoware's CenterPoint reads "
            f"reg, height, dim, rot (and vel): add them {RETRAIN}"
        )
    coder = head["bbox_coder"]
    _same(coder["voxel_size"], vs[:2], where, "pts_bbox_head.bbox_coder.voxel_size", "voxel_layer.voxel_size")
    _same(coder["pc_range"], pcr[:2], where, "pts_bbox_head.bbox_coder.pc_range", "voxel_layer.point_cloud_range")
    test = _get(model, "test_cfg.pts", where)
    if test.get("nms_type") != "circle":
        raise DescriptorError(
            f"{where}: model.test_cfg.pts.nms_type: {test.get('nms_type')!r}: Autoware's CenterPoint runs circle "
            f"NMS: set nms_type='circle' and min_radius (evaluate again)"
        )
    if int(vl["max_num_points"]) != NODE_POINTS_PER_PILLAR:
        raise DescriptorError(
            f"{where}: model.data_preprocessor.voxel_layer.max_num_points: {vl['max_num_points']}: Autoware's "
            f"CenterPoint fills {NODE_POINTS_PER_PILLAR} points per pillar (fixed in its preprocess kernel): set "
            f"max_num_points={NODE_POINTS_PER_PILLAR} {RETRAIN}"
        )
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
    grid = _get(model, "pts_middle_encoder.output_shape", where)
    if tuple(grid) != (p.grid_size[1], p.grid_size[0]):
        raise DescriptorError(
            f"{where}: model.pts_middle_encoder.output_shape: {list(grid)}, the voxel grid is "
            f"{[p.grid_size[1], p.grid_size[0]]} (y, x): make them equal"
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


def ml_package_file(folder: Path, model_name: str) -> Path:
    return folder / f"{model_name}{ML_PACKAGE_SUFFIX}.param.yaml"


def from_ros_files(base: DeployParams, folder: Path, model_name: str) -> DeployParams:
    """`base` with every value the exported bundle holds taken from it, as Autoware would."""
    ml_path, common_path = ml_package_file(folder, model_name), folder / f"{COMMON}.param.yaml"
    try:
        ml = read_ros_file(ml_path)
        m = ml["model_params"]
        post = read_ros_file(common_path)["post_process_params"]
        thresholds = m["detection_score_thresholds"]
        labels = tuple(str(x) for x in m["class_names"])
        scores = tuple(tuple(float(s) for s in thresholds["min_confidence_scores"][label]) for label in labels)
        p = replace(
            base,
            autoware_labels=labels,
            point_cloud_range=tuple(float(x) for x in m["point_cloud_range"]),
            voxel_size=tuple(float(x) for x in m["voxel_size"]),
            max_points_per_voxel=int(m["max_points_per_voxel"]),
            max_voxels=int(m["max_voxel_size"]),
            point_feature_size=int(m["point_feature_size"]),
            downsample_factor=int(m["downsample_factor"]),
            has_twist=bool(m["has_twist"]),
            yaw_norm_thresholds=tuple(float(x) for x in m["yaw_norm_thresholds"]),
            distance_bins=tuple(float(x) for x in thresholds["distance_bin_upper_limits"]),
            score_thresholds=scores,
            score_threshold=min(min(s) for s in scores),
            circle_nms_dist_threshold=float(post["circle_nms_dist_threshold"]),
            pre_nms_top_k=int(post["pre_nms_top_k"]),
            max_detections=int(post["max_detections"]),
            post_center_range=tuple(float(x) for x in post["post_center_range"]),
        )
        declared = int(m["encoder_in_feature_size"])
        version = str(ml["version"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelzooError(f"{ml_path.parent}: ROS parameter files lack or garble {err}") from None
    if version != ML_PACKAGE_VERSION:
        raise ModelzooError(f"{ml_path}: version: {version!r}, the bundle format is {ML_PACKAGE_VERSION}")
    if labels != base.autoware_labels:
        raise ModelzooError(
            f"{ml_path}: model_params.class_names: {list(labels)}, the model's classes are {list(base.autoware_labels)}"
        )
    if len(p.yaw_norm_thresholds) != len(labels) or any(len(s) != len(p.distance_bins) for s in scores):
        raise ModelzooError(
            f"{ml_path}: model_params: yaw_norm_thresholds needs one value per class and "
            "detection_score_thresholds one per class and distance bin"
        )
    if declared != p.encoder_in_feature_size:
        raise ModelzooError(
            f"{ml_path}: model_params.encoder_in_feature_size: {declared}, the encoder's decoration makes "
            f"{p.encoder_in_feature_size}"
        )
    return p
