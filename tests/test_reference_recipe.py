"""The recipe that data and training depend on: which model-folder files it hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import DescriptorError
from pipelines.reference import recipe
from pipelines.workspace import model_context
from tests.helpers import bundled_subset_repo, modelzoo, read_yaml, write_yaml

MODEL = "centerpoint"


def _with_exclude(root: Path, patterns: list[str]) -> None:
    path = root / "models" / MODEL / "model.yaml"
    desc = read_yaml(path)
    desc["reference"]["exclude"] = patterns
    write_yaml(path, desc)


def test_excluded_files_leave_the_recipe_and_edits_to_them_do_not_change_it(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    _with_exclude(root, ["export.py"])
    before = recipe(model_context(root, MODEL))
    assert set(before["files"]) == {"config.py", "reference.py"}
    export = root / "models" / MODEL / "export.py"
    export.write_text(export.read_text() + "\n# export-only edit\n")
    assert recipe(model_context(root, MODEL)) == before
    config = root / "models" / MODEL / "config.py"
    config.write_text(config.read_text() + "\n# training config edit\n")
    assert recipe(model_context(root, MODEL))["files"]["config.py"] != before["files"]["config.py"]


def test_an_exclude_pattern_matching_no_file_is_a_descriptor_error(tmp_path: Path) -> None:
    root = bundled_subset_repo(tmp_path / "repo", [MODEL])
    _with_exclude(root, ["export.py", "exprot.py"])
    with pytest.raises(DescriptorError, match=r"reference.exclude\[1\]: 'exprot.py' matches no file"):
        recipe(model_context(root, MODEL))
    proc = modelzoo(["reference", "recipe", MODEL], root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "reference.exclude[1]" in proc.stderr.strip().splitlines()[-1]
