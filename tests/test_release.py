"""The versioning rules (`modelzoo release check`) and release notes (`modelzoo release diff`).

Each rule is triggered the way it happens in the repository: a retrained weight, an edited descriptor,
a new ROS parameter, a model added or removed; the current build is compared with a published release.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_registry_helpers import MODEL, Registry, change_weights, clone_built, commit_workspace, modelzoo, restamp

from pipelines.errors import ModelzooError
from pipelines.registry.entry import local_models
from pipelines.registry.manifest import Manifest
from pipelines.registry.publish import publish
from pipelines.registry.releases import read_manifest
from pipelines.registry.versioning import compare, required_bump, tag_bump

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(pipeline_repo: Path, tmp_path: Path) -> Path:
    return clone_built(pipeline_repo, tmp_path / "repo")


@pytest.fixture
def released(repo: Path, tmp_path: Path) -> tuple[Registry, Manifest]:
    """Release 1.0.0 of the repo as built, in a local registry."""
    reg = Registry(str(tmp_path / "registry"), None)
    publish(repo, reg.store(), "1.0.0", push_dvc=False)
    manifest = read_manifest(reg.store(), "1.0.0")
    assert manifest is not None
    return reg, manifest


def _edit_descriptor(repo: Path, edit) -> None:  # type: ignore[no-untyped-def]
    from pipelines.workspace import model_context

    path = repo / "models" / MODEL / "model.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    model_context.cache_clear()  # descriptors are cached per process; a CLI run starts afresh


def _check(repo: Path, previous: Manifest) -> tuple[str, list[str]]:
    changes = compare(previous, {n: m.entry for n, m in local_models(repo).items()})
    return required_bump(changes), [f"{c.level} {c.model}: {c.reason}" for c in changes]


def test_unchanged_or_restamped_needs_z(repo: Path, released: tuple[Registry, Manifest]) -> None:
    restamp(repo, "2" * 40)
    assert _check(repo, released[1]) == ("Z", [f"Z {MODEL}: unchanged"])


def test_changed_weights_need_y(repo: Path, released: tuple[Registry, Manifest]) -> None:
    change_weights(repo)
    level, reasons = _check(repo, released[1])
    assert level == "Y" and any("fingerprint changed" in r for r in reasons)


def test_changed_build_option_needs_y(repo: Path, released: tuple[Registry, Manifest]) -> None:
    _edit_descriptor(repo, lambda d: d["build"].update(workspace_mib=2048))
    level, reasons = _check(repo, released[1])
    assert level == "Y" and f"Y {MODEL}: build options changed (workspace_mib)" in reasons


def test_added_model_needs_y_and_removed_model_needs_x(repo: Path, released: tuple[Registry, Manifest]) -> None:
    current = {n: m.entry for n, m in local_models(repo).items()}
    empty = released[1].model_copy(update={"models": {}})
    added = compare(empty, current)
    assert required_bump(added) == "Y" and added[0].reason == "model added"
    removed = compare(released[1], {})
    assert required_bump(removed) == "X" and removed[0].reason == "model removed or renamed"


def test_changed_io_signature_needs_x(repo: Path, released: tuple[Registry, Manifest]) -> None:
    """An output renamed in the descriptor and in the exported file (as a re-export gives; a descriptor
    edit alone is refused before publishing)."""
    import onnx

    def rename_output(d: dict) -> None:  # type: ignore[type-arg]
        d["components"][0]["outputs"][0]["name"] = "logits"

    _edit_descriptor(repo, rename_output)
    path = repo / "artifacts" / MODEL / "onnx" / "calibration_classifier.onnx"
    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["logits" if o == old else o for o in node.output]
    model.graph.output[0].name = "logits"
    onnx.save(model, str(path))
    level, reasons = _check(repo, released[1])
    assert level == "X" and f"X {MODEL}: I/O signature changed (calibration_classifier)" in reasons


def test_changed_ros_parameter_keys_need_x(repo: Path, tmp_path: Path) -> None:
    param = repo / "artifacts" / MODEL / "onnx" / "calibration_status.param.yaml"
    param.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"threshold": 0.5, "model_version": "1.0.0"}}}))
    commit_workspace(repo)
    reg = Registry(str(tmp_path / "reg"), None)
    publish(repo, reg.store(), "1.0.0", push_dvc=False)
    previous = read_manifest(reg.store(), "1.0.0")
    assert previous is not None and previous.models[MODEL].ros_param_keys == {
        "calibration_status": ["model_version", "threshold"]
    }
    param.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"score_threshold": 0.5, "model_version": "1.0.0"}}}))
    level, reasons = _check(repo, previous)
    assert level == "X"
    assert f"X {MODEL}: ROS parameter keys changed (calibration_status: +score_threshold, -threshold)" in reasons
    # A value change keeps the key set: not an API change.
    param.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"threshold": 0.7, "model_version": "1.0.0"}}}))
    assert _check(repo, previous)[0] == "Z"


def test_interface_major_change_needs_x(repo: Path, released: tuple[Registry, Manifest]) -> None:
    old = released[1].model_copy(update={"interface_version": "0.9.0"})
    level, reasons = _check(repo, old)
    assert level == "X" and any("descriptor interface 0.9.0" in r for r in reasons)


def test_tag_bump() -> None:
    assert [tag_bump("1.2.3", t) for t in ("2.0.0", "1.3.0", "1.2.4")] == ["X", "Y", "Z"]
    for bad in ("1.2.3", "1.1.0", "2.1.0", "1.3.1"):
        with pytest.raises(ModelzooError):
            tag_bump("1.2.3", bad)


def test_release_check_cli(repo: Path, released: tuple[Registry, Manifest]) -> None:
    reg = released[0]
    ok = modelzoo(repo, "release", "check", "v1.0.1", *reg.cli_args(), check=True)
    assert "bumps Z from 1.0.0; the changes need Z" in ok.stdout
    change_weights(repo)
    small = modelzoo(repo, "release", "check", "v1.0.1", *reg.cli_args())
    assert small.returncode == 5
    assert small.stderr.strip() == "error: v1.0.1: a Y bump from 1.0.0 is needed, the tag bumps only Z"
    assert f"Y  {MODEL}: fingerprint changed" in small.stdout
    modelzoo(repo, "release", "check", "v1.1.0", *reg.cli_args(), check=True)
    bad = modelzoo(repo, "release", "check", "v1.1", *reg.cli_args())
    assert (
        bad.returncode == 2 and bad.stderr.strip() == "error: version 'v1.1': expected vX.Y.Z or X.Y.Z (numbers only)"
    )


def test_release_diff_markdown(repo: Path, released: tuple[Registry, Manifest], tmp_path: Path) -> None:
    reg, first = released
    change_weights(repo)
    publish(repo, reg.store(), "1.1.0", push_dvc=False)
    second = read_manifest(reg.store(), "1.1.0")
    assert second is not None
    out = tmp_path / "notes.md"
    modelzoo(repo, "release", "diff", "1.0.0", "v1.1.0", "-o", str(out), *reg.cli_args(), check=True)
    notes = out.read_text()
    a, b = first.models[MODEL], second.models[MODEL]
    assert notes.startswith("# Changes from 1.0.0 to 1.1.0\n")
    assert "Required bump: **Y**." in notes
    assert f"- artifact version: {a.artifact_version} -> {b.artifact_version}" in notes
    onnx_a = next(f for f in a.files if f.name == "calibration_classifier.onnx")
    assert f"| onnx | calibration_classifier.onnx | changed | {onnx_a.sha256[:12]} |" in notes
    assert "| onnxruntime-cpu-fp32 |" in notes  # metrics and latency per endpoint, with deltas
    missing = modelzoo(repo, "release", "diff", "1.0.0", "9.9.9", *reg.cli_args())
    assert missing.returncode == 1 and "releases/9.9.9/manifest.json: not found" in missing.stderr
