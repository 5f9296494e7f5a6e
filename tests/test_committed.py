"""`publish` only from what was committed: a real git repository and a real (tiny) DVC pipeline in tmp."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.registry.committed import DIRTY_EXIT, DirtyWorkspace, workspace_state
from pipelines.registry.manifest import BLEEDING_EDGE, Manifest
from pipelines.registry.publish import check_committed

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
# The stage names publish checks (dvc.yaml's export/build/verify/evaluate@<model>), each a copy.
DVC_YAML = {
    "stages": {
        name: {
            "foreach": ["m"],
            "do": {"cmd": f"mkdir -p out && cp {src} out/{name}.txt", "deps": [src], "outs": [f"out/{name}.txt"]},
        }
        for name, src in (
            ("export", "models/m/model.yaml"),
            ("build", "out/export.txt"),
            ("verify", "out/build.txt"),
            ("evaluate", "out/verify.txt"),
        )
    }
}


def sh(cwd: Path, *cmd: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("committed") / "repo"
    (repo / "models/m").mkdir(parents=True)
    (repo / "models/m/model.yaml").write_text("name: m\nopset: 17\n")
    (repo / "params.yaml").write_text(yaml.safe_dump({"models": {"m": {}}, "reference_models": []}))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, sys.executable, "-m", "dvc", "init", "-q")
    sh(repo, sys.executable, "-m", "dvc", "repro", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, *GIT, "commit", "-qm", "built")
    return repo


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    sh(tmp_path, "cp", "-a", str(built), str(dest))
    return dest


def test_clean_workspace(repo: Path) -> None:
    state = workspace_state(repo, ["m"])
    assert not state.dirty and state.diff_sha256 is None
    assert check_committed(repo, "1.0.0", ["m"], False) == (False, None)


def test_uncommitted_descriptor_refuses_a_release(repo: Path) -> None:
    (repo / "models/m/model.yaml").write_text("name: m\nopset: 18\n")  # edited, not committed
    with pytest.raises(DirtyWorkspace) as err:
        check_committed(repo, "1.1.0", ["m"], False)
    msg = str(err.value)
    assert err.value.exit_code == DIRTY_EXIT == 7 and "\n" not in msg
    assert msg.startswith("publish 1.1.0: the workspace is not HEAD: files differ from HEAD (models/m/model.yaml)")
    assert "commit them (git commit)" in msg and "never published from a dirty tree" in msg
    # --allow-dirty is for the bleeding edge only: it records the tree as dirty, with a hash of the diff.
    dirty, diff = check_committed(repo, BLEEDING_EDGE, ["m"], True)
    expected = workspace_state(repo, ["m"]).diff_sha256
    assert dirty and diff == expected and diff is not None and len(diff) == 64
    (repo / "models/m/model.yaml").write_text("name: m\nopset: 19\n")
    assert check_committed(repo, BLEEDING_EDGE, ["m"], True)[1] != diff  # another diff, another hash
    with pytest.raises(DirtyWorkspace):
        check_committed(repo, BLEEDING_EDGE, ["m"], False)


def test_untracked_file_in_a_model_folder_counts(repo: Path) -> None:
    (repo / "notes.txt").write_text("elsewhere: not published\n")
    assert not workspace_state(repo, ["m"]).dirty
    (repo / "models/m/extra.py").write_text("# published as provenance/model/extra.py\n")
    assert workspace_state(repo, ["m"]).changed == ["models/m/extra.py"]


def test_outputs_that_differ_from_dvc_lock(repo: Path) -> None:
    (repo / "out/build.txt").write_text("edited by hand\n")  # gitignored by DVC: git sees nothing
    state = workspace_state(repo, ["m"])
    assert state.changed == [] and state.stale == ["out/build.txt"] and state.stale_stages == ["build@m"]
    with pytest.raises(
        DirtyWorkspace, match=r"outputs differ from dvc.lock \(out/build.txt\): run `dvc repro build@m`"
    ):
        check_committed(repo, "1.0.0", ["m"], False)
    # Recorded on purpose and committed: clean again.
    sh(repo, sys.executable, "-m", "dvc", "commit", "-f", "-q", "build@m")
    assert workspace_state(repo, ["m"]).changed == ["dvc.lock"]
    sh(repo, *GIT, "commit", "-qam", "record")
    assert not workspace_state(repo, ["m"]).dirty


def test_dirty_manifest_fields_only_when_dirty() -> None:
    clean = Manifest(version="1.0.0")
    assert "dirty" not in clean.to_json()  # clean manifests read as before the field existed
    dirty = Manifest(version=BLEEDING_EDGE, dirty=True, dirty_diff_sha256="a" * 64)
    assert Manifest.model_validate_json(dirty.to_json()) == dirty and '"dirty": true' in dirty.to_json()
