"""The recipe that data and training depend on: which model-folder files it hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.descriptor import load_descriptor
from pipelines.errors import DescriptorError
from pipelines.reference import recipe
from pipelines.workspace import ModelContext
from tests.helpers import bundled_subset_repo, modelzoo, read_yaml, write_yaml

MODEL = "centerpoint"


def _ctx(root: Path) -> ModelContext:
    return ModelContext(root, load_descriptor(root, MODEL))  # not model_context: that one caches the descriptor


def _with_exclude(root: Path, patterns: list[str]) -> None:
    path = root / "models" / MODEL / "model.yaml"
    desc = read_yaml(path)
    desc["reference"]["exclude"] = patterns
    write_yaml(path, desc)


def _export_only_file(root: Path) -> Path:
    """A provider's own export code (the bundled folder has none: the task splits CenterPoint)."""
    path = root / "models" / MODEL / "export.py"
    path.write_text("def components(detector, cfg):\n    return {}\n")
    return path


def test_excluded_files_leave_the_recipe_and_edits_to_them_do_not_change_it(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    export = _export_only_file(root)
    _with_exclude(root, ["export.py"])
    before = recipe(_ctx(root))
    assert set(before["files"]) == {"config.py", "reference.py"}
    export.write_text(export.read_text() + "\n# export-only edit\n")
    assert recipe(_ctx(root)) == before
    config = root / "models" / MODEL / "config.py"
    config.write_text(config.read_text() + "\n# training config edit\n")
    assert recipe(_ctx(root))["files"]["config.py"] != before["files"]["config.py"]


def test_an_exclude_pattern_matching_no_file_is_a_descriptor_error(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    _export_only_file(root)
    _with_exclude(root, ["export.py", "exprot.py"])
    with pytest.raises(DescriptorError, match=r"reference.exclude\[1\]: 'exprot.py' matches no file"):
        recipe(_ctx(root))
    proc = modelzoo(["reference", "recipe", MODEL], root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "reference.exclude[1]" in proc.stderr.strip().splitlines()[-1]


def test_training_inputs_of_the_descriptor_change_the_recipe_and_checks_do_not(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    path = root / "models" / MODEL / "model.yaml"
    before = recipe(_ctx(root))
    desc = read_yaml(path)
    desc["verification"]["samples"] += 1
    desc["build"]["calibration_samples"] += 1
    desc["evaluation"]["budget"]["int8"] = 0.02
    desc["components"][0]["dynamic_ranges"]["num_voxels"]["opt"] += 1
    write_yaml(path, desc)
    assert recipe(_ctx(root)) == before
    desc["task_options"]["info_file"] = "other_infos.pkl"
    write_yaml(path, desc)
    assert recipe(_ctx(root))["task_options"] != before["task_options"]


def test_an_exclude_pattern_may_not_hide_code_that_training_reads(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    _with_exclude(root, ["*.py"])
    with pytest.raises(DescriptorError, match=r"reference.exclude\[0\]: '\*.py' matches reference.py, which training"):
        recipe(_ctx(root))
