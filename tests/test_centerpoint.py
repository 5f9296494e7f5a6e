"""CenterPoint end to end: `dvc repro` of its stages in a temporary repository (shrunk training), the
exported files, the split pipeline against mmdet3d's own `predict`, verify against a perturbed
voxel size; a provider folder of model.yaml + config + checkpoint exporting, and configs the built-in
split cannot run refused at validate."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.descriptor import Endpoint, Tolerance, load_descriptor
from pipelines.tasks import Model, get_task
from pipelines.tasks.detection3d.decode import Boxes3D
from pipelines.tasks.detection3d.match import compare_boxes
from pipelines.workspace import ModelContext
from tests.helpers import BIN, REPO, bundled_subset_repo, copy_skeleton, init_repo, modelzoo, read_yaml, run, write_yaml

MODEL = "centerpoint"
ENCODER, HEAD = "pts_voxel_encoder", "pts_backbone_neck_head"


def test_descriptor_and_config_load() -> None:
    ctx = ModelContext(REPO, load_descriptor(REPO, MODEL))
    task = get_task(ctx)
    assert [c.name for c in ctx.descriptor.components] == [ENCODER, HEAD]
    assert task.params.grid_size == (128, 128, 1)
    assert task.params.encoder_in_feature_size == ctx.descriptor.components[0].inputs[0].shape[2]
    assert task.params.max_points_per_voxel == ctx.descriptor.components[0].inputs[0].shape[1]
    assert task.loading.point_feature_size == task.params.point_feature_size == 5  # x y z intensity time-lag
    ros = task.ros_params()
    # Autoware's lidar_centerpoint: densification_params in its node parameters (centerpoint_common).
    assert ros["centerpoint_common"]["densification_params"] == {"world_frame_id": "map", "num_past_frames": 1}
    assert ros["centerpoint_ml_package"]["model_params"]["point_feature_size"] == 5


# mmdet3d's nuScenes CenterPoint head: six tasks (centerpoint_pillar02_second_secfpn_nus.py).
NUSCENES_TASKS = """[
    dict(num_class=1, class_names=['car']),
    dict(num_class=2, class_names=['truck', 'construction_vehicle']),
    dict(num_class=2, class_names=['bus', 'trailer']),
    dict(num_class=1, class_names=['barrier']),
    dict(num_class=2, class_names=['motorcycle', 'bicycle']),
    dict(num_class=2, class_names=['pedestrian', 'traffic_cone']),
]"""


def _validate_derived_config(tmp_path: Path, change: str) -> subprocess.CompletedProcess[str]:
    """`modelzoo validate` of the bundled CenterPoint with a config deriving from its own."""
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    (root / "models" / MODEL / "derived.py").write_text(f'_base_ = ["./config.py"]\n{change}\n')
    desc = read_yaml(root / "models" / MODEL / "model.yaml")
    desc["source"]["config"] = "derived.py"
    write_yaml(root / "models" / MODEL / "model.yaml", desc)
    proc = modelzoo(["validate", MODEL], root, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_stock_six_task_config_is_refused_at_validate(tmp_path: Path) -> None:
    """A config deriving from the bundled one with the stock six-task head: exit 2, one line naming the
    model's own config file, the field and the fix."""
    proc = _validate_derived_config(tmp_path, f"model = dict(pts_bbox_head=dict(tasks={NUSCENES_TASKS}))")
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: models/{MODEL}/derived.py: model.pts_bbox_head.tasks: 6 tasks: Autoware's CenterPoint runs "
        "one head task: merge the classes into one task and retrain"
    )


def test_points_per_pillar_other_than_the_nodes_32_is_refused_at_validate(tmp_path: Path) -> None:
    """Autoware's preprocess kernel fills 32 points per pillar whatever the bundle says."""
    proc = _validate_derived_config(
        tmp_path, "model = dict(data_preprocessor=dict(voxel_layer=dict(max_num_points=8)))"
    )
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: models/{MODEL}/derived.py: model.data_preprocessor.voxel_layer.max_num_points: 8: Autoware's "
        "CenterPoint fills 32 points per pillar (fixed in its preprocess kernel): set max_num_points=32 and retrain"
    )


