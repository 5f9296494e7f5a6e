"""The detection3d task: CenterPoint's pre/post-processing, metrics and ROS parameter files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.descriptor import Endpoint, Tolerance
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.latency import Timer
from pipelines.tasks.base import Model, Task
from pipelines.tasks.detection3d import params as deploy
from pipelines.tasks.detection3d.data import Frame, load_frames
from pipelines.tasks.detection3d.decode import Boxes3D, decode
from pipelines.tasks.detection3d.match import BOX_CHECKS, compare_boxes
from pipelines.tasks.detection3d.metrics import detection_metrics
from pipelines.tasks.detection3d.scatter import scatter
from pipelines.tasks.detection3d.voxelize import decorate, voxelize

HEAD_OUTPUTS = ("heatmap", "reg", "height", "dim", "rot", "vel")


class Detection3DOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Info file of a split, relative to the dataset folder; "{split}" is replaced by the split name.
    info_file: str = "info_{split}.pkl"
    # Folder, relative to the dataset folder, that `lidar_points.lidar_path` is relative to.
    points_prefix: str = ""
    distance_thresholds: list[float] = Field([0.5, 1.0, 2.0, 4.0], min_length=1)
    # The Autoware bundle's per-class settings (params.py has the defaults): training class name ->
    # Autoware label (CAR, TRUCK, BUS, TRAILER, MOTORBIKE, BICYCLE, PEDESTRIAN, UNKNOWN), where the
    # name does not say it; yaw norm threshold per class; score thresholds per class and distance bin.
    autoware_labels: dict[str, str] = {}
    yaw_norm_thresholds: dict[str, float] = {}
    distance_bin_upper_limits: list[float] | None = None
    min_confidence_scores: dict[str, list[float]] = {}


def load_points_settings(cfg: Any, where: str) -> tuple[int, list[int]]:
    """load_dim / use_dim of the config's LoadPointsFromFile (test pipeline), as mmdet3d reads points."""
    for step in cfg.get("test_pipeline") or []:
        if step.get("type") == "LoadPointsFromFile":
            use = step.get("use_dim", step["load_dim"])
            return int(step["load_dim"]), list(range(use)) if isinstance(use, int) else [int(u) for u in use]
    raise DescriptorError(f"{where}: test_pipeline: needs a LoadPointsFromFile step (load_dim, use_dim)")


class Detection3DTask(Task):
    Options = Detection3DOptions
    prediction_checks = BOX_CHECKS
    options: Detection3DOptions

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        from pipelines.sources.openmmlab import load_config

        where = f"models/{ctx.name}/model.yaml: components"
        if len(ctx.descriptor.components) != 2:
            raise ModelzooError(f"{where}: detection3d needs two (voxel encoder, backbone/neck/head)")
        self.encoder, self.head = ctx.descriptor.components
        outputs = [o.name for o in self.head.outputs]
        if outputs != list(HEAD_OUTPUTS[: len(outputs)]) or len(outputs) < 5:
            raise ModelzooError(f"{where}.{self.head.name}.outputs: {outputs}, needs {list(HEAD_OUTPUTS)}")
        cfg = load_config(ctx)
        config = f"models/{ctx.name}/{ctx.descriptor.source.config}"
        o = self.options
        self.params = deploy.with_autoware_settings(
            deploy.from_config(cfg, config),
            f"models/{ctx.name}/model.yaml: task_options",
            o.autoware_labels,
            o.yaw_norm_thresholds,
            o.distance_bin_upper_limits,
            o.min_confidence_scores,
        )
        self.check_shapes(self.params, config)
        self.load_dim, self.use_dim = load_points_settings(cfg, config)
        if len(self.use_dim) != self.params.point_feature_size:
            raise DescriptorError(
                f"{config}: test_pipeline LoadPointsFromFile.use_dim has {len(self.use_dim)} features, "
                f"the encoder reads {self.params.point_feature_size}"
            )
        self._deployed: deploy.DeployParams | None = None

    def params_for(self, endpoint: Endpoint) -> deploy.DeployParams:
        """PyTorch runs what the config says; a deployed backend what the exported ROS files say."""
        if endpoint.backend == "pytorch":
            return self.params
        if self._deployed is None:
            p = deploy.from_ros_files(self.params, self.ctx.onnx_dir, self.ctx.name)
            self.check_shapes(p, str(deploy.ml_package_file(self.ctx.onnx_dir, self.ctx.name)))
            self._deployed = p
        return self._deployed

    def check_shapes(self, p: deploy.DeployParams, where: str) -> None:
        """The voxel grid and point features the parameters make must be what the ONNX files take."""
        _, points, features = self.encoder.inputs[0].shape
        *_, ny, nx = self.head.inputs[0].shape
        made = (p.max_points_per_voxel, p.encoder_in_feature_size, p.grid_size[1], p.grid_size[0])
        if made != (points, features, ny, nx):
            raise ModelzooError(
                f"{where}: makes {made[0]} points x {made[1]} features per pillar on a {made[3]} x {made[2]} grid, "
                f"the model takes {points} x {features} on {nx} x {ny} (models/{self.ctx.name}/model.yaml)"
            )

    def load_samples(self, dataset: Path, split: str, limit: int) -> list[Frame]:
        return load_frames(
            dataset / self.options.info_file.format(split=split),
            dataset / self.options.points_prefix,
            self.params.class_names,
            self.load_dim,
            self.use_dim,
            limit,
        )

    def infer(self, model: Model, sample: Frame, timer: Timer) -> Boxes3D:
        p = self.params_for(model.endpoint)
        with timer.part("preprocess"):
            voxels = voxelize(sample.points, p)
            features = decorate(voxels, p)
        enc = model(self.encoder.name, {self.encoder.inputs[0].name: features})[self.encoder.outputs[0].name]
        with timer.part("scatter"):
            spatial = scatter(enc, voxels.coors, p.grid_size[:2])
        heads = model(self.head.name, {self.head.inputs[0].name: spatial})
        with timer.part("postprocess"):
            return decode(heads, p)

    def metrics(self, predictions: Sequence[Boxes3D], samples: Sequence[Frame]) -> dict[str, Any]:
        r = self.params.point_cloud_range
        return detection_metrics(
            predictions, samples, self.params.class_names, self.options.distance_thresholds, (r[0], r[1], r[3], r[4])
        )

    def ros_params(self) -> dict[str, dict[str, Any]]:
        build = self.ctx.descriptor.build
        return deploy.bundle(self.params, self.ctx.name, self.encoder.name, self.head.name, build.precisions)

    def compare_predictions(
        self, ref: Boxes3D, test: Boxes3D, tolerance: Callable[[str], Tolerance]
    ) -> dict[str, dict[str, Any]]:
        return compare_boxes(ref, test, tolerance, self.params.score_threshold)
