"""Test-time point loading of an mmdet3d config, in numpy: `LoadPointsFromFile` (load_dim, use_dim,
norm_intensity, norm_elongation) and `LoadPointsFromMultiSweeps` (sweeps_num, the time-lag channel,
remove_close, pad_empty_sweeps, test_mode), on mmdet3d's v2 info layout (`lidar_points`, `timestamp`,
`lidar_sweeps[*].lidar_points.{lidar_path, lidar2sensor}`, `lidar_sweeps[*].timestamp` in seconds).

Semantics follow mmdet3d 1.4's transforms exactly, including two of their quirks: a sweep's points
are moved into the key frame as `xyz @ lidar2sensor[:3, :3] - lidar2sensor[:3, 3]` (what mmdet3d's
converters' `lidar2sensor` gives for a sweep taken without rotation between frames), and column 4
is overwritten by the time lag (key frame 0, sweep `timestamp - sweep timestamp`). Sweep paths are
relative to the same folder as `lidar_points.lidar_path` (AWML's T4dataset infos), not rewritten the
nuScenes way. `reference_loader` runs mmdet3d's own transforms on the same infos, for verify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import DescriptorError, ModelzooError

LOADERS = ("LoadPointsFromFile", "LoadPointsFromMultiSweeps")
# Steps after loading that do not change the points the model sees at test time.
PASSIVE = ("Pack3DDetInputs",)
REMOVE_CLOSE_RADIUS = 1.0  # mmdet3d's default radius, the one LoadPointsFromMultiSweeps uses


@dataclass(frozen=True)
class Sweep:
    path: Path
    timestamp: float
    lidar2sensor: np.ndarray  # (4, 4) as the info holds it (its dtype kept: mmdet3d computes in it)


@dataclass(frozen=True)
class Scan:
    """Where a frame's points come from: its key frame and, if the info lists them, its sweeps
    (None: the info has no `lidar_sweeps`, which is what `pad_empty_sweeps` acts on)."""

    path: Path
    timestamp: float
    sweeps: tuple[Sweep, ...] | None


@dataclass(frozen=True)
class SweepLoading:
    sweeps_num: int
    load_dim: int
    use_dim: tuple[int, ...]
    pad_empty_sweeps: bool
    remove_close: bool
    test_mode: bool


@dataclass(frozen=True)
class PointLoading:
    load_dim: int
    use_dim: tuple[int, ...]  # LoadPointsFromFile's
    norm_intensity: bool = False
    norm_elongation: bool = False
    sweeps: SweepLoading | None = None

    @property
    def point_feature_size(self) -> int:
        return len(self.sweeps.use_dim if self.sweeps else self.use_dim)

    @property
    def num_past_frames(self) -> int:
        return self.sweeps.sweeps_num if self.sweeps else 0

    def with_past_frames(self, n: int, where: str) -> PointLoading:
        """The same loading with `n` past sweeps (Autoware's densification num_past_frames)."""
        if n == self.num_past_frames:
            return self
        if self.sweeps is None or n < 0:
            raise ModelzooError(f"{where}: num_past_frames {n}: the config loads {self.num_past_frames} past sweeps")
        return replace(self, sweeps=replace(self.sweeps, sweeps_num=n))


def _dims(value: Any) -> tuple[int, ...]:
    return tuple(range(value)) if isinstance(value, int) else tuple(int(u) for u in value)


def loading_from_config(cfg: Any, where: str) -> PointLoading:
    """The test pipeline's point loading; a step the deployed path cannot reproduce is refused."""
    pipeline = list(cfg.get("test_pipeline") or [])
    steps: dict[str, dict[str, Any]] = {}
    for i, step in enumerate(pipeline):
        kind = step.get("type")
        at = f"{where}: test_pipeline[{i}] {kind}"
        if kind in LOADERS:
            if kind in steps:
                raise DescriptorError(f"{at}: appears twice; the deployed path loads points once")
            if kind == "LoadPointsFromMultiSweeps" and "LoadPointsFromFile" not in steps:
                raise DescriptorError(f"{at}: must follow LoadPointsFromFile, which loads the key frame")
            steps[kind] = dict(step)
        elif kind not in PASSIVE:
            raise DescriptorError(
                f"{at}: the deployed path (Autoware's lidar_centerpoint) loads points only as "
                f"{' + '.join(LOADERS)} do and cannot reproduce {kind}; remove it from test_pipeline "
                "(or retrain without it)"
            )
    if "LoadPointsFromFile" not in steps:
        raise DescriptorError(f"{where}: test_pipeline: needs a LoadPointsFromFile step (load_dim, use_dim)")
    f = steps["LoadPointsFromFile"]
    at = f"{where}: test_pipeline LoadPointsFromFile"
    for key in ("shift_height", "use_color"):
        if f.get(key):
            raise DescriptorError(f"{at}.{key}: True adds point features Autoware does not feed; set it False")
    if f.get("coord_type", "LIDAR") != "LIDAR":
        raise DescriptorError(f"{at}.coord_type: {f.get('coord_type')!r}, needs 'LIDAR'")
    loading = PointLoading(
        load_dim=int(f.get("load_dim", 6)),
        use_dim=_dims(f.get("use_dim", [0, 1, 2])),
        norm_intensity=bool(f.get("norm_intensity", False)),
        norm_elongation=bool(f.get("norm_elongation", False)),
    )
    if max(loading.use_dim) >= loading.load_dim:
        raise DescriptorError(f"{at}.use_dim: {list(loading.use_dim)}, needs indices < load_dim {loading.load_dim}")
    if (s := steps.get("LoadPointsFromMultiSweeps")) is None:
        return loading
    at = f"{where}: test_pipeline LoadPointsFromMultiSweeps"
    sweeps = SweepLoading(
        sweeps_num=int(s.get("sweeps_num", 10)),
        load_dim=int(s.get("load_dim", 5)),
        use_dim=_dims(s.get("use_dim", [0, 1, 2, 4])),
        pad_empty_sweeps=bool(s.get("pad_empty_sweeps", False)),
        remove_close=bool(s.get("remove_close", False)),
        test_mode=bool(s.get("test_mode", False)),
    )
    # mmdet3d writes the time lag into column 4 and stacks the sweeps' raw columns under the key frame's.
    if sweeps.load_dim < 5 or len(loading.use_dim) != sweeps.load_dim:
        raise DescriptorError(
            f"{at}.load_dim: {sweeps.load_dim}; it must be >= 5 (column 4 is the time lag) and equal the "
            f"{len(loading.use_dim)} columns LoadPointsFromFile.use_dim keeps"
        )
    if max(sweeps.use_dim) >= sweeps.load_dim:
        raise DescriptorError(f"{at}.use_dim: {list(sweeps.use_dim)}, needs indices < load_dim {sweeps.load_dim}")
    return replace(loading, sweeps=sweeps)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelzooError(f"{where}: {value!r} is not a number")
    return value  # type: ignore[return-value]  # kept as stored: mmdet3d subtracts it as it is


def parse_scan(info: dict[str, Any], where: str, points_dir: Path) -> Scan:
    """`where` names the info entry (`<info file>: data_list.<i>`)."""
    try:
        lidar_path = info["lidar_points"]["lidar_path"]
    except (KeyError, TypeError):
        raise ModelzooError(f"{where}.lidar_points.lidar_path: missing") from None
    raw_sweeps = info.get("lidar_sweeps")
    sweeps: list[Sweep] | None = None
    if raw_sweeps is not None:
        if not isinstance(raw_sweeps, list):
            raise ModelzooError(f"{where}.lidar_sweeps: expected a list")
        sweeps = []
        for k, sw in enumerate(raw_sweeps):
            at = f"{where}.lidar_sweeps.{k}"
            try:
                lp = sw["lidar_points"]
                matrix = np.array(lp["lidar2sensor"])
                sweeps.append(Sweep(points_dir / lp["lidar_path"], _number(sw["timestamp"], f"{at}.timestamp"), matrix))
            except (KeyError, TypeError) as err:
                needs = "lidar_points.lidar_path, lidar_points.lidar2sensor, timestamp"
                raise ModelzooError(f"{at}: needs {needs} (missing {err})") from None
            if matrix.shape != (4, 4) or matrix.dtype.kind not in "fiu":
                raise ModelzooError(f"{at}.lidar_points.lidar2sensor: needs a 4 x 4 matrix")
    if sweeps and "timestamp" not in info:
        raise ModelzooError(f"{where}.timestamp: missing (the sweeps' time lag is measured from it)")
    timestamp = _number(info.get("timestamp", 0.0), f"{where}.timestamp")
    return Scan(points_dir / lidar_path, timestamp, None if sweeps is None else tuple(sweeps))


def read_raw(path: Path, load_dim: int) -> np.ndarray:
    if not path.is_file():
        raise ModelzooError(f"{path}: point cloud not found")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % load_dim:
        raise ModelzooError(f"{path}: {raw.size} floats, not a multiple of load_dim {load_dim}")
    return raw.reshape(-1, load_dim)


def _not_close(points: np.ndarray) -> np.ndarray:
    close = (np.abs(points[:, 0]) < REMOVE_CLOSE_RADIUS) & (np.abs(points[:, 1]) < REMOVE_CLOSE_RADIUS)
    return points[~close]


def load_points(scan: Scan, loading: PointLoading, where: str = "") -> np.ndarray:
    """The points (N, point_feature_size) float32 that mmdet3d's transforms give for `scan`."""
    points = read_raw(scan.path, loading.load_dim)[:, list(loading.use_dim)]
    if loading.norm_intensity:
        points[:, 3] = np.tanh(points[:, 3])
    if loading.norm_elongation:
        points[:, 4] = np.tanh(points[:, 4])
    s = loading.sweeps
    if s is None:
        return np.ascontiguousarray(points, dtype=np.float32)
    points[:, 4] = 0
    stack = [points]
    if scan.sweeps is None:
        if s.pad_empty_sweeps:
            stack += [_not_close(points) if s.remove_close else points] * s.sweeps_num
    else:
        if len(scan.sweeps) > s.sweeps_num and not s.test_mode:
            raise ModelzooError(
                f"{where or scan.path}: lidar_sweeps: {len(scan.sweeps)} sweeps, more than sweeps_num "
                f"{s.sweeps_num}, and LoadPointsFromMultiSweeps.test_mode is False: mmdet3d then picks random "
                "sweeps at test time, which no deployment reproduces; set test_mode=True in the test pipeline"
            )
        for sweep in scan.sweeps[: s.sweeps_num]:
            pts = read_raw(sweep.path, s.load_dim).copy()
            if s.remove_close:
                pts = _not_close(pts)
            pts[:, :3] = pts[:, :3] @ sweep.lidar2sensor[:3, :3]
            pts[:, :3] -= sweep.lidar2sensor[:3, 3]
            pts[:, 4] = scan.timestamp - sweep.timestamp
            stack.append(pts)
    return np.ascontiguousarray(np.concatenate(stack)[:, list(s.use_dim)], dtype=np.float32)


def reference_loader(cfg: Any) -> Callable[[Scan], np.ndarray]:
    """mmdet3d's own loading transforms of the config's test pipeline, on a Scan (PyTorch side)."""
    from mmdet3d.registry import TRANSFORMS
    from mmdet3d.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    steps = [TRANSFORMS.build(dict(step)) for step in cfg.test_pipeline if step.get("type") in LOADERS]

    def load(scan: Scan) -> np.ndarray:
        results: dict[str, Any] = {"lidar_points": {"lidar_path": str(scan.path)}, "timestamp": scan.timestamp}
        if scan.sweeps is not None:
            results["lidar_sweeps"] = [
                {"lidar_points": {"lidar_path": str(s.path), "lidar2sensor": s.lidar2sensor}, "timestamp": s.timestamp}
                for s in scan.sweeps
            ]
        for step in steps:
            results = step(results)
        return np.ascontiguousarray(results["points"].tensor.numpy(), dtype=np.float32)

    return load
