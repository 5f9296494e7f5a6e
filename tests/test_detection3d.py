"""detection3d task pieces against the OpenMMLab code they reimplement (mmcv voxelization, mmdet3d
pillar decoration and scatter), plus metrics, box matching, ROS parameters and the info loader."""

from __future__ import annotations

import copy
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipelines.descriptor import Tolerance
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.tasks.detection3d import params as deploy
from pipelines.tasks.detection3d.data import load_frames
from pipelines.tasks.detection3d.decode import Boxes3D, circle_nms
from pipelines.tasks.detection3d.match import compare_boxes
from pipelines.tasks.detection3d.metrics import detection_metrics
from pipelines.tasks.detection3d.scatter import scatter
from pipelines.tasks.detection3d.sweeps import PointLoading
from pipelines.tasks.detection3d.voxelize import decorate, voxelize

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "models" / "centerpoint" / "config.py"
CLASSES = ("car", "pedestrian", "bicycle")
XYZI = PointLoading(load_dim=5, use_dim=(0, 1, 2, 3))

WHERE = "models/centerpoint/config.py"
SCHEMAS = REPO / "tests" / "data" / "autoware" / "lidar_centerpoint"

# The bundle's files and keys (two levels). Changing this set is an API change (X) of the model's release.
_ML_PACKAGE = {
    "version": None,
    "encoder_onnx_path": None,
    "encoder_engine_path": None,
    "head_onnx_path": None,
    "head_engine_path": None,
    "class_remapper_param_path": None,
    "trt_precision": None,
    "model_params": [
        "class_names",
        "point_feature_size",
        "max_voxel_size",
        "max_points_per_voxel",
        "point_cloud_range",
        "voxel_size",
        "downsample_factor",
        "encoder_in_feature_size",
        "has_variance",
        "has_twist",
        "yaw_norm_thresholds",
        "detection_score_thresholds",
    ],
}
ROS_KEYS = {
    "centerpoint_ml_package": _ML_PACKAGE,
    "centerpoint_fp16_ml_package": _ML_PACKAGE,
    "detection_class_remapper": {
        "allow_remapping_by_area_matrix": None,
        "min_area_matrix": None,
        "max_area_matrix": None,
    },
    "centerpoint_common": {
        "cloud_capacity": None,
        "post_process_params": [
            "circle_nms_dist_threshold",
            "iou_nms_search_distance_2d",
            "iou_nms_threshold",
            "pre_nms_top_k",
            "max_detections",
            "post_center_range",
        ],
        "densification_params": ["world_frame_id", "num_past_frames"],
        "diagnostics": [
            "max_allowed_processing_time_ms",
            "max_acceptable_consecutive_delay_ms",
            "validation_callback_interval_ms",
        ],
    },
}
# Autoware's schema(s) each generated file must satisfy.
FILE_SCHEMAS = {
    "centerpoint_ml_package": ["ml_package"],
    "centerpoint_fp16_ml_package": ["ml_package"],
    "detection_class_remapper": ["detection_class_remapper"],
    "centerpoint_common": ["centerpoint", "centerpoint_common"],
}


def load_schema(name: str) -> dict:
    """An Autoware schema kept as test data; upstream's class remapper schema has // comments."""
    import json
    import re

    text = (SCHEMAS / f"{name}.schema.json").read_text()
    return json.loads(re.sub(r"\s//[^\n]*", "", text))


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    from mmengine.config import Config

    return Config.fromfile(str(CONFIG))


@pytest.fixture(scope="module")
def params(cfg) -> deploy.DeployParams:  # type: ignore[no-untyped-def]
    return deploy.with_autoware_settings(deploy.from_config(cfg, WHERE), "task_options")


