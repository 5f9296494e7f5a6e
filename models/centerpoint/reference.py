"""Reference data and checkpoint for CenterPoint (deterministic).

Data: synthetic LiDAR frames with past sweeps in mmdet3d's v2 info layout (what mmdet3d's converters
and AWML's T4dataset infos hold): `points/<split>_<i>.bin` and `points/<split>_<i>_sweep<k>.bin`
(float32 x y z intensity time) and `info_<split>.pkl` with `data_list[*].lidar_points.lidar_path`,
`timestamp`, `lidar_sweeps[*]` (`timestamp`, `lidar_points.lidar_path`, `lidar_points.lidar2sensor`,
newest first) and `instances[*].bbox_3d` (x y z of the gravity centre, length width height, yaw) /
`bbox_label_3d` / `velocity`. The ego car and the objects move between sweeps (`make_frame`).
A scene is a ground plane plus cars, pedestrians and bicycles: boxes of their typical sizes at random
yaw, sampled as points on the faces that see the sensor, with a density that falls with range as a
spinning LiDAR's does.

Training: a plain loop over mmdet3d's own `CenterPoint.loss()` (voxelization by its data preprocessor),
with flip / rotation / scale augmentation, AdamW and a one-cycle schedule.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CLASSES = {  # name: (length, width, height) ranges in metres, intensity range
    "car": (((3.8, 4.9), (1.7, 2.0), (1.4, 1.8)), (60.0, 140.0)),
    "pedestrian": (((0.5, 0.8), (0.5, 0.8), (1.6, 1.9)), (20.0, 60.0)),
    "bicycle": (((1.6, 1.9), (0.5, 0.7), (1.0, 1.3)), (120.0, 220.0)),
}
COUNTS = {"car": (3, 8), "pedestrian": (2, 7), "bicycle": (1, 4)}
MAX_SPEED = {"car": 12.0, "pedestrian": 1.5, "bicycle": 6.0}  # m/s
GROUND_Z = -1.8  # the sensor is 1.8 m above the ground
HALF_EXTENT = 23.0  # objects are placed in this square (the model sees 25.6 m)


def _place(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Non-overlapping boxes (x, y, z, l, w, h, yaw) of each class."""
    placed: list[tuple[str, np.ndarray]] = []
    for name, (lo, hi) in COUNTS.items():
        dims, _ = CLASSES[name]
        for _ in range(int(rng.integers(lo, hi + 1))):
            for _try in range(50):
                lwh = np.array([rng.uniform(*d) for d in dims])
                xy = rng.uniform(-HALF_EXTENT, HALF_EXTENT, 2)
                radius = np.hypot(lwh[0], lwh[1]) / 2
                if np.hypot(*xy) < 3.0 + radius:
                    continue
                if all(np.hypot(*(xy - b[:2])) > radius + np.hypot(b[3], b[4]) / 2 + 0.5 for _, b in placed):
                    yaw = rng.uniform(-np.pi, np.pi)
                    placed.append((name, np.array([*xy, GROUND_Z + lwh[2] / 2, *lwh, yaw])))
                    break
    return placed


def _box_surface(rng: np.random.Generator, box: np.ndarray, n: int) -> np.ndarray:
    """n points on the faces of a box that face the sensor at the origin (box frame -> LiDAR frame)."""
    x, y, z, length, width, height, yaw = box
    half = np.array([length, width, height]) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    to_sensor = rot.T @ -np.array([x, y, z])
    faces = []  # (axis, sign, area)
    for axis in range(3):
        for sign in (-1, 1):
            if sign * to_sensor[axis] > half[axis]:
                other = [a for a in range(3) if a != axis]
                faces.append((axis, sign, 4 * half[other[0]] * half[other[1]]))
    areas = np.array([f[2] for f in faces])
    which = rng.choice(len(faces), size=n, p=areas / areas.sum())
    local = rng.uniform(-1, 1, (n, 3)) * half
    for k, (axis, sign, _) in enumerate(faces):
        local[which == k, axis] = sign * half[axis]
    local += rng.normal(0, 0.02, local.shape)
    return local @ rot.T + np.array([x, y, z])


def _scan(
    rng: np.random.Generator, boxes: list[tuple[str, np.ndarray]], ground_points: int
) -> tuple[np.ndarray, list[int]]:
    """One LiDAR sweep (x y z intensity 0) of `boxes` given in the sensor's own frame; points per box."""
    r = rng.uniform(2.0, 34.0, ground_points)  # uniform in range: density ~ 1 / range
    a = rng.uniform(-np.pi, np.pi, ground_points)
    ground = np.column_stack(
        [r * np.cos(a), r * np.sin(a), GROUND_Z + rng.normal(0, 0.03, ground_points), rng.uniform(2, 30, ground_points)]
    )
    clouds, counts = [ground], []
    for name, box in boxes:
        dist = float(np.hypot(box[0], box[1]))
        area = box[3] * box[5] + box[4] * box[5] + box[3] * box[4]
        n = int(np.clip(area * 2500 / dist**2, 6, 800))  # spacing of a scan grows with range
        pts = _box_surface(rng, box, n)
        clouds.append(np.column_stack([pts, rng.uniform(*CLASSES[name][1], n)]))
        counts.append(n)
    cloud = np.concatenate(clouds)
    cloud = cloud[rng.permutation(len(cloud))]  # a LiDAR's points are not sorted by object
    return np.column_stack([cloud, np.zeros(len(cloud))]).astype(np.float32), counts


