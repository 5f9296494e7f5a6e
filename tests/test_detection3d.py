"""detection3d task pieces against the OpenMMLab code they reimplement (mmcv voxelization, mmdet3d
pillar decoration and scatter), plus metrics, box matching, ROS parameters and the info loader."""

from __future__ import annotations

import copy
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipelines.descriptor import Tolerance
from pipelines.errors import ModelzooError
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

# The ROS parameter keys Autoware reads. Changing this set is an API change (X) of the model's release.
ROS_KEYS = {
    "centerpoint_ml_package": {
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
        ]
    },
    "centerpoint": {
        "encoder_onnx_path": None,
        "head_onnx_path": None,
        "post_process_params": [
            "score_threshold",
            "circle_nms_dist_threshold",
            "pre_nms_top_k",
            "max_detections",
            "post_center_range",
        ],
    },
}


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    from mmengine.config import Config

    return Config.fromfile(str(CONFIG))


@pytest.fixture(scope="module")
def params(cfg) -> deploy.DeployParams:  # type: ignore[no-untyped-def]
    return deploy.from_config(cfg)


def random_points(seed: int, n: int = 6000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-27, -27, -3.5, 0, 0], [27, 27, 3.5, 255, 0.1], (n, 5)).astype(np.float32)  # x y z i lag
    pts[: n // 3, :2] = rng.normal(0, 1.5, (n // 3, 2))  # crowded pillars: the per-pillar cap matters
    pts[n // 3 : n // 3 + 50, 0] = -25.6 + 0.4 * rng.integers(0, 128, 50)  # exactly on voxel borders
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
    assert all(r["pass"] for r in same.values()) and same["boxes.matched"]["pairs"] == 3
    moved = Boxes3D(ref.boxes + np.array([0.01, 0, 0, 0, 0, 0, 0], np.float32), ref.velocity, ref.scores, ref.labels)
    res = compare_boxes(ref, moved, tol, 0.1)
    assert not res["boxes.center"]["pass"] and res["boxes.center"]["max_abs_error"] == pytest.approx(0.01, 1e-4)
    missing = compare_boxes(ref, ref.take(np.array([0, 2])), tol, 0.1)
    assert not missing["boxes.matched"]["pass"] and "reference box 1" in missing["boxes.matched"]["error"]

    def turned(by: float) -> Boxes3D:
        return Boxes3D(ref.boxes + np.array([0, 0, 0, 0, 0, 0, by], np.float32), ref.velocity, ref.scores, ref.labels)

    # Yaw is compared modulo pi (same box, heading flipped); any other turn fails, the long way round too.
    assert compare_boxes(ref, turned(np.pi), tol, 0.1)["boxes.yaw"]["pass"]
    for by in (0.01, np.pi - 0.01, -0.01, 2 * np.pi - 0.01):
        res = compare_boxes(ref, turned(by), tol, 0.1)["boxes.yaw"]
        assert not res["pass"] and res["max_abs_error"] == pytest.approx(0.01, abs=1e-4), by
    # A box on the score threshold may fall either side: not a failure.
    border = boxes([(0, 0), (5, 5)], [0, 0], [0.9, 0.1005])
    assert compare_boxes(border, border.take(np.array([0])), tol, 0.1)["boxes.matched"]["pass"]


def test_ros_params_key_set_and_round_trip(params: deploy.DeployParams, tmp_path: Path) -> None:
    ros = params.ros_params("pts_voxel_encoder", "pts_backbone_neck_head")
    keys = {
        stem: {k: sorted(v) if isinstance(v, dict) else None for k, v in body.items()} for stem, body in ros.items()
    }
    assert keys == {s: {k: sorted(v) if v else None for k, v in b.items()} for s, b in ROS_KEYS.items()}
    m = ros["centerpoint_ml_package"]["model_params"]
    assert m["class_names"] == list(CLASSES) and m["voxel_size"] == [0.4, 0.4, 6.0]
    assert m["encoder_in_feature_size"] == 11 and m["downsample_factor"] == 2 and m["point_feature_size"] == 5
    assert ros["centerpoint"]["post_process_params"]["circle_nms_dist_threshold"] == 1.0
    for stem, body in ros.items():
        (tmp_path / f"{stem}.param.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": body}}))
    assert deploy.from_ros_files(params, tmp_path) == params
    m["encoder_in_feature_size"] = 9
    (tmp_path / "centerpoint_ml_package.param.yaml").write_text(
        yaml.safe_dump({"/**": {"ros__parameters": ros["centerpoint_ml_package"]}})
    )
    with pytest.raises(ModelzooError, match="encoder_in_feature_size: 9"):
        deploy.from_ros_files(params, tmp_path)


def test_config_the_export_cannot_run_is_refused(cfg) -> None:  # type: ignore[no-untyped-def]
    two = copy.deepcopy(cfg)
    two.model.pts_bbox_head.tasks = [dict(num_class=1, class_names=["car"])] * 2
    with pytest.raises(ModelzooError, match=r"pts_bbox_head.tasks: 2 tasks"):
        deploy.from_config(two)
    rotate = copy.deepcopy(cfg)
    rotate.model.test_cfg.pts.nms_type = "rotate"
    with pytest.raises(ModelzooError, match="nms_type"):
        deploy.from_config(rotate)


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
