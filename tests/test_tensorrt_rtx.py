"""The tensorrt_rtx target with the real TensorRT-RTX wheels (scripts/setup installs them): engines
built on this CPU for named compute capabilities, parser and profile failures naming what failed, the
metadata each engine carries, the endpoints' skip reason, and a release fetched by capability.

The graphs are made here with onnx.helper (a few kB each: each build takes well under a second)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipelines.consumer.targets import GPU_ENV, select_files
from pipelines.descriptor import Endpoint, parse_descriptor
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.registry.stores import LocalStore
from pipelines.runtimes import BACKENDS, TARGETS, build_folders, get_target, target_environment
from pipelines.runtimes.tensorrt.build import metadata_path
from pipelines.runtimes.tensorrt_rtx import build as rtx
from pipelines.runtimes.tensorrt_rtx.probe import runs_on
from pipelines.stages.runner import skip_reason
from pipelines.workspace import ModelContext
from tests.consumer_registry import Art, put_release
from tests.helpers import tiny_descriptor

ENV = target_environment("tensorrt_rtx")


def test_the_rtx_wheels_are_installed_and_probed() -> None:
    # Not a skip: without the wheels CI would silently stop building this target.
    assert ENV.available, ENV.reason
    assert ENV.key == "tensorrt_rtx-1.7"
    assert ENV.details == {"tensorrt_rtx": ENV.details["tensorrt_rtx"], "built_on": "cpu"}
    assert ENV.details["tensorrt_rtx"].startswith("1.7.")


def test_runtime_names_come_from_the_runtime_packages() -> None:
    assert BACKENDS == ("pytorch", "onnxruntime", "tensorrt", "tensorrt_rtx")
    assert TARGETS == ("onnxruntime", "tensorrt", "tensorrt_rtx")  # pytorch has no build


def conv_graph(path: Path, *, batch: int | str = 1, op: str = "Relu", qdq: bool = False) -> Path:
    """x[batch,3,8,8] -> Conv(4 filters) -> `op` -> y; with `qdq`, int8 Q/DQ on input and weights."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    nodes = []
    x, weight = "x", "w"
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
            numpy_helper.from_array(np.array(0, np.int8), "xz"),
            numpy_helper.from_array(np.full(4, 0.02, np.float32), "ws"),
            numpy_helper.from_array(np.zeros(4, np.int8), "wz"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="x_quant"),
            helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="x_dequant"),
            helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], name="w_quant", axis=0),
            helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="w_dequant", axis=0),
        ]
        x, weight = "xd", "wd"
    nodes.append(helper.make_node("Conv", [x, weight], ["c"], name="conv", pads=[1, 1, 1, 1]))
    domain = "" if op == "Relu" else "com.example"
    nodes.append(helper.make_node(op, ["c"], ["y"], name="activation", domain=domain))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])],
        inits,
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    if qdq:
        model.metadata_props.add(key="precision", value="int8")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def context(tmp_path: Path, *, dynamic: bool = False, capabilities: list[str] | None = None) -> ModelContext:
    data = tiny_descriptor("tiny")
    batch: Any = "batch" if dynamic else 1
    data["components"] = [
        {
            "name": "net",
            "inputs": [{"name": "x", "shape": [batch, 3, 8, 8]}],
            "outputs": [{"name": "y", "shape": [batch, 4, 8, 8]}],
            **({"dynamic_ranges": {"batch": {"min": 1, "opt": 2, "max": 4}}} if dynamic else {}),
        }
    ]
    data["build"] = {"targets": ["onnxruntime", "tensorrt", "tensorrt_rtx"], "precisions": ["fp32"]}
    if capabilities:
        data["build"]["rtx_compute_capabilities"] = capabilities
    return ModelContext(tmp_path, parse_descriptor(data, "models/tiny/model.yaml"))


def build(ctx: ModelContext, src: Path, sm: str = "sm86") -> tuple[Path, dict[str, Any]]:
    folder = f"{ENV.key}-{sm}"
    dest = ctx.target_dir(folder, "fp32") / "net.engine"
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest, rtx.build(src, dest, ctx, "net", folder=folder)