def random_points(seed: int, n: int = 6000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-27, -27, -3.5, 0, 0], [27, 27, 3.5, 255, 0.1], (n, 5)).astype(np.float32)  # x y z i lag
    pts[: n // 3, :2] = rng.normal(0, 1.5, (n // 3, 2))  # crowded pillars: the per-pillar cap matters
    pts[n // 3 : n // 3 + 50, 0] = -25.6 + 0.4 * rng.integers(0, 128, 50)  # exactly on voxel borders
    pts[-80:, :2] = rng.uniform(0.01, 0.39, (80, 2))  # one pillar with more points than the cap of 32
    return pts


@pytest.mark.parametrize("max_voxels", [16000, 700])
def test_voxelize_equals_mmcv(params: deploy.DeployParams, max_voxels: int) -> None:
    import torch
    from mmcv.ops import Voxelization

    p = deploy.DeployParams(**{**params.__dict__, "max_voxels": max_voxels})
    pts = random_points(0)
    layer = Voxelization(list(p.voxel_size), list(p.point_cloud_range), p.max_points_per_voxel, max_voxels).eval()
    voxels, coors, num = layer(torch.from_numpy(pts))
    ours = voxelize(pts, p)
    assert num.max() == p.max_points_per_voxel  # the cap was exercised
    np.testing.assert_array_equal(ours.coors, coors.numpy())
    np.testing.assert_array_equal(ours.num_points, num.numpy())
    np.testing.assert_array_equal(ours.points, voxels.numpy())


def test_decorate_and_scatter_equal_mmdet3d(cfg, params: deploy.DeployParams) -> None:  # type: ignore[no-untyped-def]
    import torch
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    detector = MODELS.build(cfg.model).eval()
    v = voxelize(random_points(1), params)
    coors = torch.from_numpy(np.pad(v.coors, ((0, 0), (1, 0))))  # batch index first, as mmdet3d's
    with torch.no_grad():
        want = detector.pts_voxel_encoder(torch.from_numpy(v.points), torch.from_numpy(v.num_points), coors)
        ours = detector.pts_voxel_encoder.pfn_layers[0](torch.from_numpy(decorate(v, params)))
        np.testing.assert_allclose(ours.squeeze(1).numpy(), want.numpy(), atol=1e-5)
        canvas = detector.pts_middle_encoder(want, coors, 1).numpy()
    np.testing.assert_array_equal(scatter(want.numpy(), v.coors, params.grid_size[:2]), canvas)


def test_circle_nms_keeps_best_of_each_cluster() -> None:
    xy = np.array([[0, 0], [0.5, 0], [3, 0], [3, 0.9], [10, 10]], np.float32)
    scores = np.array([0.5, 0.9, 0.3, 0.8, 0.2], np.float32)
    assert circle_nms(xy, scores, 1.0, 83).tolist() == [1, 3, 4]
    assert circle_nms(xy, scores, 1.0, 2).tolist() == [1, 3]


def boxes(xy: list[tuple[float, float]], labels: list[int], scores: list[float] | None = None) -> Boxes3D:
    n = len(xy)
    b = np.zeros((n, 7), np.float32)
    b[:, :2] = xy
    b[:, 3:6] = [4.0, 1.8, 1.5]
    return Boxes3D(
        b, np.zeros((n, 2), np.float32), np.asarray(scores or [0.9] * n, np.float32), np.asarray(labels, np.int64)
    )


def frame_with(gt: Boxes3D):  # type: ignore[no-untyped-def]
    from pipelines.tasks.detection3d.data import Frame

    return Frame(0, "t", np.zeros((0, 4), np.float32), gt.boxes, gt.labels, gt.velocity, np.full(len(gt), 5, np.int64))


def test_center_distance_map() -> None:
    gt = boxes([(0, 0), (10, 5), (-8, 3)], [0, 0, 1])
    frames = [frame_with(gt)]
    bev = (-25.6, -25.6, 25.6, 25.6)
    perfect = detection_metrics([gt], frames, CLASSES, [0.5, 1, 2, 4], bev)
    assert perfect["mAP"] == 1.0 and perfect["AP_car"] == 1.0 and "AP_bicycle" not in perfect
    shifted = Boxes3D(gt.boxes + np.array([0.7, 0, 0, 0, 0, 0, 0], np.float32), gt.velocity, gt.scores, gt.labels)
    m = detection_metrics([shifted], frames, CLASSES, [0.5, 1, 2, 4], bev)
    assert m["AP_car_0.5m"] == 0.0 and m["AP_car_1m"] == 1.0 and m["mAP"] == 0.75
    # A wrong class finds nothing; a false positive ranked first costs precision.
    assert (
        detection_metrics([boxes([(0, 0)], [1])], [frame_with(boxes([(0, 0)], [0]))], CLASSES, [1], bev)["AP_car"]
        == 0.0
    )
    fp_first = boxes([(20, 20), (0, 0), (10, 5), (-8, 3)], [0, 0, 0, 1], [0.99, 0.9, 0.9, 0.9])
    assert 0.0 < detection_metrics([fp_first], frames, CLASSES, [1], bev)["AP_car"] < 1.0


def tol(key: str) -> Tolerance:
    return Tolerance(atol=1e-3, rtol=0.0)


def test_compare_boxes_matches_and_catches_differences() -> None:
    ref = boxes([(0, 0), (10, 5), (-8, 3)], [0, 0, 1], [0.9, 0.5, 0.3])
    same = compare_boxes(ref, ref.take(np.array([2, 0, 1])), tol, 0.1)
    assert all(r.passed for r in same.values()) and same["boxes.matched"].pairs == 3
    moved = Boxes3D(ref.boxes + np.array([0.01, 0, 0, 0, 0, 0, 0], np.float32), ref.velocity, ref.scores, ref.labels)
    res = compare_boxes(ref, moved, tol, 0.1)
    assert not res["boxes.center"].passed and res["boxes.center"].max_abs_error == pytest.approx(0.01, 1e-4)
    missing = compare_boxes(ref, ref.take(np.array([0, 2])), tol, 0.1)
    assert not missing["boxes.matched"].passed and "reference box 1" in (missing["boxes.matched"].error or "")

    def turned(by: float) -> Boxes3D:
        return Boxes3D(ref.boxes + np.array([0, 0, 0, 0, 0, 0, by], np.float32), ref.velocity, ref.scores, ref.labels)

    # Yaw is compared modulo pi (same box, heading flipped); any other turn fails, the long way round too.
    assert compare_boxes(ref, turned(np.pi), tol, 0.1)["boxes.yaw"].passed
    for by in (0.01, np.pi - 0.01, -0.01, 2 * np.pi - 0.01):
        res = compare_boxes(ref, turned(by), tol, 0.1)["boxes.yaw"]
        assert not res.passed and res.max_abs_error == pytest.approx(0.01, abs=1e-4), by
    # A box on the score threshold may fall either side: not a failure.
    border = boxes([(0, 0), (5, 5)], [0, 0], [0.9, 0.1005])
    assert compare_boxes(border, border.take(np.array([0])), tol, 0.1)["boxes.matched"].passed


def write_bundle(files: dict, folder: Path) -> None:
    for stem, body in files.items():
        (folder / f"{stem}.param.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": body}}))


