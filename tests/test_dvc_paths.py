"""The developers' DVC paths to artifacts, against an S3 DVC remote on moto's server:
`dvc pull <one model's stage or outputs>` in a clone, and `dvc get <repo> <path> --rev vX.Y.Z`
from a bare git repository carrying two release tags whose outputs differ.

The test repository mirrors this project's graph: a `foreach` stage `export@<model>` whose output
is `artifacts/<model>/onnx` (a tiny file per model, so that the test takes seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import S3Server

BIN = Path(sys.executable).parent

DVC_YAML = """\
stages:
  export:
    foreach: ${models}
    do:
      cmd: python make_onnx.py ${key}
      params:
        - models.${key}
      deps:
        - make_onnx.py
      outs:
        - artifacts/${key}/onnx
"""

MAKE_ONNX = """\
import sys
from pathlib import Path

import yaml

model = sys.argv[1]
revision = yaml.safe_load(Path("params.yaml").read_text())["models"][model]["revision"]
out = Path("artifacts") / model / "onnx"
out.mkdir(parents=True, exist_ok=True)
(out / f"{model}.onnx").write_text(f"{model} weights, revision {revision}\\n")
"""


def onnx_text(model: str, revision: int) -> str:
    return f"{model} weights, revision {revision}\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site"),
        "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def sh(env: dict[str, str], cwd: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def set_revisions(repo: Path, revisions: dict[str, int]) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump({"models": {m: {"revision": r} for m, r in revisions.items()}}))


@dataclass(frozen=True)
class Origin:
    bare: Path  # a bare git repository with tags v1.0.0 and v1.1.0
    registry: str  # the S3 registry whose dvc/ folder holds the outputs
    endpoint: str


@pytest.fixture(scope="module")
def origin(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Origin:
    """v1.0.0 (alpha rev 1, beta rev 1) and v1.1.0 (alpha rev 2), outputs pushed to the S3 registry."""
    registry = f"s3://{s3_server.new_bucket('dvc')}/registry"
    tmp_path = tmp_path_factory.mktemp("origin")
    work = tmp_path / "work"
    work.mkdir()
    sh(env, work, "git", "init", "-q", "-b", "main")
    sh(env, work, "dvc", "init", "-q")
    # As in this repository: the committed default remote is the embedded local registry, and
    # `modelzoo ci dvc-remote` points it at the S3 registry in .dvc/config.local (never committed).
    sh(env, work, "dvc", "remote", "add", "-d", "registry", "../registry/dvc")
    sh(env, work, "dvc", "remote", "modify", "registry", "verify", "true")
    (work / "dvc.yaml").write_text(DVC_YAML)
    (work / "make_onnx.py").write_text(MAKE_ONNX)
    set_revisions(work, {"alpha": 1, "beta": 1})
    sh(env, work, "modelzoo", "ci", "dvc-remote", "--registry", registry, "--endpoint", s3_server.endpoint)
    for tag, revisions in (("v1.0.0", {"alpha": 1, "beta": 1}), ("v1.1.0", {"alpha": 2, "beta": 1})):
        set_revisions(work, revisions)
        sh(env, work, "dvc", "repro", "-q")
        sh(env, work, "dvc", "push", "-q")
        sh(env, work, "git", "add", "-A")
        sh(env, work, "git", "commit", "-qm", f"release {tag}")
        sh(env, work, "git", "tag", tag)
    bare = tmp_path / "origin.git"
    sh(env, tmp_path, "git", "clone", "-q", "--bare", str(work), str(bare))
    return Origin(bare, registry, s3_server.endpoint)


def test_dvc_pull_fetches_one_model_only(origin: Origin, tmp_path: Path, env: dict[str, str]) -> None:
    clone = tmp_path / "clone"
    sh(env, tmp_path, "git", "clone", "-q", str(origin.bare), str(clone))
    sh(env, clone, "modelzoo", "ci", "dvc-remote", "--registry", origin.registry, "--endpoint", origin.endpoint)

    sh(env, clone, "dvc", "pull", "export@alpha")

    assert (clone / "artifacts/alpha/onnx/alpha.onnx").read_text() == onnx_text("alpha", 2)
    assert not (clone / "artifacts/beta/onnx").exists()  # (artifacts/beta/.gitignore is in git)
    status = sh(env, clone, "dvc", "status", "export@beta")
    assert "not in cache:" in status and "artifacts/beta/onnx" in status  # beta's objects were not downloaded

    # The output path works as a target too.
    sh(env, clone, "dvc", "pull", "artifacts/beta/onnx")
    assert (clone / "artifacts/beta/onnx/beta.onnx").read_text() == onnx_text("beta", 1)


def test_dvc_get_by_release_tag(origin: Origin, tmp_path: Path, env: dict[str, str]) -> None:
    # A remote of another name: `--remote-config` on the committed (local) remote cannot make it an S3 one.
    s3 = ("--remote", "s3", "--remote-config", f"url={origin.registry}/dvc", f"endpointurl={origin.endpoint}")
    for tag, revision in (("v1.0.0", 1), ("v1.1.0", 2)):
        out = tmp_path / f"alpha-{tag}"
        sh(env, tmp_path, "dvc", "get", str(origin.bare), "artifacts/alpha/onnx", "--rev", tag, "-o", str(out), *s3)
        assert (out / "alpha.onnx").read_text() == onnx_text("alpha", revision)
        assert [p.name for p in out.iterdir()] == ["alpha.onnx"]

    def get(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = ["dvc", "get", str(origin.bare), "artifacts/alpha/onnx", "-o", str(tmp_path / "x"), *args]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    # The committed remote (the embedded local registry) does not serve a consumer: the S3 one did.
    assert get("--rev", "v1.0.0").returncode != 0
    missing = get("--rev", "v9.9.9", *s3)
    assert missing.returncode != 0 and "v9.9.9" in missing.stderr
