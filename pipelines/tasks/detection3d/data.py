"""Frames from mmdet3d's v2 info files (`data_list` of `lidar_points` + `instances`), the layout of
mmdet3d's converters and of AWML's T4dataset infos. Nothing here assumes the data is synthetic."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import ModelzooError
from pipelines.tasks.base import require_class_names
from pipelines.tasks.detection3d.sweeps import PointLoading, Scan, load_points, parse_scan


@dataclass(frozen=True)
class Frame:
    index: int
    token: str
    points: np.ndarray  # (N, point_feature_size) float32, as the config's test pipeline loads them
    gt_boxes: np.ndarray  # (M, 7) float32: x, y, z (gravity centre), length, width, height, yaw
    gt_labels: np.ndarray  # (M,) int64, indices into the model's class names
    gt_velocity: np.ndarray  # (M, 2) float32
    gt_num_points: np.ndarray  # (M,) int64, -1 where the info does not say
    scan: Scan | None = None  # the files `points` were loaded from (key frame, sweeps)


def load_infos(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelzooError(f"{path}: info file not found")
    try:
        with path.open("rb") as f:
            # Info files are pickles by mmdet3d's convention; they are data of the dataset being evaluated.
            infos = pickle.load(f)
    except Exception as err:
        raise ModelzooError(f"{path}: not a readable info pickle: {str(err).splitlines()[0]}") from None
    if not isinstance(infos, dict) or not isinstance(infos.get("data_list"), list):
        raise ModelzooError(f"{path}: data_list: missing (expected mmdet3d's v2 info layout)")
    return infos


def label_names(infos: dict[str, Any], path: Path, class_names: tuple[str, ...]) -> dict[int, str]:
    """Info label id -> class name: from metainfo.categories (AWML, mmdet3d), else the model's order."""
    cats = (infos.get("metainfo") or {}).get("categories")
    if cats is None:
        return dict(enumerate(class_names))
    if not isinstance(cats, dict):
        raise ModelzooError(f"{path}: metainfo.categories: expected a mapping name -> label id")
    require_class_names(f"{path}: metainfo.categories", cats, class_names, "the config's head task class_names")
    return {int(i): str(n) for n, i in cats.items()}


def parse_frame(
    index: int,
    info: dict[str, Any],
    where: str,
    points_dir: Path,
    names: dict[int, str],
    class_names: tuple[str, ...],
    loading: PointLoading,
) -> Frame:
    if not isinstance(info, dict):
        raise ModelzooError(f"{where}: data_list.{index}: expected a mapping")
    scan = parse_scan(info, f"{where}: data_list.{index}", points_dir)
    boxes, labels, vel, npts = [], [], [], []
    for j, inst in enumerate(info.get("instances") or []):
        try:
            label = int(inst["bbox_label_3d"])
            box = [float(x) for x in inst["bbox_3d"][:7]]
        except (KeyError, TypeError, ValueError):
            raise ModelzooError(f"{where}: data_list.{index}.instances.{j}: needs bbox_3d and bbox_label_3d") from None
        if len(box) != 7:
            raise ModelzooError(f"{where}: data_list.{index}.instances.{j}.bbox_3d: needs 7 values, has {len(box)}")
        name = names.get(label)
        if label < 0 or name not in class_names or not inst.get("bbox_3d_isvalid", True):
            continue  # ignored, or a class this model does not detect
        boxes.append(box)
        labels.append(class_names.index(name))
        vel.append([float(x) for x in (inst.get("velocity") or [0.0, 0.0])[:2]])
        npts.append(int(inst.get("num_lidar_pts", -1)))
    return Frame(
        index=index,
        token=str(info.get("token", info.get("sample_idx", index))),
        points=load_points(scan, loading, f"{where}: data_list.{index}"),
        gt_boxes=np.asarray(boxes, np.float32).reshape(-1, 7),
        gt_labels=np.asarray(labels, np.int64),
        gt_velocity=np.asarray(vel, np.float32).reshape(-1, 2),
        gt_num_points=np.asarray(npts, np.int64),
        scan=scan,
    )


def load_frames(
    info_path: Path,
    points_dir: Path,
    class_names: tuple[str, ...],
    loading: PointLoading,
    limit: int = -1,
) -> list[Frame]:
    infos = load_infos(info_path)
    names = label_names(infos, info_path, class_names)
    items = infos["data_list"] if limit < 0 else infos["data_list"][:limit]
    return [
        parse_frame(i, info, str(info_path), points_dir, names, class_names, loading) for i, info in enumerate(items)
    ]
