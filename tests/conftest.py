"""Shared fixtures: a real S3 server (moto's, over HTTP on 127.0.0.1) and repository helpers."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Never reach a real AWS endpoint or the instance metadata service from a test.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "DVC_NO_ANALYTICS": "1",
    }
)
# Tools of this environment (modelzoo, dvc, actionlint...) first on PATH, also when the venv is not
# activated (the README's test command runs .venv/bin/python directly).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

from scripts.local_hub import free_port  # noqa: E402 (one free-port helper for the tests and scripts)


@dataclass
class S3Server:
    endpoint: str
    server: object

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def new_bucket(self, prefix: str = "zoo") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 on a free port, for the whole session; stopped at the end."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}", server)
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    return s3_server.new_bucket()


REPRO_LOG = ".git/modelzoo-repro.log"


def copy_repo(dest: Path) -> Path:
    """The working tree's tracked and unignored files (no artifacts, data or caches) in a fresh git repo."""
    import shutil
    import subprocess

    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("artifacts/", "data/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository, calibration_status alone wired in params.yaml, where `modelzoo repro` ran
    its whole graph (once per session; its output is in `REPRO_LOG`).

    Tests copy it (`shutil.copytree`) before changing anything.
    """
    import shutil

    repo = tmp_path_factory.mktemp("pipeline") / "repo"
    if prebuilt := os.environ.get("MODELZOO_TEST_PIPELINE_REPO"):
        # Local iteration only: reuse a repository built by build_pipeline_repo() earlier.
        return Path(shutil.copytree(prebuilt, repo, symlinks=True))
    return build_pipeline_repo(repo)


def build_pipeline_repo(repo: Path) -> Path:
    import subprocess
    import sys

    import yaml

    copy_repo(repo)
    # Only calibration_status is wired: the release holds exactly the model built here.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"] = {"calibration_status": params["models"]["calibration_status"]}
    params["reference_models"] = ["calibration_status"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MODELZOO_ROOT", None)
    done = subprocess.run(["modelzoo", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # What the fresh repro printed, for tests/test_e2e_dvc.py (inside .git: copied along, never committed).
    (repo / REPRO_LOG).write_text(done.stdout)
    # Committed, as CI leaves main: publish refuses a workspace that differs from HEAD.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "repro"], cwd=repo, check=True)
    return repo
