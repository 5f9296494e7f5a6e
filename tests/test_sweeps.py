"""The task's numpy point loading (key frame + past sweeps) against mmdet3d's own LoadPointsFromFile /
LoadPointsFromMultiSweeps on the same v2 infos, and the test pipelines it refuses."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.errors import DescriptorError, ModelzooError
from pipelines.tasks.detection3d.sweeps import load_points, loading_from_config, parse_scan, reference_loader
from tests.helpers import bundled_subset_repo, modelzoo

CONFIG = "models/x/config.py"


def file_step(**kw: Any) -> dict[str, Any]:
    return dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=5, **{"use_dim": 5, **kw})


def sweeps_step(**kw: Any) -> dict[str, Any]:
    return dict(type="LoadPointsFromMultiSweeps", load_dim=5, **kw)


PACK = dict(type="Pack3DDetInputs", keys=["points"])


def rotation(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def write_info(root: Path, n_sweeps: int | None, seed: int = 0) -> dict[str, Any]:
    """A key frame and `n_sweeps` sweeps (None: no lidar_sweeps key) of random points, some within
    1 m of the sensor, with rotated and translated sensor poses and nuScenes-sized timestamps."""
    rng = np.random.default_rng(seed)

    def cloud(name: str) -> str:
        pts = rng.normal(0, 8, (400, 5)).astype(np.float32)
        pts[:60, :2] = rng.uniform(-1.2, 1.2, (60, 2))  # around the sensor: remove_close matters
        pts[:, 3] = rng.uniform(0, 255, 400)
        pts[:, 4] = rng.uniform(-1, 1, 400)  # garbage in the time column: it must be overwritten
        pts.tofile(root / name)
        return name

    info: dict[str, Any] = {"timestamp": 1533151603.547590, "lidar_points": {"lidar_path": cloud("key.bin")}}
    if n_sweeps is not None:
        info["lidar_sweeps"] = []
        for k in range(n_sweeps):
            sensor2lidar = np.eye(4)
            sensor2lidar[:3, :3] = rotation(0.03 * (k + 1))
            sensor2lidar[:3, 3] = [-0.6 * (k + 1), 0.1 * k, 0.01]
            lidar2sensor = np.linalg.inv(sensor2lidar).astype(np.float32)  # as mmdet3d's converter stores it
            info["lidar_sweeps"].append(
                {
                    "timestamp": info["timestamp"] - 0.05 * (k + 1),
                    "lidar_points": {"lidar_path": cloud(f"sweep{k}.bin"), "lidar2sensor": lidar2sensor},
                }
            )
    return info


CASES = {
    "test_mode_picks_newest": ([file_step(), sweeps_step(sweeps_num=2, remove_close=True, test_mode=True)], 3),
    "all_sweeps_xyzt": ([file_step(), sweeps_step(sweeps_num=9, use_dim=[0, 1, 2, 4])], 3),
    "norm_intensity": ([file_step(norm_intensity=True), sweeps_step(sweeps_num=3, use_dim=[0, 1, 2, 3, 4])], 2),
    "padded_no_sweeps": ([file_step(), sweeps_step(sweeps_num=2, pad_empty_sweeps=True, remove_close=True)], None),
    "not_padded_no_sweeps": ([file_step(), sweeps_step(sweeps_num=2)], None),
    "empty_sweep_list_not_padded": ([file_step(), sweeps_step(sweeps_num=2, pad_empty_sweeps=True)], 0),
    "single_sweep_config": ([file_step(use_dim=[0, 1, 2, 3])], 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loading_equals_mmdet3d_transforms(case: str, tmp_path: Path) -> None:
    from mmengine.config import Config

    steps, n_sweeps = CASES[case]
    cfg = Config(dict(test_pipeline=[*steps, PACK]))
    scan = parse_scan(write_info(tmp_path, n_sweeps), "info: data_list.0", tmp_path)
    ours = load_points(scan, loading_from_config(cfg, CONFIG))
    want = reference_loader(cfg)(scan)
    assert ours.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(ours, want)  # bit for bit, time lag and sweep transform included
    if n_sweeps and len(steps) > 1:
        assert len(np.unique(ours[:, -1])) > 1  # past sweeps, with their time lag, are in


def test_past_frames_change_what_is_loaded(tmp_path: Path) -> None:
    from mmengine.config import Config

    cfg = Config(dict(test_pipeline=[file_step(), sweeps_step(sweeps_num=2, test_mode=True), PACK]))
    loading = loading_from_config(cfg, CONFIG)
    scan = parse_scan(write_info(tmp_path, 3), "info: data_list.0", tmp_path)
    assert (loading.num_past_frames, loading.point_feature_size) == (2, 4)
    fewer = load_points(scan, loading.with_past_frames(1, "x"))
    assert len(fewer) == len(load_points(scan, loading)) - 400
    with pytest.raises(ModelzooError, match="num_past_frames 1: the config loads 0 past sweeps"):
        loading_from_config(Config(dict(test_pipeline=[file_step()])), CONFIG).with_past_frames(1, "x")


def test_random_sweep_choice_is_refused(tmp_path: Path) -> None:
    """More sweeps than sweeps_num and test_mode=False: mmdet3d draws sweeps at random at test time."""
    from mmengine.config import Config

    cfg = Config(dict(test_pipeline=[file_step(), sweeps_step(sweeps_num=2), PACK]))
    scan = parse_scan(write_info(tmp_path, 3), "info: data_list.0", tmp_path)
    with pytest.raises(ModelzooError, match=r"info: 3 sweeps|lidar_sweeps: 3 sweeps, .* set test_mode=True"):
        load_points(scan, loading_from_config(cfg, CONFIG), "info")


def test_bad_sweep_infos_give_one_line_errors(tmp_path: Path) -> None:
    info = write_info(tmp_path, 2)
    bad = copy.deepcopy(info)
    del bad["lidar_sweeps"][1]["lidar_points"]["lidar2sensor"]
    with pytest.raises(ModelzooError, match=r"i: data_list\.0\.lidar_sweeps\.1: needs .* \(missing 'lidar2sensor'\)"):
        parse_scan(bad, "i: data_list.0", tmp_path)
    bad = copy.deepcopy(info)
    bad["lidar_sweeps"][0]["lidar_points"]["lidar2sensor"] = [[1, 0], [0, 1]]
    with pytest.raises(ModelzooError, match=r"lidar_sweeps\.0\.lidar_points\.lidar2sensor: needs a 4 x 4"):
        parse_scan(bad, "i: data_list.0", tmp_path)
    bad = copy.deepcopy(info)
    del bad["timestamp"]
    with pytest.raises(ModelzooError, match=r"data_list\.0\.timestamp: missing"):
        parse_scan(bad, "i: data_list.0", tmp_path)


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (
            [file_step(), dict(type="PointsRangeFilter", point_cloud_range=[0] * 6), PACK],
            r"models/x/config\.py: test_pipeline\[1\] PointsRangeFilter: the deployed path .* cannot reproduce",
        ),
        (
            [file_step(), dict(type="MultiScaleFlipAug3D", transforms=[]), PACK],
            r"test_pipeline\[1\] MultiScaleFlipAug3D: .* cannot reproduce MultiScaleFlipAug3D",
        ),
        ([file_step(shift_height=True), PACK], r"LoadPointsFromFile\.shift_height: True adds point features"),
        ([file_step(use_dim=4), sweeps_step(), PACK], r"LoadPointsFromMultiSweeps\.load_dim: 5; .* equal the 4"),
        ([sweeps_step(), PACK], r"test_pipeline\[0\] LoadPointsFromMultiSweeps: must follow LoadPointsFromFile"),
        ([PACK], r"test_pipeline: needs a LoadPointsFromFile step"),
    ],
)
def test_loading_the_deployed_path_cannot_reproduce_is_refused(pipeline: list[dict[str, Any]], message: str) -> None:
    from mmengine.config import Config

    with pytest.raises(DescriptorError, match=message):
        loading_from_config(Config(dict(test_pipeline=pipeline)), CONFIG)


def test_validate_refuses_an_unknown_point_transform(tmp_path: Path) -> None:
    repo = bundled_subset_repo(tmp_path / "repo", ["centerpoint"])
    config = repo / "models" / "centerpoint" / "config.py"
    text = config.read_text()
    old = 'test_pipeline = [*load_points, dict(type="Pack3DDetInputs", keys=["points"])]'
    assert old in text
    config.write_text(text.replace(old, old.replace("*load_points, ", '*load_points, dict(type="PointShuffle"), ')))
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # the lines before: third-party import warnings
    assert "Traceback" not in proc.stderr
    assert line.startswith("error: models/centerpoint/config.py: test_pipeline[2] PointShuffle: "), line
    assert "cannot reproduce PointShuffle" in line