def test_engine_metadata_names_version_capability_and_what_ran(tmp_path: Path) -> None:
    ctx = context(tmp_path, dynamic=True)
    src = conv_graph(tmp_path / "net.onnx", batch="batch")
    engine, meta = build(ctx, src, "sm120")
    assert engine == tmp_path / "artifacts/tiny/build/tensorrt_rtx-1.7-sm120/fp32/net.engine"
    assert engine.stat().st_size == meta["engine_bytes"] > 0
    on_disk = json.loads(metadata_path(engine).read_text())
    assert on_disk == meta
    assert meta["runtime"] == "TensorRT-RTX" and meta["tensorrt_rtx"] == ENV.details["tensorrt_rtx"]  # type: ignore[index]
    assert "tensorrt" not in meta  # never reported as a TensorRT 10/11 build
    assert meta["compute_capability"] == "12.0" and meta["environment"] == "tensorrt_rtx-1.7-sm120"
    assert meta["profiles"] == [{"x": {"min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}}]
    assert meta["precision"] == "fp32" and meta["strongly_typed"] and meta["built_on"] == "cpu"
    assert meta["executed"] is False and "not executed" in meta["note"]


def test_metadata_inconsistent_with_its_engine_fails_the_check(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    src = conv_graph(tmp_path / "net.onnx")
    engine, meta = build(ctx, src, "sm86")
    metadata_path(engine).write_text(json.dumps({**meta, "compute_capability": "8.9"}))
    with pytest.raises(ModelzooError, match=r"compute_capability 8.9 does not match folder tensorrt_rtx-1.7-sm86"):
        rtx.check(engine, src, f"{ENV.key}-sm86")
    engine.write_bytes(b"")
    with pytest.raises(ModelzooError, match="empty plan"):
        rtx.check(engine, src, f"{ENV.key}-sm86")


def test_an_op_the_parser_rejects_fails_naming_the_node(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    src = conv_graph(tmp_path / "net.onnx", op="NoSuchOp")
    with pytest.raises(ModelzooError) as err:
        build(ctx, src)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{src}: TensorRT-RTX's ONNX parser failed")
    assert "'activation' (NoSuchOp)" in msg


def test_a_dynamic_input_without_a_profile_fails_the_build(tmp_path: Path) -> None:
    ctx = context(tmp_path)  # the descriptor says [1, 3, 8, 8]: no profile for the graph's dynamic batch
    src = conv_graph(tmp_path / "net.onnx", batch="batch")
    with pytest.raises(ModelzooError) as err:
        build(ctx, src)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{src}: TensorRT-RTX engine build failed")
    assert "profile" in msg.lower()


def test_int8_qdq_builds_smaller_than_fp32_where_weights_dominate(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    _, meta = build(ctx, conv_graph(tmp_path / "q.onnx", qdq=True), "sm89")
    assert meta["precision"] == "int8" and meta["engine_bytes"] > 0


def test_descriptor_names_a_capability_tensorrt_rtx_cannot_build(tmp_path: Path) -> None:
    with pytest.raises(DescriptorError) as err:
        context(tmp_path, capabilities=["sm86", "sm90"])
    assert str(err.value).startswith("models/tiny/model.yaml: build.rtx_compute_capabilities.1: 'sm90' is not a")


def test_one_folder_per_listed_capability(tmp_path: Path) -> None:
    ctx = context(tmp_path, capabilities=["sm80", "sm120"])
    assert build_folders("tensorrt_rtx", ctx, ENV) == {
        "tensorrt_rtx-1.7-sm80": {**ENV.details, "compute_capability": "8.0"},  # type: ignore[dict-item]
        "tensorrt_rtx-1.7-sm120": {**ENV.details, "compute_capability": "12.0"},  # type: ignore[dict-item]
    }
    assert get_target("tensorrt_rtx").SUFFIX == ".engine"


def test_which_gpus_run_rtx_engines() -> None:
    assert runs_on((8, 6)) and runs_on((12, 0)) and runs_on((12, 1)) and runs_on((13, 0))
    assert not runs_on((9, 0)) and not runs_on((7, 5)) and not runs_on((8, 7))


def test_endpoints_skip_saying_what_ran() -> None:
    import torch

    reason = skip_reason(Endpoint(backend="tensorrt_rtx", device="cuda", precision="fp16"))
    version = ".".join(ENV.details["tensorrt_rtx"].split(".")[:2])  # type: ignore[index]
    if not torch.cuda.is_available():
        assert reason == f"built by TensorRT-RTX {version} on the CPU, not executed: no CUDA GPU"
    elif not runs_on(torch.cuda.get_device_capability(0)):
        name = torch.cuda.get_device_name(0)
        assert reason and reason.endswith(f"{name}, sm{''.join(map(str, torch.cuda.get_device_capability(0)))}: "
                                           "not supported by TensorRT-RTX")  # fmt: skip
    assert skip_reason(Endpoint(backend="tensorrt_rtx", device="cpu")) == "tensorrt_rtx needs a cuda device, not cpu"


RTX_KEYS = ["tensorrt_rtx-1.7-sm80", "tensorrt_rtx-1.7-sm86", "tensorrt_rtx-1.7-sm120"]


@pytest.fixture
def rtx_release(tmp_path: Path) -> Any:
    arts = [Art("net.onnx", "onnx", b"onnx", "fp32")]
    arts += [Art("net.engine", key, key.encode(), "fp32") for key in RTX_KEYS]
    arts += [Art("net.engine", "tensorrt-10.13-sm86", b"trt", "fp32")]
    return put_release(LocalStore(tmp_path / "registry"), "1.0.0", {"net": arts}).models["net"]


def test_a_named_capability_selects_its_engines(rtx_release: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    picked = select_files(rtx_release, "tensorrt_rtx-sm86")
    assert [(f.target, f.name) for f in picked] == [("tensorrt_rtx-1.7-sm86", "net.engine")]
    monkeypatch.setenv(GPU_ENV, "sm120")  # named wins over the GPU
    assert [f.target for f in select_files(rtx_release, "tensorrt_rtx-sm80")] == ["tensorrt_rtx-1.7-sm80"]


def test_the_runtime_alone_picks_the_gpus_capability(rtx_release: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GPU_ENV, "sm120")
    assert [f.target for f in select_files(rtx_release, "tensorrt_rtx")] == ["tensorrt_rtx-1.7-sm120"]
    monkeypatch.setenv(GPU_ENV, "sm90")
    with pytest.raises(ModelzooError) as err:
        select_files(rtx_release, "tensorrt_rtx", release="release 1.0.0")
    assert str(err.value) == (
        "release 1.0.0: model 'net' has no files for this GPU (sm90) and target 'tensorrt_rtx' "
        f"(has: {', '.join(sorted(RTX_KEYS))})"
    )
    monkeypatch.setenv(GPU_ENV, "none")
    with pytest.raises(ModelzooError, match=r"no GPU was detected: pin one of them, e.g. tensorrt_rtx-sm120$"):
        select_files(rtx_release, "tensorrt_rtx")


RTX_SMS = ("sm80", "sm86", "sm89", "sm120")


@pytest.mark.slow
def test_publish_then_fetch_one_capability(pipeline_repo: Path, s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    """`dvc repro` built calibration_status's RTX engines for every precision and capability; a consumer
    naming sm86 gets exactly those engines (and the ROS parameters), byte for byte."""
    from tests.test_consumer_publish import modelzoo

    repo = Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))
    model = "calibration_status"
    build = repo / f"artifacts/{model}/build"
    report = json.loads((build / "build.json").read_text())["targets"]["tensorrt_rtx"]
    assert report["note"] == f"built by TensorRT-RTX 1.7 on the CPU, not executed: {supported_gpu_reason()}"
    engines = {p.relative_to(build).as_posix() for p in build.glob("tensorrt_rtx-*/*/*.engine")}
    assert engines == {
        f"tensorrt_rtx-1.7-{sm}/{p}/calibration_classifier.engine" for sm in RTX_SMS for p in ("fp32", "fp16", "int8")
    }
    s3 = ("--registry", f"s3://{s3_bucket}/registry", "--endpoint-url", s3_server.endpoint)
    modelzoo(repo, "publish", "--version", "v1.0.0", "--no-dvc-push", "--unsigned", *s3)
    from pipelines.registry.releases import read_manifest
    from pipelines.registry.stores import S3Store

    manifest = read_manifest(S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint), "1.0.0")
    assert manifest is not None
    envs = manifest.models[model].environments
    assert envs["tensorrt_rtx-1.7-sm86"] == {**ENV.details, "compute_capability": "8.6"}  # type: ignore[dict-item]
    assert {k for k in envs if k.startswith("tensorrt_rtx-")} == {f"tensorrt_rtx-1.7-{sm}" for sm in RTX_SMS}

    consumer = tmp_path / "autoware"
    consumer.mkdir()
    modelzoo(consumer, "pin", *s3, "--version", "1.0.0", "--models", model, "--target", "tensorrt_rtx-sm86")
    modelzoo(consumer, "fetch")
    dest = consumer / "autoware_data" / model
    got = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert got == {
        "calibration_classifier.engine",
        "fp16/calibration_classifier.engine",
        "int8/calibration_classifier.engine",
        *(p.name for p in (repo / f"artifacts/{model}/onnx").glob("*.param.yaml")),
        "modelzoo-release.json",
    }
    for precision, name in (("fp32", "calibration_classifier.engine"), ("int8", "int8/calibration_classifier.engine")):
        built = build / f"tensorrt_rtx-1.7-sm86/{precision}/calibration_classifier.engine"
        assert (dest / name).read_bytes() == built.read_bytes()


def supported_gpu_reason() -> str:
    from pipelines.runtimes.tensorrt_rtx.probe import supported_gpu

    device = supported_gpu()
    assert isinstance(device, str), "a GPU that runs RTX engines: this test expects the CPU machines"
    return device
