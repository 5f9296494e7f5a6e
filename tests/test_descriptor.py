"""Descriptor validation: good ones load, bad ones fail with `file: field.path: reason`, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.descriptor import load_descriptor
from pipelines.errors import DescriptorError
from tests.helpers import REPO, make_repo, modelzoo, read_yaml, tiny_descriptor, write_yaml


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"tiny": tiny_descriptor("tiny")}, git=False)


def set_field(repo: Path, dotted: str, value: object) -> None:
    path = repo / "models" / "tiny" / "model.yaml"
    data = read_yaml(path)
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    write_yaml(path, data)


DELETE = object()


def test_bundled_descriptors_are_valid() -> None:
    proc = modelzoo(["validate"], REPO)
    assert proc.stdout.startswith("ok:"), proc.stdout
    desc = load_descriptor(REPO, "calibration_status")
    assert desc.task == "classification"
    assert desc.components[0].inputs[0].shape == [1, 5, 64, 64]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("task", DELETE, "models/tiny/model.yaml: task: Field required"),
        ("task", "segmentation", "models/tiny/model.yaml: task: Input should be 'classification'"),
        ("version", "1.0", "models/tiny/model.yaml: version: '1.0' is not a semantic version"),
        ("name", "other", "models/tiny/model.yaml: name: 'other' differs from its folder name 'tiny'"),
        ("components.0.opset", 5, "models/tiny/model.yaml: components.0.opset: Input should be greater than or equal"),
        ("components.0.inputs.0.dtype", "float64", "models/tiny/model.yaml: components.0.inputs.0.dtype: Input should"),
        ("source.factory", "no-colon", "models/tiny/model.yaml: source: kind 'torch' needs factory"),
        (
            "verification.scenarios.0.test.device",
            "gpu0",
            "verification.scenarios.0.test.device: 'gpu0' is not a device",
        ),
        (
            "verification.scenarios.0.test.precision",
            "int8",
            "verification.scenarios.0.test.precision: 'int8' is not built",
        ),
        ("build.targets", ["onnxruntime"], "verification.scenarios.1.test: tensorrt is not a build target"),
        ("build.precisions", ["fp16"], "build.precisions: fp32 must be listed"),
        ("surprise", 1, "models/tiny/model.yaml: surprise: Extra inputs are not permitted"),
        ("task_options.std", [1.0, 1.0, 1.0, 1.0, 0.0], "task_options: (top level): std must be positive"),
    ],
)
def test_bad_descriptor_one_line_error(repo: Path, field: str, value: object, expected: str) -> None:
    set_field(repo, field, value)
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], lines[0]


def test_malformed_yaml_names_the_line(repo: Path) -> None:
    path = repo / "models" / "tiny" / "model.yaml"
    path.write_text(path.read_text() + "\nbroken: [unclosed\n")
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: models/tiny/model.yaml: line "), proc.stderr
    assert "invalid YAML" in proc.stderr


def test_not_a_mapping(repo: Path) -> None:
    (repo / "models" / "tiny" / "model.yaml").write_text("- just\n- a list\n")
    with pytest.raises(DescriptorError, match=r"models/tiny/model.yaml: \(top level\): expected a mapping"):
        load_descriptor(repo, "tiny")


def test_unknown_model(repo: Path) -> None:
    proc = modelzoo(["export", "nope"], repo, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: models/nope/model.yaml: unknown model 'nope' (known: tiny)"


def test_params_wiring_must_match_descriptor(repo: Path) -> None:
    params = read_yaml(repo / "params.yaml")
    params["models"]["tiny"]["dataset"] = "data/elsewhere"
    write_yaml(repo / "params.yaml", params)
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2
    assert "params.yaml: models.tiny.dataset: is 'data/elsewhere'" in proc.stderr


def test_model_folder_missing_from_params(repo: Path) -> None:
    write_yaml(repo / "models" / "extra" / "model.yaml", tiny_descriptor("extra"))
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2
    assert "params.yaml: models.extra: missing" in proc.stderr


def test_dynamic_ranges_must_name_a_dynamic_axis(repo: Path) -> None:
    set_field(repo, "components.0.dynamic_ranges", {"batch": {"min": 1, "opt": 2, "max": 4}})
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2
    assert "components.0: dynamic_ranges names ['batch'], not a dynamic input axis" in proc.stderr


def test_dynamic_range_order(repo: Path) -> None:
    set_field(repo, "components.0.inputs.0.shape", ["batch", 5, 16, 16])
    set_field(repo, "components.0.dynamic_ranges", {"batch": {"min": 4, "opt": 2, "max": 8}})
    proc = modelzoo(["validate"], repo, check=False)
    assert proc.returncode == 2
    assert "dynamic_ranges.batch: needs min <= opt <= max, got 4/2/8" in proc.stderr


def test_runtime_names_match_the_runtimes_folder() -> None:
    """The descriptor owns the backend and target names (runtimes import the descriptor); the runtime
    folders must offer exactly those: a session.py per backend, a build.py and probe.py per target."""
    from pipelines import descriptor, runtimes

    assert descriptor.BACKENDS == runtimes.BACKENDS
    assert descriptor.TARGETS == runtimes.TARGETS
