"""YOLOX end to end: `dvc repro` of yolox and yolox_dynamic in a temporary repository (the real
reference data and training), then the exported files, the dynamic batch axis in ONNX Runtime,
PyTorch vs ONNX Runtime detections through the shared post-processing, and verify against a
changed normalization. 5.7 minutes on the shared 2-core development machine (load 3-7), of which
training is ~65 s on free cores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pipelines.descriptor import Endpoint, load_descriptor
from pipelines.tasks import Model, get_task
from pipelines.workspace import ModelContext
from tests.helpers import BIN, bundled_subset_repo, init_repo, modelzoo, run

pytestmark = pytest.mark.slow

MODELS = ("yolox", "yolox_dynamic")
CPU = ("pytorch-cpu-fp32", "onnxruntime-cpu-fp32")
ENDPOINTS = {"pytorch-cpu-fp32": Endpoint(backend="pytorch"), "onnxruntime-cpu-fp32": Endpoint(backend="onnxruntime")}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding only the two YOLOX models, after `dvc repro` of both."""
    dest = bundled_subset_repo(tmp_path_factory.mktemp("yolox") / "repo", list(MODELS))
    init_repo(dest)
    run([str(BIN / "dvc"), "repro", *(f"evaluate@{name}" for name in MODELS)], dest)
    return dest


def context(repo: Path, name: str) -> ModelContext:
    return ModelContext(repo, load_descriptor(repo, name))


def test_metrics_meet_the_reference_bar_on_both_cpu_backends(repo: Path) -> None:
    metrics = json.loads((repo / "artifacts" / "yolox" / "metrics.json").read_text())
    assert metrics["headline"] == "mAP" and metrics["samples"] == 100
    for key in CPU:
        m = metrics["backends"][key]
        assert m["mAP"] >= 0.3 and m["mAP_50"] >= 0.6, (key, m)
        assert {"AP_circle", "AP_rectangle", "AP_triangle", "mAP_75"} <= m.keys()
        assert {"preprocess", "yolox", "postprocess", "total"} <= m["latency_ms"].keys()
    assert "tensorrt-cuda-fp32" in metrics.get("skipped", {}) or "tensorrt-cuda-fp32" in metrics["backends"]
    # The dynamic variant is the same network: the same detections, the same numbers.
    dynamic = json.loads((repo / "artifacts" / "yolox_dynamic" / "metrics.json").read_text())
    assert dynamic["backends"]["onnxruntime-cpu-fp32"]["mAP"] == pytest.approx(
        metrics["backends"]["onnxruntime-cpu-fp32"]["mAP"], abs=1e-4
    )
    for name in MODELS:
        assert json.loads((repo / "artifacts" / name / "verify.json").read_text())["status"] == "pass"
    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], repo).stdout)
    assert "mAP" in json.dumps(shown)


def test_exported_files_have_the_descriptor_signature_and_ros_params(repo: Path) -> None:
    import onnx

    def io(path: Path) -> dict[str, list[int | str]]:
        graph = onnx.load(str(path)).graph
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*graph.input, *graph.output]
        }

    fixed = io(repo / "artifacts" / "yolox" / "onnx" / "yolox.onnx")
    assert fixed == {
        "images": [1, 3, 320, 320],
        "boxes": [1, 2100, 4],
        "objectness": [1, 2100],
        "class_scores": [1, 2100, 3],
    }
    dynamic = io(repo / "artifacts" / "yolox_dynamic" / "onnx" / "yolox.onnx")
    assert dynamic["images"] == ["batch", 3, 320, 320] and dynamic["class_scores"] == ["batch", 2100, 3]
    model = onnx.load(str(repo / "artifacts" / "yolox" / "onnx" / "yolox.onnx"))
    ops = [n.op_type for n in model.graph.node]
    # The config's ReLU, not Swish (x * sigmoid(x)) or ReLU6 (Clip): the two sigmoids are the scores'.
    assert "Relu" in ops and "Clip" not in ops and ops.count("Sigmoid") == 2
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["model_name"] == "yolox" and meta["model_version"] == "1.0.0"
    ros = yaml.safe_load((repo / "artifacts" / "yolox" / "onnx" / "yolox.param.yaml").read_text())
    params = ros["/**"]["ros__parameters"]
    assert params["input_height"] == params["input_width"] == 320
    assert params["class_labels"] == ["circle", "rectangle", "triangle"]
    assert (params["score_threshold"], params["nms_threshold"]) == (0.35, 0.65)
    assert params["model_version"] == "1.0.0" and params["model_path"] == "yolox.onnx"