def make_frame(
    rng: np.random.Generator, ground_points: int, sweeps: int = 0, interval: float = 0.05
) -> tuple[np.ndarray, list[dict[str, Any]], list[tuple[np.ndarray, float, np.ndarray]]]:
    """A key frame, its instances, and `sweeps` earlier sweeps (newest first), each (points in that
    sweep's sensor frame, seconds before the key frame, sensor origin in the key frame). The ego car
    drives straight along x and objects move along their heading (pedestrians anywhere), so a past
    sweep shows moving objects behind where they are now: only the time-lag channel tells them apart."""
    placed = _place(rng)
    ego_speed = rng.uniform(0.0, 12.0)
    velocities = []
    for name, box in placed:
        speed = rng.uniform(0.0, MAX_SPEED[name]) if rng.random() > 0.3 else 0.0  # some stand still
        heading = box[6] if name != "pedestrian" else rng.uniform(-np.pi, np.pi)
        velocities.append(speed * np.array([np.cos(heading), np.sin(heading)]))
    points, counts = _scan(rng, placed, ground_points)
    instances = [
        {
            "bbox_3d": [float(v) for v in box],
            "bbox_label_3d": list(CLASSES).index(name),
            "bbox_3d_isvalid": True,
            "velocity": [float(v) for v in vel],
            "num_lidar_pts": n,
        }
        for (name, box), vel, n in zip(placed, velocities, counts, strict=True)
    ]
    past = []
    for k in range(1, sweeps + 1):
        dt = k * interval
        origin = np.array([-ego_speed * dt, 0.0, 0.0])
        moved = []
        for (name, box), vel in zip(placed, velocities, strict=True):
            b = box.copy()
            b[:2] -= vel * dt + origin[:2]
            moved.append((name, b))
        past.append((_scan(rng, moved, ground_points)[0], dt, origin))
    return points, instances, past


def make_data(out: Path, seed: int, options: dict[str, Any]) -> None:
    (out / "points").mkdir()
    sweeps, interval = int(options.get("sweeps", 0)), float(options.get("sweep_interval", 0.05))
    for offset, split in enumerate(("train", "val")):
        rng = np.random.default_rng([seed, offset])
        data_list = []
        for i in range(int(options.get(split, 100))):
            points, instances, past = make_frame(rng, int(options.get("ground_points", 5000)), sweeps, interval)
            name = f"{split}_{i:04d}.bin"
            points.tofile(out / "points" / name)
            timestamp = round(i * 10.0, 3)  # frames are separate scenes, 10 s apart
            lidar_sweeps = []
            for k, (sweep_points, dt, origin) in enumerate(past, start=1):
                sweep_name = f"{split}_{i:04d}_sweep{k}.bin"
                sweep_points.tofile(out / "points" / sweep_name)
                # mmdet3d's converters store the inverse of sensor2lidar; no rotation between sweeps here.
                lidar2sensor = np.eye(4)
                lidar2sensor[:3, 3] = -origin
                lidar_sweeps.append(
                    {
                        "timestamp": round(timestamp - dt, 6),
                        "lidar_points": {"lidar_path": sweep_name, "lidar2sensor": lidar2sensor.tolist()},
                    }
                )
            data_list.append(
                {
                    "sample_idx": i,
                    "token": f"synthetic-{split}-{i:04d}",
                    "timestamp": timestamp,
                    "lidar_points": {"num_pts_feats": 5, "lidar_path": name, "lidar2ego": np.eye(4).tolist()},
                    "lidar_sweeps": lidar_sweeps,
                    "instances": instances,
                }
            )
        infos = {
            "metainfo": {
                "categories": {n: i for i, n in enumerate(CLASSES)},
                "dataset": "modelzoo-synthetic-lidar",
                "info_version": "1.1",
            },
            "data_list": data_list,
        }
        with (out / f"info_{split}.pkl").open("wb") as f:
            pickle.dump(infos, f, protocol=4)
        log.info("%s: %d frames", split, len(data_list))