def test_bundle_key_set_schemas_and_round_trip(params: deploy.DeployParams, tmp_path: Path) -> None:
    import jsonschema

    from pipelines.stages.export import write_ros_params

    precisions = ["fp32", "fp16", "int8"]
    files = deploy.bundle(
        params, "centerpoint", "pts_voxel_encoder", "pts_backbone_neck_head", precisions, num_past_frames=1
    )
    keys = {
        stem: {k: sorted(v) if isinstance(v, dict) else None for k, v in body.items()} for stem, body in files.items()
    }
    assert keys == {s: {k: sorted(v) if v else None for k, v in b.items()} for s, b in ROS_KEYS.items()}
    # Every file as export writes it (stamped with model and modelzoo versions) passes Autoware's schemas.
    for stem, body in files.items():
        write_ros_params(tmp_path / f"{stem}.param.yaml", body, {"model_version": "1.0.0"})
        written = yaml.safe_load((tmp_path / f"{stem}.param.yaml").read_text())
        for schema in FILE_SCHEMAS[stem]:
            jsonschema.validate(written, load_schema(schema))
    ml, fp16 = files["centerpoint_ml_package"], files["centerpoint_fp16_ml_package"]
    assert ml["version"] == deploy.ML_PACKAGE_VERSION == "v4.1"
    assert (ml["trt_precision"], ml["encoder_onnx_path"], ml["head_engine_path"]) == (
        "fp32",
        "pts_voxel_encoder.onnx",
        "pts_backbone_neck_head.engine",
    )
    assert (fp16["trt_precision"], fp16["encoder_onnx_path"]) == ("fp16", "fp16/pts_voxel_encoder.onnx")
    m = ml["model_params"]
    assert m["class_names"] == ["CAR", "PEDESTRIAN", "BICYCLE"] and m["voxel_size"] == [0.4, 0.4, 6.0]
    assert m["encoder_in_feature_size"] == 11 and m["downsample_factor"] == 2 and m["point_feature_size"] == 5
    assert m["yaw_norm_thresholds"] == [0.3, 0.0, 0.3]  # Autoware's defaults: 0.3, pedestrians 0
    assert m["detection_score_thresholds"] == {
        "distance_bin_upper_limits": [50.0, 90.0, 121.0, 200.0],
        "min_confidence_scores": {n: [0.1] * 4 for n in ("CAR", "PEDESTRIAN", "BICYCLE")},  # the config's 0.1
    }
    assert len(files["detection_class_remapper"]["min_area_matrix"]) == len(deploy.AUTOWARE_LABELS) ** 2
    assert files["centerpoint_common"]["post_process_params"]["circle_nms_dist_threshold"] == 1.0
    assert files["centerpoint_common"]["densification_params"] == {"world_frame_id": "map", "num_past_frames": 1}
    # A file Autoware's schema refuses is caught by the same check: here int8, which trt_precision lacks.
    bad = copy.deepcopy(ml)
    bad["trt_precision"] = "int8"
    with pytest.raises(jsonschema.ValidationError, match="int8"):
        jsonschema.validate({"/**": {"ros__parameters": bad}}, load_schema("ml_package"))
    # The deployed side reads the bundle back: the same numbers; a file that disagrees is refused.
    write_bundle(files, tmp_path)
    assert deploy.from_ros_files(params, tmp_path, "centerpoint") == params
    for change, message in (
        (lambda m: m.update(encoder_in_feature_size=9), "encoder_in_feature_size: 9"),
        (lambda m: m.update(class_names=["CAR", "BICYCLE", "PEDESTRIAN"]), "class_names"),
        (lambda m: m.update(yaw_norm_thresholds=[0.3]), "one value per class"),
    ):
        edited = copy.deepcopy(files)
        change(edited["centerpoint_ml_package"]["model_params"])
        write_bundle(edited, tmp_path)
        with pytest.raises(ModelzooError, match=message):
            deploy.from_ros_files(params, tmp_path, "centerpoint")
    edited = copy.deepcopy(files)
    scores = edited["centerpoint_ml_package"]["model_params"]["detection_score_thresholds"]["min_confidence_scores"]
    scores["CAR"] = [0.5] * 4
    write_bundle(edited, tmp_path)
    assert deploy.from_ros_files(params, tmp_path, "centerpoint").score_thresholds[0] == (0.5,) * 4
    edited["centerpoint_ml_package"].pop("version")
    write_bundle(edited, tmp_path)
    with pytest.raises(ModelzooError, match="lack or garble 'version'"):
        deploy.from_ros_files(params, tmp_path, "centerpoint")