def test_provider_folder_of_config_and_checkpoint_exports_the_autoware_bundle(tmp_path: Path) -> None:
    """models/<m>/ holds model.yaml, an mmdet3d config and a checkpoint, no code: export cuts the model
    with the task's built-in split and writes the bundle, whose files pass Autoware's schemas and read
    back on the deployed side."""
    import jsonschema
    import onnx
    import torch
    from mmengine.config import Config

    from pipelines.errors import VerificationFailed
    from pipelines.sources.openmmlab import _scope
    from pipelines.stages.build import run_build
    from pipelines.stages.export import run_export
    from pipelines.stages.verify import run_verify
    from tests.test_detection3d import FILE_SCHEMAS, load_schema

    name = "provider_cp"
    root = tmp_path / "repo"
    copy_skeleton(root)
    folder = root / "models" / name
    folder.mkdir(parents=True)
    shutil.copy(REPO / "models" / MODEL / "config.py", folder / "config.py")
    torch.manual_seed(0)
    detector = _scope("mmdet3d").build(Config.fromfile(str(folder / "config.py")).model)
    torch.save({"state_dict": detector.state_dict()}, folder / "checkpoint.pth")
    desc = read_yaml(REPO / "models" / MODEL / "model.yaml")
    for key in ("reference", "provenance"):
        desc.pop(key)
    desc.update(name=name, description="a provider's CenterPoint")
    desc["source"] = {"kind": "mmdet3d", "config": "config.py", "checkpoint": f"models/{name}/checkpoint.pth"}
    desc["build"] = {"targets": ["onnxruntime"], "precisions": ["fp32"]}
    desc["verification"]["scenarios"] = desc["verification"]["scenarios"][:1]
    desc["evaluation"].update(dataset=f"data/{name}", backends=[{"backend": "onnxruntime", "device": "cpu"}])
    desc["evaluation"].pop("budget")
    write_yaml(folder / "model.yaml", desc)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pth", "config.py", "model.yaml"]
    reference = _load_module(REPO / "models" / MODEL / "reference.py")
    (root / "data" / name).mkdir(parents=True)
    reference.make_data(root / "data" / name, 0, {"train": 1, "val": 1, "ground_points": 500})

    ctx = ModelContext(root, load_descriptor(root, name))
    report = run_export(ctx)
    assert set(report["components"]) == {ENCODER, HEAD}
    for comp in (ENCODER, HEAD):
        onnx.checker.check_model(str(ctx.onnx_dir / f"{comp}.onnx"))
    stems = {f.removesuffix(".param.yaml") for f in report["ros_params"]}
    assert stems == {f"{name}_ml_package", "detection_class_remapper", "centerpoint_common"}
    for stem in stems:
        written = read_yaml(ctx.onnx_dir / f"{stem}.param.yaml")
        for schema in FILE_SCHEMAS[stem.replace(name, "centerpoint")]:
            jsonschema.validate(written, load_schema(schema))
    task = get_task(ctx)
    assert task.params_for(Endpoint(backend="onnxruntime")) == task.params
    # Verify runs the deployed side from the bundle: it passes as exported, and fails once the bundle
    # disagrees with the model (the range moved by 0.2 m: same grid, other pillars).
    run_build(ctx)
    assert run_verify(ctx).status == "pass"
    ml_path = ctx.onnx_dir / f"{name}_ml_package.param.yaml"
    ml = read_yaml(ml_path)
    ml["/**"]["ros__parameters"]["model_params"]["point_cloud_range"] = [-25.4, -25.6, -3.0, 25.8, 25.6, 3.0]
    write_yaml(ml_path, ml)
    with pytest.raises(VerificationFailed, match=r"pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32: output"):
        run_verify(ctx)


def _load_module(path: Path):  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"modelzoo_test_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding only centerpoint, with a short training, after `dvc repro evaluate@centerpoint`."""
    dest = bundled_subset_repo(tmp_path_factory.mktemp("centerpoint") / "repo", [MODEL])
    desc = read_yaml(dest / "models" / MODEL / "model.yaml")
    desc["reference"]["options"].update(train=24, val=4, epochs=2)
    desc["verification"]["samples"] = 3
    # Two epochs leave the heatmap flat, with near-tied peaks that fp16/int8 rounding can move by a
    # cell: the precision tolerances were measured on the fully trained model, so keep fp32 only here.
    desc["build"]["precisions"] = ["fp32"]
    desc["verification"]["scenarios"] = [s for s in desc["verification"]["scenarios"] if "precision" not in s["test"]]
    desc["evaluation"]["backends"] = [b for b in desc["evaluation"]["backends"] if "precision" not in b]
    desc["evaluation"].pop("budget", None)
    write_yaml(dest / "models" / MODEL / "model.yaml", desc)
    init_repo(dest)
    run([str(BIN / "dvc"), "repro", f"evaluate@{MODEL}"], dest)
    return dest


