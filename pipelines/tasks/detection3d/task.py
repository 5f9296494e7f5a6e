"""The detection3d task: CenterPoint's pre/post-processing, metrics and ROS parameter files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipelines.comparison import OutputComparison
from pipelines.descriptor import Endpoint, Tolerance
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.latency import Timer
from pipelines.tasks.base import Task
from pipelines.tasks.detection3d import params as deploy
from pipelines.tasks.detection3d import sweeps
from pipelines.tasks.detection3d.data import Frame, load_frames
from pipelines.tasks.detection3d.decode import Boxes3D, decode
from pipelines.tasks.detection3d.match import BOX_CHECKS, compare_boxes
from pipelines.tasks.detection3d.metrics import detection_metrics
from pipelines.tasks.detection3d.scatter import scatter
from pipelines.tasks.detection3d.voxelize import decorate, voxelize
from pipelines.tasks.model import Model

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


class Detection3DTask(Task):
    Options = Detection3DOptions
    prediction_checks = BOX_CHECKS
    options: Detection3DOptions

    def __init__(self, ctx: Any):
        super().__init__(ctx)
        from pipelines.sources.openmmlab import load_config

        where = f"{ctx.descriptor_file}: components"
        if len(ctx.descriptor.components) != 2:
            raise ModelzooError(f"{where}: detection3d needs two (voxel encoder, backbone/neck/head)")
        self.encoder, self.head = ctx.descriptor.components
        outputs = [o.name for o in self.head.outputs]
        if outputs != list(HEAD_OUTPUTS[: len(outputs)]) or len(outputs) < 5:
            raise ModelzooError(f"{where}.{self.head.name}.outputs: {outputs}, needs {list(HEAD_OUTPUTS)}")
        self.cfg = load_config(ctx)
        self.config_file = f"models/{ctx.name}/{ctx.descriptor.source.config}"
        o = self.options
        self.params = deploy.with_autoware_settings(
            deploy.from_config(self.cfg, self.config_file),
            f"{ctx.descriptor_file}: task_options",
            o.autoware_labels,
            o.yaw_norm_thresholds,
            o.distance_bin_upper_limits,
            o.min_confidence_scores,
        )
        self.check_shapes(self.params, self.config_file)
        self.loading = sweeps.loading_from_config(self.cfg, self.config_file)
        if self.loading.point_feature_size != self.params.point_feature_size:
            raise DescriptorError(
                f"{self.config_file}: test_pipeline: the loaded points have {self.loading.point_feature_size} "
                f"features (use_dim), model.pts_voxel_encoder.in_channels is {self.params.point_feature_size}"
            )
        self._deployed: tuple[deploy.DeployParams, sweeps.PointLoading] | None = None
        self._reference_loader: Callable[[sweeps.Scan], np.ndarray] | None = None

    def params_for(self, endpoint: Endpoint) -> deploy.DeployParams:
        """PyTorch runs what the config says; a deployed backend what the exported ROS files say."""
        return self.params if endpoint.backend == "pytorch" else self.deployed()[0]

    def deployed(self) -> tuple[deploy.DeployParams, sweeps.PointLoading]:
        """The parameters and point loading that the exported ROS files give, as Autoware reads them:
        `densification_params.num_past_frames` sweeps, `model_params.point_feature_size` features."""
        if self._deployed is None:
            ml_package = deploy.ml_package_file(self.ctx.onnx_dir, self.ctx.name)
            p = deploy.from_ros_files(self.params, self.ctx.onnx_dir, self.ctx.name)
            self.check_shapes(p, str(ml_package))
            common = self.ctx.onnx_dir / f"{deploy.COMMON}.param.yaml"
            try:
                past = int(deploy.read_ros_file(common)["densification_params"]["num_past_frames"])
            except (KeyError, TypeError, ValueError) as err:
                raise ModelzooError(f"{common}: densification_params.num_past_frames: missing or bad ({err})") from None
            loading = self.loading.with_past_frames(past, f"{common}: densification_params")
            if loading.point_feature_size != p.point_feature_size:
                raise ModelzooError(
                    f"{ml_package}: model_params.point_feature_size: "
                    f"{p.point_feature_size}, the config's use_dim loads {loading.point_feature_size}"
                )
            self._deployed = (p, loading)
        return self._deployed

    def points_for(self, endpoint: Endpoint, sample: Frame) -> np.ndarray:
        """PyTorch: mmdet3d's own loading transforms of the test pipeline; a deployed backend: this
        task's numpy loading with the exported densification settings."""
        if sample.scan is None:
            return sample.points
        if endpoint.backend == "pytorch":
            if self._reference_loader is None:
                self._reference_loader = sweeps.reference_loader(self.cfg)
            return self._reference_loader(sample.scan)
        return sweeps.load_points(sample.scan, self.deployed()[1], str(sample.scan.path))

    def check_shapes(self, p: deploy.DeployParams, where: str) -> None:
        """The voxel grid and point features the parameters make must be what the ONNX files take."""
        _, points, features = self.encoder.inputs[0].shape
        *_, ny, nx = self.head.inputs[0].shape
        made = (p.max_points_per_voxel, p.encoder_in_feature_size, p.grid_size[1], p.grid_size[0])
        if made != (points, features, ny, nx):
            raise ModelzooError(
                f"{where}: makes {made[0]} points x {made[1]} features per pillar on a {made[3]} x {made[2]} grid, "
                f"the model takes {points} x {features} on {nx} x {ny} ({self.ctx.descriptor_file})"
            )

    def load_samples(self, dataset: Path, split: str, limit: int) -> list[Frame]:
        return load_frames(
            dataset / self.options.info_file.format(split=split),
            dataset / self.options.points_prefix,
            self.params.class_names,
            self.loading,
            limit,
        )

    def infer(self, model: Model, sample: Frame, timer: Timer) -> Boxes3D:
        p = self.params_for(model.endpoint)
        points = self.points_for(model.endpoint, sample)  # reading files: not part of the latency
        with timer.part("preprocess"):
            voxels = voxelize(points, p)
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
        return deploy.bundle(
            self.params,
            self.ctx.name,
            self.encoder.name,
            self.head.name,
            build.precisions,
            num_past_frames=self.loading.num_past_frames,
        )

    def compare_predictions(
        self, ref: Boxes3D, test: Boxes3D, tolerance: Callable[[str], Tolerance]
    ) -> dict[str, OutputComparison]:
        return compare_boxes(ref, test, tolerance, self.params.score_threshold)