def test_task_options_set_labels_and_thresholds_and_bad_ones_are_refused(params: deploy.DeployParams) -> None:
    base = replace(params, class_names=("car", "barrier", "bicycle"))
    with pytest.raises(DescriptorError, match=r"task_options.autoware_labels: class 'barrier' has no Autoware label"):
        deploy.with_autoware_settings(base, "task_options")
    p = deploy.with_autoware_settings(
        base,
        "task_options",
        labels={"barrier": "UNKNOWN"},
        yaw_norm_thresholds={"car": 0.5},
        distance_bins=[20.0, 40.0],
        min_confidence_scores={"bicycle": [0.2, 0.3]},
    )
    assert p.autoware_labels == ("CAR", "UNKNOWN", "BICYCLE") and p.yaw_norm_thresholds == (0.5, 0.3, 0.3)
    assert p.score_thresholds == ((0.1, 0.1), (0.1, 0.1), (0.2, 0.3))
    unknown = {"barrier": "UNKNOWN"}
    for kwargs, message in (
        ({"labels": {"barrier": "BARRIER"}}, "'BARRIER' is no Autoware label"),
        ({"labels": {"barrier": "CAR"}}, "two classes map to one label"),
        ({"labels": unknown, "yaw_norm_thresholds": {"truck": 0.3}}, r"\['truck'\]: not among"),
        ({"labels": unknown, "min_confidence_scores": {"car": [0.2]}}, "one per distance bin"),
        ({"labels": unknown, "min_confidence_scores": {"car": [0.05] * 4}}, "below the config's"),
    ):
        with pytest.raises(DescriptorError, match=message):
            deploy.with_autoware_settings(base, "task_options", **kwargs)  # type: ignore[arg-type]