def test_dynamic_batch_runs_with_batch_1_and_4_in_onnxruntime(repo: Path) -> None:
    from pipelines.runtimes import get_backend

    ctx = context(repo, "yolox_dynamic")
    task: Any = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "val", 4)
    from pipelines.tasks.detection2d.coco import read_image

    batch = np.concatenate([task.preprocess(read_image(s))[0] for s in samples])
    session = get_backend("onnxruntime").open(ctx, "yolox", Endpoint(backend="onnxruntime"))
    try:
        four = session.run({"images": batch})
        ones = [session.run({"images": batch[i : i + 1]}) for i in range(4)]
    finally:
        session.close()
    assert four["boxes"].shape == (4, 2100, 4) and four["class_scores"].shape == (4, 2100, 3)
    assert four["objectness"].shape == (4, 2100)
    for i, one in enumerate(ones):
        assert one["boxes"].shape == (1, 2100, 4)
        for name in ("boxes", "objectness", "class_scores"):
            np.testing.assert_allclose(four[name][i], one[name][0], atol=1e-4, rtol=1e-4)
    # The images differ, so a batch that repeated its first image would fail above.
    assert not np.allclose(four["objectness"][0], four["objectness"][1])


def test_shared_postprocessing_gives_the_same_detections(repo: Path) -> None:
    ctx = context(repo, "yolox")
    task = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "val", 8)
    from pipelines.latency import Timer

    found = 0
    models = {key: Model(ctx, ENDPOINTS[key]) for key in CPU}
    try:
        for s in samples:
            ref, test = (task.run(models[key], s, Timer()).prediction for key in CPU)
            kept = ref.scores >= 0.05  # clear of the score threshold, where rounding may tip a box either way
            confident = test.scores >= 0.05
            assert ref.labels[kept].tolist() == test.labels[confident].tolist(), s.image_id
            np.testing.assert_allclose(ref.boxes[kept], test.boxes[confident], atol=1e-2)
            np.testing.assert_allclose(ref.scores[kept], test.scores[confident], atol=1e-4)
            found += int(kept.sum())
    finally:
        for m in models.values():
            m.close()
    assert found >= len(samples), "the trained model should find objects in every image"


def test_verify_catches_a_changed_normalization(repo: Path) -> None:
    """The config's normalization is part of the exported graph: a config that no longer matches the
    built artifact makes PyTorch and ONNX Runtime disagree, and verify says which output."""
    config = repo / "models" / "yolox" / "config.py"
    original = config.read_text()
    assert "std=[58.0, 58.0, 58.0]" in original
    config.write_text(original.replace("std=[58.0, 58.0, 58.0]", "std=[64.0, 64.0, 64.0]"))
    try:
        proc = modelzoo(["verify", "yolox"], repo, check=False)
    finally:
        config.write_text(original)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    # One error line (stderr also carries the libraries' warnings and modelzoo's progress log).
    assert "Traceback" not in proc.stderr
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: artifacts/yolox/verify.json: pytorch-cpu-fp32_vs_onnxruntime")
    assert "output yolox." in err[0]
    report = json.loads((repo / "artifacts" / "yolox" / "verify.json").read_text())
    assert report["status"] == "fail"
