"""YOLOX end to end: `dvc repro` of yolox and yolox_dynamic in a temporary repository (the real
reference data and training), then the exported files as autoware_tensorrt_yolox reads them, its
decode against the task's on the verify samples, the dynamic batch axis in ONNX Runtime, PyTorch
vs ONNX Runtime detections through the shared post-processing, and verify against a changed
normalization. 5.7 minutes on the shared 2-core development machine (load 3-7), of which
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
from pipelines.tasks.detection2d.boxes import decode, select
from pipelines.workspace import ModelContext
from tests import autoware_yolox
from tests.helpers import BIN, REPO, bundled_subset_repo, init_repo, modelzoo, run

pytestmark = pytest.mark.slow

MODELS = ("yolox", "yolox_dynamic")
AUTOWARE = REPO / "tests" / "data" / "autoware" / "tensorrt_yolox"
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


def test_exported_files_have_the_node_signature_and_deploy_files(repo: Path) -> None:
    """One input, one output [B, N, 5 + C] (autoware_tensorrt_yolox's plain model), and beside it the
    files the node reads, named apart for the two models (one tensorrt_yolox folder in Autoware)."""
    import jsonschema
    import onnx

    def io(path: Path) -> dict[str, list[int | str]]:
        graph = onnx.load(str(path)).graph
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*graph.input, *graph.output]
        }

    assert io(repo / "artifacts" / "yolox" / "onnx" / "yolox.onnx") == {
        "images": [1, 3, 320, 320],
        "output": [1, 2100, 8],
    }
    assert io(repo / "artifacts" / "yolox_dynamic" / "onnx" / "yolox_dynamic.onnx") == {
        "images": ["batch", 3, 320, 320],
        "output": ["batch", 2100, 8],
    }
    model = onnx.load(str(repo / "artifacts" / "yolox" / "onnx" / "yolox.onnx"))
    ops = [n.op_type for n in model.graph.node]
    # The config's ReLU, not Swish (x * sigmoid(x)) or ReLU6 (Clip): the sigmoids are objectness and
    # class scores of the three levels; no Exp: the node applies exp to log w, log h itself.
    assert "Relu" in ops and "Clip" not in ops and ops.count("Sigmoid") == 6 and "Exp" not in ops
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["model_name"] == "yolox" and meta["model_version"] == "1.0.0"
    schema = json.loads((AUTOWARE / "ml_package_yolox.schema.json").read_text())
    names = {}
    for name in MODELS:
        onnx_dir = repo / "artifacts" / name / "onnx"
        files = {p.name for p in onnx_dir.iterdir()}
        assert files == {
            f"{name}.onnx",
            f"ml_package_{name}.param.yaml",
            f"{name}_label.txt",
            f"{name}_roi_label_remap.csv",
            "export.json",
        }
        params = yaml.safe_load((onnx_dir / f"ml_package_{name}.param.yaml").read_text())
        jsonschema.validate(params, schema)
        assert params["/**"]["ros__parameters"]["score_threshold"] == 0.35
        labels = autoware_yolox.read_label_file((onnx_dir / f"{name}_label.txt").read_text())
        assert labels == ["circle", "rectangle", "triangle"]
        assert autoware_yolox.read_remap_file((onnx_dir / f"{name}_roi_label_remap.csv").read_text()).keys() == set(
            labels
        )
        names[name] = files - {"export.json"}
    assert not names["yolox"] & names["yolox_dynamic"]


def test_dynamic_batch_runs_with_batch_1_and_4_in_onnxruntime(repo: Path) -> None:
    from pipelines.runtimes import get_backend

    ctx = context(repo, "yolox_dynamic")
    task: Any = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "val", 4)
    from pipelines.tasks.detection2d.coco import read_image

    batch = np.concatenate([task.preprocess(read_image(s))[0] for s in samples])
    session = get_backend("onnxruntime").open(ctx, "yolox_dynamic", Endpoint(backend="onnxruntime"))
    try:
        four = session.run({"images": batch})["output"]
        ones = [session.run({"images": batch[i : i + 1]})["output"] for i in range(4)]
    finally:
        session.close()
    assert four.shape == (4, 2100, 8)
    for i, one in enumerate(ones):
        assert one.shape == (1, 2100, 8)
        np.testing.assert_allclose(four[i], one[0], atol=1e-4, rtol=1e-4)
    # The images differ, so a batch that repeated its first image would fail above.
    assert not np.allclose(four[0, :, 4], four[1, :, 4])


def test_node_decode_gives_the_task_detections_on_the_verify_samples(repo: Path) -> None:
    """autoware_tensorrt_yolox's decode and NMS (re-implemented from its source in
    tests/autoware_yolox.py) on the exported models' outputs for the verify samples give the task's
    own detections at the node's operating point (ml_package score and NMS thresholds): same
    classes and scores in the same order, boxes within the node's integer truncations. The dynamic
    model runs them as one batch, which the node reads image by image at N x (5 + C) offsets.
    Not so by construction: the node keeps every class over the threshold and suppresses across
    classes, the task the best class and per class; on all 100 val images 93 agree (measured)."""
    from pipelines.runtimes import get_backend
    from pipelines.tasks.detection2d.boxes import unletterbox
    from pipelines.tasks.detection2d.coco import read_image

    found = 0
    for name in MODELS:
        ctx = context(repo, name)
        task: Any = get_task(ctx)
        o = task.options
        params = yaml.safe_load((ctx.onnx_dir / f"ml_package_{name}.param.yaml").read_text())["/**"]["ros__parameters"]
        labels = autoware_yolox.read_label_file((ctx.onnx_dir / f"{name}_label.txt").read_text())
        samples = task.load_samples(ctx.dataset, "val", ctx.descriptor.verification.samples)
        inputs = [task.preprocess(read_image(s)) for s in samples]
        session = get_backend("onnxruntime").open(ctx, name, Endpoint(backend="onnxruntime"))
        try:
            if name == "yolox_dynamic":
                flat = session.run({"images": np.concatenate([x for x, _ in inputs])})["output"].reshape(-1)
                per_image = flat.size // len(samples)
                outputs = [
                    flat[i * per_image : (i + 1) * per_image].reshape(-1, 5 + len(labels)) for i in range(len(samples))
                ]
            else:
                outputs = [session.run({"images": x})["output"][0] for x, _ in inputs]
        finally:
            session.close()
        for s, (_, lb), out in zip(samples, inputs, outputs, strict=True):
            image_wh = (s.width, s.height)
            scale = autoware_yolox.letterbox_scale(task.input_size, image_wh)
            assert scale == pytest.approx(lb.scale, rel=1e-7)
            node = autoware_yolox.decode_outputs(
                out, task.input_size, len(labels), params["score_threshold"], params["nms_threshold"], scale, image_wh
            )
            boxes = decode(out[:, :4], task.priors)
            mine = select(
                boxes, out[:, 4], out[:, 5:], params["score_threshold"], params["nms_threshold"], o.max_detections
            )
            autoware_yolox.assert_same_objects(node, unletterbox(mine, lb, s.width, s.height), scale)
            found += len(node.scores)
    assert found >= 2 * len(samples), "the trained model should find objects in the verify samples"


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


def test_map_holds_with_the_nodes_own_gpu_letterbox(repo: Path) -> None:
    """The node resamples with its own GPU kernel (re-implemented in tests/autoware_yolox.py), not
    OpenCV's bilinear: on the val images that costs little mAP. Measured (ONNX Runtime fp32, 100 val
    images): 0.7030 with the task's letterbox, 0.7001 with the node's."""
    from pipelines.runtimes import get_backend
    from pipelines.tasks.detection2d.boxes import unletterbox
    from pipelines.tasks.detection2d.coco import read_image

    ctx = context(repo, "yolox")
    task: Any = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "val", -1)
    session = get_backend("onnxruntime").open(ctx, "yolox", Endpoint(backend="onnxruntime"))
    ours, node = [], []
    try:
        for s in samples:
            image = read_image(s)
            x, lb = task.preprocess(image)
            ours.append(unletterbox(task.postprocess(session.run({"images": x})), lb, s.width, s.height))
            x = autoware_yolox.gpu_letterbox(image, task.input_size)
            node.append(unletterbox(task.postprocess(session.run({"images": x})), lb, s.width, s.height))
    finally:
        session.close()
    theirs, mine = task.metrics(node, samples)["mAP"], task.metrics(ours, samples)["mAP"]
    assert theirs >= 0.3 and abs(theirs - mine) <= 0.01, (theirs, mine)