def test_autoware_filter_keeps_what_the_node_keeps(params: deploy.DeployParams) -> None:
    """Autoware's postprocess kernel: a score below its class's threshold in its distance bin, a box beyond
    the last bin, or a yaw vector shorter than its class's threshold is dropped."""
    from pipelines.tasks.detection3d.decode import autoware_filter

    p = replace(
        params,
        distance_bins=(10.0, 20.0),
        score_thresholds=((0.3, 0.6), (0.2, 0.2), (0.5, 0.5)),
        yaw_norm_thresholds=(0.3, 0.0, 0.3),
    )
    scores = np.array([0.4, 0.4, 0.7, 0.7, 0.25, 0.9, 0.9, 0.9], np.float32)
    labels = np.array([0, 0, 0, 0, 1, 0, 1, 2])
    xy = np.array([[5, 0], [0, 15], [0, 15], [20, 0], [3, 4], [1, 1], [1, 1], [1, 1]], np.float32)
    rot = np.array([[0, 1]] * 5 + [[0.2, 0.2], [0.0, 0.01], [0.1, 0.2]], np.float32)
    assert autoware_filter(scores, labels, xy, rot, p).tolist() == [True, False, True, False, True, False, True, False]


def test_config_the_export_cannot_run_is_refused_with_file_field_and_fix(cfg) -> None:  # type: ignore[no-untyped-def]
    cases = []
    six = copy.deepcopy(cfg)
    six.model.pts_bbox_head.tasks = [dict(num_class=1, class_names=["car"])] * 6
    cases.append((six, r"model.pts_bbox_head.tasks: 6 tasks: .*one head task: merge the classes into one task"))
    rotate = copy.deepcopy(cfg)
    rotate.model.test_cfg.pts.nms_type = "rotate"
    cases.append((rotate, r"model.test_cfg.pts.nms_type: 'rotate': .*set nms_type='circle'"))
    legacy = copy.deepcopy(cfg)
    legacy.model.pts_voxel_encoder.legacy = True
    cases.append((legacy, r"model.pts_voxel_encoder.legacy: True: .*set legacy=False and retrain"))
    voxels = copy.deepcopy(cfg)
    voxels.model.pts_voxel_encoder.voxel_size = [0.5, 0.5, 6.0]
    cases.append((voxels, r"model.pts_voxel_encoder.voxel_size: \[0.5, 0.5, 6.0\] disagrees .*make them equal"))
    for bad, message in cases:
        with pytest.raises(DescriptorError, match=rf"^{WHERE}: {message}") as err:
            deploy.from_config(bad, WHERE)
        assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_dataset_categories_must_hold_the_class_names(tmp_path: Path) -> None:
    """The rule YOLOX's COCO loader applies (tasks/base.require_class_names): a class the model predicts
    that the evaluation dataset does not name is an error, not an empty AP."""
    info = write_awml_style_infos(tmp_path)
    with pytest.raises(ModelzooError, match=r"metainfo.categories: no \['motorcycle'\] .* class_names must match"):
        load_frames(info, tmp_path, ("car", "motorcycle"), 5, [0, 1, 2, 3])


def test_pillar_encoder_with_folded_batch_norm_equals_the_pfn_layers() -> None:
    """Two PFN layers (the first concatenates per-point and max features), BatchNorm with trained-looking
    statistics: the built-in split's encoder gives mmdet3d's output."""
    import torch
    from mmdet3d.models.voxel_encoders.utils import PFNLayer

    from pipelines.tasks.detection3d.split import PillarEncoder

    torch.manual_seed(0)
    net = torch.nn.Module()
    net.pfn_layers = torch.nn.ModuleList([PFNLayer(10, 64), PFNLayer(64, 32, last_layer=True)])
    for pfn in net.pfn_layers:
        pfn.norm.running_mean.uniform_(-1, 1)
        pfn.norm.running_var.uniform_(0.5, 2)
        pfn.norm.weight.data.uniform_(0.5, 1.5)
        pfn.norm.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(500, 8, 10)
    with torch.no_grad():
        want = x
        for pfn in net.pfn_layers:
            want = pfn(want)
        got = PillarEncoder(net, WHERE)(x)
    assert got.shape == want.shape == (500, 1, 32)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    net.pfn_layers[1].mode = "avg"  # averaging is not what the fold reproduces: refused, naming the config
    with pytest.raises(DescriptorError, match=rf"^{WHERE}: model.pts_voxel_encoder, PFN layer 1: .* got mode='avg'"):
        PillarEncoder(net, WHERE)