def _augment(
    rng: np.random.Generator, points: np.ndarray, boxes: np.ndarray, velocity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global flips, rotation and scaling of one frame (points, gravity-centre boxes, their velocity),
    as mmdet3d's RandomFlip3D and GlobalRotScaleTrans do."""
    points, boxes, velocity = points.copy(), boxes.copy(), velocity.copy()
    if rng.random() < 0.5:
        points[:, 1] *= -1
        boxes[:, 1] *= -1
        boxes[:, 6] *= -1
        velocity[:, 1] *= -1
    if rng.random() < 0.5:
        points[:, 0] *= -1
        boxes[:, 0] *= -1
        boxes[:, 6] = np.pi - boxes[:, 6]
        velocity[:, 0] *= -1
    angle, scale = rng.uniform(-np.pi / 4, np.pi / 4), rng.uniform(0.95, 1.05)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float32)
    points[:, :2] = points[:, :2] @ rot.T
    boxes[:, :2] = boxes[:, :2] @ rot.T
    velocity = velocity @ rot.T * np.float32(scale)
    boxes[:, 6] += angle
    points[:, :3] *= scale
    boxes[:, :6] *= scale
    boxes[:, 6] = (boxes[:, 6] + np.pi) % (2 * np.pi) - np.pi
    return points, boxes, velocity


def _flat_batch_norm(detector: Any) -> None:
    """Training speed only: PyTorch's CPU batch norm is ~3x slower on the PFN layers' (pillars, channels,
    points) layout than on the same numbers flattened to (pillars * points, channels). Same statistics,
    same parameters and state-dict keys; the saved checkpoint is plain mmdet3d."""
    import torch

    class FlatBatchNorm1d(torch.nn.BatchNorm1d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dim() != 3:
                return super().forward(x)
            n, c, length = x.shape
            flat = super().forward(x.transpose(1, 2).reshape(n * length, c))
            return flat.reshape(n, length, c).transpose(1, 2)

    for pfn in detector.pts_voxel_encoder.pfn_layers:
        if type(pfn.norm) is torch.nn.BatchNorm1d:
            pfn.norm.__class__ = FlatBatchNorm1d


def train(ctx: Any, checkpoint: Path) -> dict[str, Any]:
    """Deterministic plain loop over mmdet3d's `loss()` on the train split; returns the training log."""
    import torch
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
    from mmengine.structures import InstanceData

    from pipelines.sources.openmmlab import build_detector
    from pipelines.tasks import get_task

    ref = ctx.descriptor.reference
    seed, options = ref.seed, ref.options
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    detector, _ = build_detector(ctx, checkpoint=False)
    _flat_batch_norm(detector)
    frames = get_task(ctx).load_samples(ctx.dataset, "train", -1)
    epochs, batch, lr = int(options.get("epochs", 6)), int(options.get("batch", 4)), float(options.get("lr", 4e-3))
    steps = epochs * ((len(frames) + batch - 1) // batch)
    opt = torch.optim.AdamW(detector.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.3)
    rng = np.random.default_rng(seed)
    lines, start = [], time.perf_counter()
    detector.train()
    for epoch in range(epochs):
        order = rng.permutation(len(frames))
        sums: dict[str, float] = {}
        for i in range(0, len(frames), batch):
            points, samples = [], []
            for k in order[i : i + batch]:
                f = frames[k]
                pts, boxes, velocity = _augment(rng, f.points, f.gt_boxes, f.gt_velocity)
                boxes[:, 2] -= boxes[:, 5] / 2  # mmdet3d's LiDAR boxes sit on their bottom centre
                gt = InstanceData()
                gt.bboxes_3d = LiDARInstance3DBoxes(
                    torch.from_numpy(np.concatenate([boxes, velocity], axis=1).astype(np.float32)), box_dim=9
                )
                gt.labels_3d = torch.from_numpy(f.gt_labels)
                sample = Det3DDataSample(metainfo={"box_type_3d": LiDARInstance3DBoxes})
                sample.gt_instances_3d = gt
                points.append(torch.from_numpy(pts))
                samples.append(sample)
            data = detector.data_preprocessor({"inputs": {"points": points}, "data_samples": samples}, training=True)
            loss, parts = detector.parse_losses(detector.loss(data["inputs"], data["data_samples"]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(detector.parameters(), 35.0)
            opt.step()
            sched.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(points)
        line = f"epoch {epoch + 1}/{epochs} " + " ".join(f"{k} {v / len(frames):.4f}" for k, v in sums.items())
        line += f" ({time.perf_counter() - start:.0f}s)"
        log.info(line)
        lines.append(line)
    detector.eval()
    for pfn in detector.pts_voxel_encoder.pfn_layers:
        pfn.norm.__class__ = torch.nn.BatchNorm1d
    torch.save({"state_dict": detector.state_dict(), "meta": {"config": ctx.descriptor.source.config}}, checkpoint)
    return {"seconds": round(time.perf_counter() - start, 1), "steps": steps, "log": lines}
