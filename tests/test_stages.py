"""Each stage on a tiny classifier in a temporary repository, through the real libraries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pipelines.descriptor import Tolerance, load_descriptor
from pipelines.errors import DescriptorError, VerificationFailed
from pipelines.fileio import sha256_file
from pipelines.reference import make_data, train
from pipelines.stages.build import run_build
from pipelines.stages.evaluate import run_evaluate
from pipelines.stages.verify import VerifyReport, run_verify, verify_scenario
from pipelines.workspace import ModelContext
from tests.helpers import built_model, make_repo, modelzoo, tiny_descriptor


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ModelContext:
    ctx: ModelContext = built_model(tmp_path_factory.mktemp("stages") / "repo", "tiny", tiny_descriptor("tiny"))
    return ctx


def test_reference_data_is_deterministic(ctx: ModelContext, tmp_path: Path) -> None:
    first = sha256_file(ctx.dataset / "val.npz")
    make_data(ctx)
    assert sha256_file(ctx.dataset / "val.npz") == first
    with np.load(ctx.dataset / "val.npz") as d:
        assert d["images"].shape == (24, 5, 16, 16)
        assert set(d["labels"].tolist()) == {0, 1}


def test_reference_training_is_byte_reproducible(ctx: ModelContext) -> None:
    """Same data, same seed: the same checkpoint bytes, so DVC sees a retrain as no change."""
    first = sha256_file(ctx.checkpoint)
    train(ctx)
    assert sha256_file(ctx.checkpoint) == first


def test_export_checks_and_stamps(ctx: ModelContext) -> None:
    path = ctx.onnx_path("calibration_classifier")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["model_name"] == "tiny"
    assert meta["model_version"] == "1.0.0"
    assert meta["checkpoint_sha256"] == sha256_file(ctx.checkpoint)
    assert len(meta["git_commit"]) == 40
    assert meta["producer"] == "modelzoo"
    assert model.producer_name == "modelzoo"
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.opset_import[0].version == 17
    report = json.loads((ctx.onnx_dir / "export.json").read_text())
    assert report["components"]["calibration_classifier"]["sha256"] == sha256_file(path)


def test_build_writes_a_loadable_ort_model_and_says_why_tensorrt_is_skipped(ctx: ModelContext) -> None:
    report = json.loads((ctx.build_dir / "build.json").read_text())
    ort_entry = report["targets"]["onnxruntime"]
    key = ort_entry["environment"]["key"]
    assert (key.startswith("onnxruntime-") and key.endswith("-cpu-x86_64")) or "-cpu-" in key
    built = ort_entry["built"]["fp32/calibration_classifier"]
    path = ctx.build_dir / built["file"]
    assert path.suffix == ".ort" and sha256_file(path) == built["sha256"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": np.zeros((1, 5, 16, 16), np.float32)})[0]
    assert out.shape == (1, 2)
    trt = report["targets"]["tensorrt"]
    if not trt["environment"]["available"]:
        assert trt["skipped"] and trt["built"] == {}
        assert not list(ctx.build_dir.glob("tensorrt-*"))


def test_verify_passes_and_reports_per_output(ctx: ModelContext) -> None:
    report = run_verify(ctx)
    assert report.status == "pass"
    sc = report.scenarios["pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32"]
    assert sc.status == "pass" and sc.samples == 2
    out = sc.outputs["calibration_classifier.output"]
    assert out.passed and out.max_abs_error is not None and out.max_abs_error < 1e-4 and out.worst_index is not None
    written = json.loads(ctx.verify_report.read_text())
    assert written == report.to_json() and written["status"] == "pass"
    assert VerifyReport.from_json(written) == report


def test_report_only_outputs_are_reported_but_do_not_decide(ctx: ModelContext) -> None:
    base = ctx.descriptor.verification.scenarios[0]
    tight = base.model_copy(update={"default": Tolerance(atol=0.0, rtol=0.0)})
    res = verify_scenario(ctx, tight)
    assert res.status == "fail" and (res.outputs["calibration_classifier.output"].max_abs_error or 0) > 0
    res = verify_scenario(ctx, tight.model_copy(update={"report_only": ["output"]}))
    out = res.outputs["calibration_classifier.output"]
    assert res.status == "pass" and out.report_only and not out.passed
    with pytest.raises(DescriptorError, match="report_only: 'outptu' names no output"):
        verify_scenario(ctx, tight.model_copy(update={"report_only": ["outptu"]}))


def test_evaluate_writes_metrics_latency_and_plots(ctx: ModelContext) -> None:
    out = run_evaluate(ctx)
    metrics = json.loads(ctx.metrics.read_text())
    assert metrics == json.loads(json.dumps(out))
    for key in ("pytorch-cpu-fp32", "onnxruntime-cpu-fp32"):
        m = metrics["backends"][key]
        assert 0.0 <= m["accuracy"] <= 1.0
        assert {"precision_calibrated", "recall_miscalibrated", "confusion_matrix"} <= set(m)
        assert sum(map(sum, m["confusion_matrix"])) == 20
        total = m["latency_ms"]["total"]
        assert total["samples"] == 20 and total["min"] <= total["p50"] <= total["p99"] <= total["max"]
        assert {"preprocess", "calibration_classifier", "postprocess"} <= set(m["latency_ms"])
    # Same model, same inputs: the two backends agree on every prediction.
    assert (
        metrics["backends"]["pytorch-cpu-fp32"]["confusion_matrix"]
        == metrics["backends"]["onnxruntime-cpu-fp32"]["confusion_matrix"]
    )
    assert (ctx.plots_dir / "latency.json").is_file()
    assert (ctx.plots_dir / "confusion_onnxruntime-cpu-fp32.json").is_file()


def test_verify_catches_a_perturbed_weight(ctx: ModelContext, tmp_path: Path) -> None:
    """Nudge one weight of the exported ONNX, rebuild: the built artifact must now fail verify."""
    path = ctx.onnx_path("calibration_classifier")
    original = path.read_bytes()
    try:
        model = onnx.load(str(path))
        init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
        w = onnx.numpy_helper.to_array(init).copy()
        w.flat[0] += 0.5
        init.CopyFrom(onnx.numpy_helper.from_array(w, init.name))
        onnx.save(model, str(path))
        run_build(ctx)
        with pytest.raises(VerificationFailed) as err:
            run_verify(ctx)
        msg = str(err.value)
        assert "pytorch-cpu-fp32_vs_onnxruntime-cpu-fp32: output calibration_classifier.output" in msg
        assert "max abs error" in msg and "\n" not in msg
        report = json.loads(ctx.verify_report.read_text())
        assert report["status"] == "fail"
    finally:
        path.write_bytes(original)
        run_build(ctx)


def test_verify_cli_exits_3_naming_the_worst_output(ctx: ModelContext) -> None:
    path = ctx.onnx_path("calibration_classifier")
    original = path.read_bytes()
    try:
        model = onnx.load(str(path))
        for init in model.graph.initializer:
            if init.name.endswith("bias") or "head" in init.name:
                a = onnx.numpy_helper.to_array(init) + 1.0
                init.CopyFrom(onnx.numpy_helper.from_array(a.astype(np.float32), init.name))
        onnx.save(model, str(path))
        run_build(ctx)
        proc = modelzoo(["verify", "tiny"], ctx.root, check=False)
        assert proc.returncode == 3, proc.stderr
        err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(err) == 1 and "output calibration_classifier.output" in err[0]
        assert "Traceback" not in proc.stderr
    finally:
        path.write_bytes(original)
        run_build(ctx)


def test_missing_dataset_and_checkpoint_are_one_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"nock": tiny_descriptor("nock")}, git=False)
    proc = modelzoo(["export", "nock"], root, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: data/nock/val.npz: dataset split not found"
    make_data(ModelContext(root, load_descriptor(root, "nock")))
    proc = modelzoo(["export", "nock"], root, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: artifacts/nock/reference/checkpoint.pth: checkpoint not found "
        "(models/nock/model.yaml source.checkpoint)"
    )
