"""Every bundled model's TensorRT engines (each precision) built, loaded, verified and evaluated.

Needs TensorRT >= 10 and a CUDA GPU: skipped elsewhere with the probe's reason. `scripts/gpu-smoke`
runs this suite on a runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.descriptor import load_descriptor, parse_descriptor
from pipelines.errors import ModelzooError
from pipelines.fileio import sha256_file
from pipelines.runtimes.tensorrt import build as target
from pipelines.runtimes.tensorrt.probe import probe
from pipelines.runtimes.tensorrt.session import TrtSession
from pipelines.stages.build import run_build
from pipelines.stages.evaluate import run_evaluate
from pipelines.stages.verify import run_verify
from pipelines.workspace import ModelContext
from tests.gpu.conftest import bundled_models
from tests.helpers import tiny_descriptor

ENV = probe()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not ENV.available, reason=ENV.reason),
]


@pytest.fixture(scope="module", params=bundled_models())
def built(request: pytest.FixtureRequest, scratch: Path) -> tuple[ModelContext, dict]:
    ctx = ModelContext(scratch, load_descriptor(scratch, request.param))
    if "tensorrt" not in ctx.descriptor.build.targets:
        pytest.skip(f"{ctx.name}: tensorrt is not a build target")
    if not ctx.onnx_path(ctx.descriptor.components[0].name).is_file():
        pytest.skip(f"{ctx.name}: not exported (run `modelzoo export {ctx.name}` or dvc repro first)")
    return ctx, run_build(ctx)


def test_engines_are_built_for_every_precision_with_metadata(built: tuple[ModelContext, dict]) -> None:
    ctx, report = built
    entry = report["targets"]["tensorrt"]
    assert entry["environment"]["key"] == ENV.key and "skipped" not in entry
    desc = ctx.descriptor
    for precision in desc.build.precisions:
        for comp in desc.components:
            engine = target.engine_path(ctx, ENV.key, precision, comp.name)
            assert engine.is_file(), engine
            meta = json.loads(target.metadata_path(engine).read_text())
            assert meta["precision"] == precision and meta["strongly_typed"] is True
            assert meta["tensorrt"] == (ENV.details or {})["tensorrt"] and meta["environment"] == ENV.key
            assert meta["onnx_sha256"] == sha256_file(ctx.onnx_path(comp.name, precision))
            shapes = target.profile_shapes(comp, "")
            assert meta["profiles"] == [{n: {"min": a, "opt": b, "max": c} for n, (a, b, c) in shapes.items()}]
            session = TrtSession(engine, "cuda")
            assert session.inputs == [t.name for t in comp.inputs]
            session.close()
    assert target.timing_cache_path(ENV.key).stat().st_size > 0


def test_a_rebuild_reuses_the_timing_cache(built: tuple[ModelContext, dict]) -> None:
    ctx, _ = built
    cache = target.timing_cache_path(ENV.key)
    before = cache.stat().st_size
    report = run_build(ctx)
    assert report["targets"]["tensorrt"]["built"]
    assert cache.stat().st_size >= before


def test_engines_verify_against_onnxruntime(built: tuple[ModelContext, dict]) -> None:
    ctx, _ = built
    report = run_verify(ctx)
    trt = {k: v for k, v in report.scenarios.items() if "tensorrt" in k}
    assert trt, "no tensorrt scenario in the descriptor"
    for key, sc in trt.items():
        assert sc.status == "pass", (key, sc)


def test_engines_are_evaluated_within_the_budget(built: tuple[ModelContext, dict]) -> None:
    ctx, _ = built
    out = run_evaluate(ctx)
    for ep in ctx.descriptor.evaluation.backends:
        if ep.backend == "tensorrt":
            assert ctx.descriptor.evaluation.headline in out["backends"][ep.key], ep.key
    assert not any("tensorrt" in k for k in out.get("skipped", {}))


def test_parser_errors_name_the_node(tmp_path: Path) -> None:
    import onnx

    desc = parse_descriptor(tiny_descriptor("tiny"), "models/tiny/model.yaml")
    ctx = ModelContext(tmp_path, desc)
    x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 5, 16, 16])
    y = onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 5, 16, 16])
    node = onnx.helper.make_node("NoSuchOp", ["input"], ["output"], name="the_bad_node", domain="bogus.domain")
    graph = onnx.helper.make_graph([node], "g", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    src = tmp_path / "bad.onnx"
    onnx.save(model, str(src))
    with pytest.raises(ModelzooError) as err:
        target.build(src, tmp_path / "bad.engine", ctx, "calibration_classifier")
    assert "the_bad_node" in str(err.value) and "NoSuchOp" in str(err.value)
    assert not (tmp_path / "bad.engine").exists()


def test_an_input_outside_the_profile_is_a_one_line_error(built: tuple[ModelContext, dict]) -> None:
    ctx, _ = built
    comp = next((c for c in ctx.descriptor.components if c.dynamic_ranges), None)
    if comp is None:
        pytest.skip(f"{ctx.name}: no dynamic axes")
    session = TrtSession(target.engine_path(ctx, ENV.key, "fp32", comp.name), "cuda")
    shapes = target.profile_shapes(comp, "")
    feeds = {}
    for t in comp.inputs:
        shape = [d + 1 for d in shapes[t.name][2]] if t.name in shapes else list(t.shape)
        feeds[t.name] = np.zeros(shape, dtype=t.dtype)
    with pytest.raises(ModelzooError, match="outside the optimization profile"):
        session.run(feeds)
    session.close()
