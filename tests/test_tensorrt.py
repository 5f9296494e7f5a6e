"""The TensorRT target and backend without TensorRT: optimization profiles from the descriptor,
engine path keys, the timing cache location, and honest skipping where TensorRT cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.descriptor import Component, Endpoint, parse_descriptor
from pipelines.errors import ModelzooError
from pipelines.runtimes import BackendUnavailable, get_backend, get_target, target_environment
from pipelines.runtimes.tensorrt.build import (
    engine_path,
    metadata_path,
    profile_shapes,
    timing_cache_path,
)
from pipelines.runtimes.tensorrt.probe import KEY_PATTERN, UNAVAILABLE_KEY, environment_key, probe
from pipelines.stages.runner import skip_reason
from pipelines.workspace import ModelContext
from tests.helpers import tiny_descriptor

NO_TENSORRT = not probe().available


def centerpoint_like() -> Component:
    return Component.model_validate(
        {
            "name": "pts_voxel_encoder",
            "inputs": [
                {"name": "input_features", "shape": ["num_voxels", 32, 11]},
                {"name": "coords", "dtype": "int32", "shape": [1, "num_voxels", 4]},
                {"name": "scale", "shape": [1]},
            ],
            "outputs": [{"name": "pillar_features", "shape": ["num_voxels", 1, 32]}],
            "dynamic_ranges": {"num_voxels": {"min": 1000, "opt": 20000, "max": 96000}},
        }
    )


def test_profiles_come_from_the_descriptors_dynamic_ranges() -> None:
    shapes = profile_shapes(centerpoint_like(), "models/cp/model.yaml")
    assert shapes == {
        "input_features": ([1000, 32, 11], [20000, 32, 11], [96000, 32, 11]),
        "coords": ([1, 1000, 4], [1, 20000, 4], [1, 96000, 4]),
    }  # static inputs need no profile


def test_a_static_component_has_no_profile() -> None:
    comp = Component.model_validate(
        {"name": "c", "inputs": [{"name": "x", "shape": [1, 5, 64, 64]}], "outputs": [{"name": "y", "shape": [1, 2]}]}
    )
    assert profile_shapes(comp, "models/m/model.yaml") == {}


def test_a_dynamic_axis_without_a_range_is_a_one_line_descriptor_error() -> None:
    comp = centerpoint_like().model_copy(update={"dynamic_ranges": {}})
    with pytest.raises(ModelzooError) as err:
        profile_shapes(comp, "models/cp/model.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("models/cp/model.yaml: components.pts_voxel_encoder.dynamic_ranges: dynamic axis")
    assert "'num_voxels'" in msg and "'input_features'" in msg


def test_engine_keys_name_tensorrt_minor_version_and_compute_capability() -> None:
    assert environment_key("10.13.0.35", (8, 6)) == "tensorrt-10.13-sm86"
    assert environment_key("11.4.1", (9, 0)) == "tensorrt-11.4-sm90"
    assert environment_key("10.13.3.9", (8, 6)) == environment_key("10.13.0.35", (8, 6))  # patch: same engine
    assert environment_key("10.13.0", (8, 7)) != environment_key("10.13.0", (8, 6))  # Orin vs RTX 30xx
    assert KEY_PATTERN.match("tensorrt-10.13-sm86")
    # A skip never looks like a build for any GPU, so DVC reruns the build on a GPU machine.
    assert not KEY_PATTERN.match(UNAVAILABLE_KEY)
    assert target_environment("onnxruntime").key != UNAVAILABLE_KEY


def test_engines_for_several_gpus_live_side_by_side(tmp_path: Path) -> None:
    desc = parse_descriptor(tiny_descriptor("tiny"), "models/tiny/model.yaml")
    ctx = ModelContext(tmp_path, desc)
    a = engine_path(ctx, "tensorrt-10.13-sm86", "int8", "calibration_classifier")
    b = engine_path(ctx, "tensorrt-10.13-sm87", "int8", "calibration_classifier")
    assert a == tmp_path / "artifacts/tiny/build/tensorrt-10.13-sm86/int8/calibration_classifier.engine"
    assert a != b and a.parent.parent.parent == b.parent.parent.parent
    assert metadata_path(a) == a.with_name("calibration_classifier.engine.json")
    assert get_target("tensorrt").SUFFIX == ".engine"


def test_timing_cache_is_kept_per_environment_outside_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELZOO_TRT_CACHE_DIR", raising=False)
    default = timing_cache_path("tensorrt-10.13-sm86")
    assert default == Path.home() / ".cache/modelzoo/tensorrt/tensorrt-10.13-sm86.cache"
    monkeypatch.setenv("MODELZOO_TRT_CACHE_DIR", "/var/cache/runner")
    assert timing_cache_path("tensorrt-10.13-sm90") == Path("/var/cache/runner/tensorrt-10.13-sm90.cache")


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT and a GPU are here")
def test_without_tensorrt_the_target_is_unavailable_and_says_why() -> None:
    env = target_environment("tensorrt")
    assert not env.available and env.key == UNAVAILABLE_KEY
    assert env.reason and "\n" not in env.reason
    # tensorrt-stubs (installed for mypy) must not pass for TensorRT.
    assert "stubs" in env.reason or "import tensorrt failed" in env.reason or "no CUDA GPU" in env.reason


@pytest.mark.skipif(not NO_TENSORRT, reason="TensorRT and a GPU are here")
def test_tensorrt_endpoints_are_skipped_with_the_probes_reason() -> None:
    ep = Endpoint(backend="tensorrt", device="cuda", precision="fp16")
    assert skip_reason(ep) == probe().reason
    with pytest.raises(BackendUnavailable):
        get_backend("tensorrt").check(ep)


def test_tensorrt_needs_a_cuda_device_endpoint() -> None:
    reason = skip_reason(Endpoint(backend="tensorrt", device="cpu"))
    assert reason  # never runs on the CPU: either TensorRT is missing, or the endpoint says cpu
    if not NO_TENSORRT:
        assert reason == "tensorrt needs a cuda device, not cpu"
