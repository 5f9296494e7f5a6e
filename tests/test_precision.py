"""Precision policies on a tiny classifier: fp16/int8 ONNX variants made, verified against the fp32
export and evaluated in ONNX Runtime on the CPU; the accuracy budget fails the stage when too tight."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from pipelines.fileio import sha256_file
from pipelines.stages.build import run_build
from pipelines.stages.build.precision import CalibrationSet, make_fp16
from pipelines.stages.evaluate import run_evaluate
from pipelines.stages.verify import run_verify
from pipelines.tasks import get_task
from pipelines.workspace import ModelContext
from tests.helpers import built_model, modelzoo, read_yaml, tiny_descriptor, write_yaml

COMP = "calibration_classifier"
ORT = {"backend": "onnxruntime", "device": "cpu"}
TRT = {"backend": "tensorrt", "device": "cuda"}


def precision_descriptor() -> dict:
    desc = tiny_descriptor("tiny")
    desc["build"] = {
        "targets": ["onnxruntime", "tensorrt"],
        "precisions": ["fp32", "fp16", "int8"],
        "calibration_samples": 8,
    }
    desc["verification"]["scenarios"] = [
        {"ref": ORT, "test": {**ORT, "precision": "fp16"}, "default": {"atol": 0.05, "rtol": 0.01}},
        {"ref": ORT, "test": {**ORT, "precision": "int8"}, "default": {"atol": 1.0, "rtol": 0.1}},
        {"ref": {**ORT, "precision": "fp16"}, "test": {**TRT, "precision": "fp16"}},
    ]
    desc["evaluation"]["budget"] = {"fp16": 1.0, "int8": 1.0}
    desc["evaluation"]["backends"] = [
        ORT,
        {**ORT, "precision": "fp16"},
        {**ORT, "precision": "int8"},
        {**TRT, "precision": "int8"},
    ]
    return desc


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ModelContext:
    ctx: ModelContext = built_model(tmp_path_factory.mktemp("precision") / "repo", "tiny", precision_descriptor())
    return ctx


def build_report(ctx: ModelContext) -> dict:
    return json.loads((ctx.build_dir / "build.json").read_text())


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_fp16_variant_computes_in_fp16_with_fp32_io(ctx: ModelContext) -> None:
    path = ctx.onnx_path(COMP, "fp16")
    model = onnx.load(str(path))
    io = [*model.graph.input, *model.graph.output]
    assert [v.type.tensor_type.elem_type for v in io] == [TensorProto.FLOAT, TensorProto.FLOAT]
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type == "Conv"]
    inits = initializers(model)
    assert conv_weights and all(inits[w].dtype == np.float16 for w in conv_weights)
    assert [n.op_type for n in model.graph.node].count("Cast") == 2  # in and out, nothing else
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "fp16" and meta["model_name"] == "tiny"
    info = build_report(ctx)["precisions"]["fp16"][COMP]
    assert info["sha256"] == sha256_file(path)
    assert info["keep_io_types"] is True and info["tool"].startswith("onnxconverter-common")


def test_fp16_block_list_from_the_descriptor_keeps_those_ops_in_fp32(ctx: ModelContext, tmp_path: Path) -> None:
    build = ctx.descriptor.build.model_copy(update={"fp16_block_list": ["Gemm"]})
    blocked = ModelContext(ctx.root, ctx.descriptor.model_copy(update={"build": build}))
    dest = tmp_path / "fp16.onnx"
    info = make_fp16(blocked, COMP, dest)
    assert info["kept_fp32_op_types"] == ["Gemm"] and info["descriptor_block_list"] == ["Gemm"]
    model = onnx.load(str(dest))
    inits = initializers(model)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert inits[gemm.input[1]].dtype == np.float32
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert inits[conv.input[1]].dtype == np.float16


def test_int8_variant_is_symmetric_qdq_with_fp32_bias(ctx: ModelContext) -> None:
    model = onnx.load(str(ctx.onnx_path(COMP, "int8")))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert not {"QLinearConv", "ConvInteger", "MatMulInteger"} & set(ops)  # explicit Q/DQ only
    inits = initializers(model)
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = inits[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        assert inits[conv.input[2]].dtype == np.float32  # bias not quantized: TensorRT fuses it in fp32
    assert [v.type.tensor_type.elem_type for v in model.graph.input] == [TensorProto.FLOAT]


def test_int8_is_calibrated_on_the_tasks_inputs_and_records_the_set(ctx: ModelContext) -> None:
    info = build_report(ctx)["precisions"]["int8"][COMP]
    record = info["calibration"]
    assert record["split"] == "val" and record["dataset"] == "data/tiny"
    assert record["samples"] == 8 and record["indices"] == list(range(8))
    # The same samples through the task's own preprocessing give the recorded hash...
    task = get_task(ctx)
    samples = task.load_samples(ctx.dataset, "val", 8)
    feeds = task.calibration_inputs(samples, COMP)
    np.testing.assert_array_equal(feeds[0]["input"], task.preprocess(samples[0].image))
    assert CalibrationSet("data/tiny", "val", list(range(8)), feeds).sha256 == record["sha256"]
    # ...and a different set does not.
    assert CalibrationSet("data/tiny", "val", list(range(7)), feeds[:7]).sha256 != record["sha256"]
    # The input's quantization scale comes from those inputs (MinMax, symmetric: absmax / 127).
    model = onnx.load(str(ctx.onnx_path(COMP, "int8")))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
    absmax = max(float(np.abs(f["input"]).max()) for f in feeds)
    assert float(initializers(model)[q.input[1]]) == pytest.approx(absmax / 127, rel=1e-6)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["calibration_sha256"] == record["sha256"]


def test_every_variant_is_built_for_onnxruntime_and_tensorrt_is_skipped_once(
    ctx: ModelContext, caplog: pytest.LogCaptureFixture
) -> None:
    first = build_report(ctx)
    with caplog.at_level(logging.WARNING):
        report = run_build(ctx)
    for precision in ("fp16", "int8"):  # deterministic: a rebuild changes nothing DVC would see
        assert report["precisions"][precision][COMP]["sha256"] == first["precisions"][precision][COMP]["sha256"]
    built = report["targets"]["onnxruntime"]["built"]
    assert sorted(built) == [f"{p}/{COMP}" for p in ("fp16", "fp32", "int8")]
    for precision in ("fp16", "int8"):
        assert built[f"{precision}/{COMP}"]["source_onnx_sha256"] == report["precisions"][precision][COMP]["sha256"]
    trt = report["targets"]["tensorrt"]
    assert not trt["environment"]["available"] and trt["built"] == {}
    assert trt["skipped"] == trt["environment"]["reason"] and trt["skipped"]
    assert not list(ctx.build_dir.rglob("*.engine"))
    said = [r for r in caplog.records if "target tensorrt skipped" in r.getMessage()]
    assert len(said) == 1  # once per build, not once per precision or component


def test_variants_verify_against_fp32_and_tensorrt_scenarios_are_skipped(ctx: ModelContext) -> None:
    report = run_verify(ctx)
    scenarios = report.scenarios
    for precision in ("fp16", "int8"):
        sc = scenarios[f"onnxruntime-cpu-fp32_vs_onnxruntime-cpu-{precision}"]
        out = sc.outputs[f"{COMP}.output"]
        assert sc.status == "pass" and (out.max_abs_error or 0) > 0  # a real, different graph ran
    assert scenarios["onnxruntime-cpu-fp32_vs_onnxruntime-cpu-int8"].outputs[f"{COMP}.output"].atol == 1.0
    skipped = scenarios["onnxruntime-cpu-fp16_vs_tensorrt-cuda-fp16"]
    assert skipped.status == "skipped" and (skipped.reason or "").startswith("tensorrt-cuda-fp16: ")


def test_metrics_per_precision_with_the_drop_vs_fp32(ctx: ModelContext) -> None:
    out = run_evaluate(ctx)
    backends = out["backends"]
    for precision in ("fp16", "int8"):
        m = backends[f"onnxruntime-cpu-{precision}"]
        assert 0.0 <= m["accuracy"] <= 1.0 and m["latency_ms"]["total"]["samples"] == out["samples"] == 20
        expected = backends["onnxruntime-cpu-fp32"]["accuracy"] - m["accuracy"]
        assert m["accuracy_drop_vs_fp32"] == pytest.approx(expected, abs=1e-6)
    assert "tensorrt-cuda-int8" in out["skipped"]


def test_a_too_tight_budget_fails_the_evaluate_stage(ctx: ModelContext) -> None:
    metrics = json.loads(ctx.metrics.read_text())
    drop = metrics["backends"]["onnxruntime-cpu-int8"]["accuracy_drop_vs_fp32"]
    path = ctx.dir / "model.yaml"
    original = path.read_text()
    desc = read_yaml(path)
    # One sample (1/20) tighter than the drop this int8 model really has: it cannot pass.
    desc["evaluation"]["budget"] = {"fp16": 1.0, "int8": round(drop - 1 / metrics["samples"], 6)}
    write_yaml(path, desc)
    try:
        proc = modelzoo(["evaluate", "tiny"], ctx.root, check=False)
    finally:
        path.write_text(original)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "artifacts/tiny/metrics.json: accuracy budget exceeded: onnxruntime-cpu-int8: accuracy dropped" in errors[0]
    assert "fp16" not in errors[0]  # fp16 is within its budget
    # The metrics are still written, so the failing numbers can be read.
    assert "onnxruntime-cpu-int8" in json.loads(ctx.metrics.read_text())["backends"]
    # The same stage passes again with the budget in the descriptor.
    assert modelzoo(["evaluate", "tiny"], ctx.root).returncode == 0


def test_fp16_of_a_graph_with_a_block_listed_resize_loads_in_onnxruntime(tmp_path: Path) -> None:
    """YOLOX's neck: Conv -> Resize (kept fp32 by the converter's list) -> Conv, exported with two
    value_info entries for the Resize output, as YOLOX's file has: the converter retyped one and left
    the stale fp32 one, which ONNX Runtime refused."""
    import onnxruntime as ort
    import torch
    from onnxconverter_common import float16

    from pipelines.stages.build.precision import convert_fp16

    class Neck(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.nn.functional.interpolate(torch.relu(self.a(x)), scale_factor=2.0, mode="nearest"))

    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    path = tmp_path / "neck.onnx"
    torch.onnx.export(Neck().eval(), (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    model = onnx.load(str(path))
    model = onnx.shape_inference.infer_shapes(model)
    resized = next(n.output[0] for n in model.graph.node if n.op_type == "Resize")
    model.graph.value_info.extend([v for v in model.graph.value_info if v.name == resized])
    fp16 = convert_fp16(model, sorted(float16.DEFAULT_OP_BLOCK_LIST))
    onnx.checker.check_model(fp16, full_check=True)
    cpu = ["CPUExecutionProvider"]
    run = {
        name: ort.InferenceSession(m.SerializeToString(), providers=cpu).run(None, {"x": x.numpy()})[0]
        for name, m in (("fp32", model), ("fp16", fp16))
    }
    assert run["fp16"].dtype == np.float32
    np.testing.assert_allclose(run["fp16"], run["fp32"], atol=1e-2)


def _with_build(ctx: ModelContext, **build: object) -> ModelContext:
    changed = ctx.descriptor.build.model_copy(update=build)
    return ModelContext(ctx.root, ctx.descriptor.model_copy(update={"build": changed}))


def _variant(ctx: ModelContext, tmp_path: Path, **build: object) -> tuple[onnx.ModelProto, dict]:
    from pipelines.stages.build.precision import make_int8

    dest = tmp_path / "int8.onnx"
    info = make_int8(_with_build(ctx, **build), COMP, dest)
    return onnx.load(str(dest)), info


def test_int8_qdq_sits_on_the_inputs_of_weighted_layers_only(ctx: ModelContext) -> None:
    from pipelines.stages.build.precision import WEIGHTED_OPS

    model = onnx.load(str(ctx.onnx_path(COMP, "int8")))
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    # A tensor is quantized only because a weighted layer reads it (other readers of it, such as a
    # residual Add, then read the same dequantized values); no output is quantized for its own sake.
    for out in dq_outputs:
        assert set(consumers[out]) & set(WEIGHTED_OPS), (out, consumers[out])
    assert not dq_outputs & {o.name for o in model.graph.output}
    weighted = [n for n in model.graph.node if n.op_type in WEIGHTED_OPS]
    assert weighted and all(n.input[0] in dq_outputs and n.input[1] in dq_outputs for n in weighted)


def test_int8_exclude_keeps_the_matching_nodes_in_floating_point(ctx: ModelContext, tmp_path: Path) -> None:
    fp32 = onnx.load(str(ctx.onnx_path(COMP)))
    first = next(n.name for n in fp32.graph.node if n.op_type == "Conv")
    model, info = _variant(ctx, tmp_path, int8_exclude=[first.replace("Conv", "C*")])
    assert info["excluded_nodes"] == [first]
    node = next(n for n in model.graph.node if n.name == first)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in node.input)
    others = [n for n in model.graph.node if n.op_type == "Conv" and n.name != first]
    assert others and all(producers.get(n.input[0]) == "DequantizeLinear" for n in others)


def test_an_int8_exclude_pattern_matching_nothing_is_a_descriptor_error(ctx: ModelContext, tmp_path: Path) -> None:
    from pipelines.errors import DescriptorError

    with pytest.raises(DescriptorError, match=r"build\.int8_exclude\[1\]: '/no/such/\*' matches no Conv/"):
        _variant(ctx, tmp_path, int8_exclude=["*", "/no/such/*"])
    # A node that never gets Q/DQ (an activation) is nothing to exclude: the pattern is a mistake too.
    relu = next(n.name for n in onnx.load(str(ctx.onnx_path(COMP))).graph.node if n.op_type == "Relu")
    with pytest.raises(DescriptorError, match=r"build\.int8_exclude\[0\]: .* matches no Conv/"):
        _variant(ctx, tmp_path, int8_exclude=[relu])


def test_percentile_calibration_is_recorded_and_refuses_varying_shapes(ctx: ModelContext, tmp_path: Path) -> None:
    from pipelines.errors import DescriptorError
    from pipelines.stages.build.precision import _check_fixed_shapes

    _, info = _variant(ctx, tmp_path, calibration_method="Percentile")
    assert info["calibration_method"] == "Percentile"
    percentile = _with_build(ctx, calibration_method="Percentile")
    feeds = [{"voxels": np.zeros((n, 10), np.float32)} for n in (300, 420)]
    with pytest.raises(DescriptorError, match=r"calibration_method: Percentile .* tiny_net\.voxels varies"):
        _check_fixed_shapes(percentile, "tiny_net", CalibrationSet("data/tiny", "val", [0, 1], feeds))