def write_awml_style_infos(root: Path) -> Path:
    """An info file as AWML's T4dataset converter writes it: more categories in another order, paths
    relative to the data root in scene folders, ignored (-1) labels, extra keys."""
    rng = np.random.default_rng(0)
    scene = root / "db_j6_v1" / "scene0" / "0" / "data" / "LIDAR_CONCAT"
    scene.mkdir(parents=True)
    pts = rng.normal(0, 5, (301, 5)).astype(np.float32)
    pts.tofile(scene / "0.pcd.bin")
    infos = {
        "metainfo": {"categories": {"car": 0, "truck": 1, "bus": 2, "bicycle": 3, "pedestrian": 4}, "version": "t4"},
        "data_list": [
            {
                "token": "abc",
                "lidar_points": {"lidar_path": "db_j6_v1/scene0/0/data/LIDAR_CONCAT/0.pcd.bin", "num_pts_feats": 5},
                "lidar_sweeps": [],
                "instances": [
                    {
                        "bbox_3d": [1, 2, -1, 4, 2, 1.5, 0.1],
                        "bbox_label_3d": 0,
                        "velocity": [1.0, 0.0],
                        "num_lidar_pts": 40,
                        "bbox_3d_isvalid": True,
                    },
                    {"bbox_3d": [5, 2, -1, 8, 2.5, 3, 0.1], "bbox_label_3d": 1, "num_lidar_pts": 12},
                    {"bbox_3d": [3, 3, -1, 0.6, 0.6, 1.7, 0.0], "bbox_label_3d": 4, "num_lidar_pts": 3},
                    {"bbox_3d": [9, 9, -1, 1.7, 0.6, 1.2, 0.0], "bbox_label_3d": 3, "num_lidar_pts": 0},
                    {"bbox_3d": [0, 9, -1, 1, 1, 1, 0.0], "bbox_label_3d": -1},
                ],
            }
        ],
    }
    path = root / "t4dataset_xx1_infos_val.pkl"
    path.write_bytes(pickle.dumps(infos))
    return path


def test_real_format_infos_load_the_same_way(tmp_path: Path) -> None:
    info = write_awml_style_infos(tmp_path)
    (f,) = load_frames(info, tmp_path, CLASSES, XYZI)
    assert f.points.shape == (301, 4) and f.token == "abc"
    assert f.gt_labels.tolist() == [0, 1, 2]  # car, pedestrian, bicycle in the model's order; truck dropped
    assert f.gt_num_points.tolist() == [40, 3, 0]
    np.testing.assert_allclose(f.gt_velocity[0], [1.0, 0.0])


def test_bad_info_files_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelzooError, match="info file not found"):
        load_frames(tmp_path / "nope.pkl", tmp_path, CLASSES, XYZI)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelzooError, match=r"junk\.pkl: not a readable info pickle"):
        load_frames(tmp_path / "junk.pkl", tmp_path, CLASSES, XYZI)
    (tmp_path / "v1.pkl").write_bytes(pickle.dumps([{"lidar_path": "x"}]))
    with pytest.raises(ModelzooError, match="data_list: missing"):
        load_frames(tmp_path / "v1.pkl", tmp_path, CLASSES, XYZI)
    info = write_awml_style_infos(tmp_path / "t4")
    with pytest.raises(ModelzooError, match=r"0\.pcd\.bin: .* not a multiple of load_dim 4"):
        load_frames(info, tmp_path / "t4", CLASSES, PointLoading(4, (0, 1, 2, 3)))
    shutil.rmtree(tmp_path / "t4" / "db_j6_v1")
    with pytest.raises(ModelzooError, match="point cloud not found"):
        load_frames(info, tmp_path / "t4", CLASSES, XYZI)
