"""GPU suite: runs against the repository's own models (after `dvc repro` or `modelzoo export`), in a
scratch root that links to the repository's models, data and exported ONNX files, so that builds,
verify reports and metrics written here never replace the repository's artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.gitrepo import find_root
from pipelines.workspace import ARTIFACTS, load_params

# Written by stages; everything else under artifacts/<model>/ (onnx, reference) is linked.
STAGE_OUTPUTS = {"build", "verify.json", "metrics.json", "plots"}


def scratch_root(repo: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in repo.iterdir():
        if entry.name not in (ARTIFACTS, ".git", ".dvc", ".venv"):
            os.symlink(entry, dest / entry.name)
    for model_dir in (repo / ARTIFACTS).glob("*"):
        if model_dir.is_dir():
            (dest / ARTIFACTS / model_dir.name).mkdir(parents=True)
            for entry in model_dir.iterdir():
                if entry.name not in STAGE_OUTPUTS:
                    os.symlink(entry, dest / ARTIFACTS / model_dir.name / entry.name)
    return dest


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return find_root(Path(__file__).parent)


@pytest.fixture(scope="session")
def scratch(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_root(repo_root, tmp_path_factory.mktemp("gpu") / "root")


def bundled_models() -> list[str]:
    return list(load_params(find_root(Path(__file__).parent))["models"])