@pytest.mark.slow
def test_dvc_repro_exports_verifies_and_evaluates(repo: Path) -> None:
    import onnx

    art = repo / "artifacts" / MODEL
    shapes = {}
    for comp in (ENCODER, HEAD):
        model = onnx.load(str(art / "onnx" / f"{comp}.onnx"))
        for vi in [*model.graph.input, *model.graph.output]:
            shapes[vi.name] = [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    assert shapes == {
        "input_features": ["num_voxels", 32, 11],
        "pillar_features": ["num_voxels", 1, 32],
        "spatial_features": [1, 32, 128, 128],
        "heatmap": [1, 3, 64, 64],
        "reg": [1, 2, 64, 64],
        "height": [1, 1, 64, 64],
        "dim": [1, 3, 64, 64],
        "rot": [1, 2, 64, 64],
        "vel": [1, 2, 64, 64],
    }
    ml = read_yaml(art / "onnx" / "centerpoint_ml_package.param.yaml")["/**"]["ros__parameters"]
    assert ml["model_params"]["voxel_size"] == [0.4, 0.4, 6.0] and ml["model_version"] == "1.0.0"
    assert ml["encoder_onnx_path"] == f"{ENCODER}.onnx" and ml["version"] == "v4.1" and "modelzoo_version" in ml
    assert (art / "onnx" / "detection_class_remapper.param.yaml").is_file()
    assert (art / "onnx" / "centerpoint_common.param.yaml").is_file()
    verify = json.loads((art / "verify.json").read_text())
    scenario = verify["scenarios"]["pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32"]
    assert verify["status"] == "pass" and scenario["status"] == "pass"
    assert {f"{ENCODER}.pillar_features", f"{HEAD}.heatmap", "boxes.center", "boxes.matched"} <= set(
        scenario["outputs"]
    )
    metrics = json.loads((art / "metrics.json").read_text())
    for backend in ("pytorch-cpu-fp32", "onnxruntime-cpu-fp32"):
        m = metrics["backends"][backend]
        assert {"mAP", "AP_car", "AP_car_0.5m", "AP_pedestrian_4m"} <= set(m)
        assert set(m["latency_ms"]) == {"preprocess", ENCODER, "scatter", HEAD, "postprocess", "total"}
    assert "mAP" in run([str(BIN / "dvc"), "metrics", "show", "--json"], repo).stdout


def to_boxes(instances) -> Boxes3D:  # type: ignore[no-untyped-def]
    """mmdet3d's prediction (bottom-centre LiDAR boxes) as the task's gravity-centre Boxes3D."""
    t = instances.bboxes_3d.tensor.numpy().copy()
    t[:, 2] += t[:, 5] / 2
    return Boxes3D(t[:, :7], t[:, 7:9], instances.scores_3d.numpy(), instances.labels_3d.numpy().astype(np.int64))


@pytest.mark.slow
def test_split_pipeline_equals_mmdet3d_predict(repo: Path) -> None:
    import torch
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

    from pipelines.latency import Timer
    from pipelines.sources.openmmlab import build_detector

    ctx = ModelContext(repo, load_descriptor(repo, MODEL))
    task = get_task(ctx)
    # mmdet3d has no yaw norm filter (Autoware's, in the bundle): off for this comparison.
    task.params = replace(task.params, yaw_norm_thresholds=(0.0,) * len(task.params.class_names))
    frames = task.load_samples(ctx.dataset, "val", 4)
    detector, _ = build_detector(ctx)
    model = Model(ctx, Endpoint(backend="pytorch"))
    found = 0
    try:
        for f in frames:
            ours = task.run(model, f, Timer()).prediction
            sample = Det3DDataSample(metainfo={"box_type_3d": LiDARInstance3DBoxes})
            with torch.no_grad():
                data = detector.data_preprocessor(
                    {"inputs": {"points": [torch.from_numpy(f.points)]}, "data_samples": [sample]}, False
                )
                want = to_boxes(detector.predict(data["inputs"], data["data_samples"])[0].pred_instances_3d)
            res = compare_boxes(want, ours, lambda _: Tolerance(atol=1e-4, rtol=1e-4), task.params.score_threshold)
            assert all(r.passed for r in res.values()), res
            found += res["boxes.matched"].pairs or 0
    finally:
        model.close()
    assert found > 0  # boxes were compared, not only empty lists


@pytest.mark.slow
def test_verify_catches_a_perturbed_voxel_size(repo: Path, tmp_path: Path) -> None:
    """The deployed side preprocesses with the exported ROS parameters, PyTorch with the config: a config
    whose voxel size moved after export no longer matches the artifacts, and verify says so."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    config = copy / "models" / MODEL / "config.py"
    text = config.read_text()
    assert "voxel_size = [0.4, 0.4, 6.0]" in text
    config.write_text(text.replace("voxel_size = [0.4, 0.4, 6.0]", "voxel_size = [0.401, 0.401, 6.0]"))
    proc = modelzoo(["verify", MODEL], copy, check=False)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: artifacts/centerpoint/verify.json: pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32"), err
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_verify_fails_when_the_deployed_path_drops_a_sweep(repo: Path, tmp_path: Path) -> None:
    """The PyTorch reference loads points with mmdet3d's own LoadPointsFromMultiSweeps (config test
    pipeline), ONNX Runtime with the task's loader and the exported densification_params: a bundle
    that tells Autoware one past frame fewer than the model was trained with fails verify (exit 3)."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    node = copy / "artifacts" / MODEL / "onnx" / "centerpoint_common.param.yaml"
    params = read_yaml(node)
    densification = params["/**"]["ros__parameters"]["densification_params"]
    assert densification == {"world_frame_id": "map", "num_past_frames": 1}
    densification["num_past_frames"] = 0
    write_yaml(node, params)
    proc = modelzoo(["verify", MODEL], copy, check=False)
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: artifacts/centerpoint/verify.json: pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32"), err
    assert "Traceback" not in proc.stderr
