"""A matrix leg hands its results to the publish job: bundle -> merge -> dvc pull -> verified, over S3."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.ci.bundle import cached_outputs, make_bundle, merge_bundles
from pipelines.ci.commit import commit_back
from pipelines.ci.verified import check_verified
from pipelines.errors import ModelzooError, UsageError, VerificationFailed
from pipelines.registry.dvcremote import configure_remote
from pipelines.registry.location import RegistryLocation
from pipelines.registry.stores import RegistryError

REPO = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]

DVC_YAML = """
stages:
  make:
    foreach: ${models}
    do:
      cmd: python make.py ${key}
      deps: [make.py, "src-${key}.txt"]
      outs:
        - artifacts/${key}/out.bin
        - artifacts/${key}/verify.json:
            cache: false
"""
MAKE = """
import json, pathlib, sys
name = sys.argv[1]
d = pathlib.Path("artifacts") / name
d.mkdir(parents=True, exist_ok=True)
(d / "out.bin").write_bytes(pathlib.Path(f"src-{name}.txt").read_bytes() * 3 + name.encode())
skipped = {"a_vs_tensorrt": {"status": "skipped", "reason": "no GPU"}}
(d / "verify.json").write_text(json.dumps({"status": "pass", "scenarios": skipped}))
"""


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project with two models (descriptors copied from calibration_status) and one stage each."""
    root = tmp_path / "origin-work"
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, *DVC, "init", "-q")
    for name in ("one", "two"):
        src = (REPO / "models/calibration_status/model.yaml").read_text().replace("calibration_status", name)
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "model.yaml").write_text(src)
    (root / "params.yaml").write_text("models:\n  one: {}\n  two: {}\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "make.py").write_text(MAKE)
    for name in ("one", "two"):
        (root / f"src-{name}.txt").write_text("v1\n")
    sh(root, *DVC, "repro", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "init")
    return root


def test_verified_passes_then_names_the_stale_stage(project: Path) -> None:
    result = check_verified(project)
    assert result.models == ["one", "two"] and result.skipped == {
        "one: a_vs_tensorrt": "no GPU",
        "two: a_vs_tensorrt": "no GPU",
    }
    (project / "artifacts/two/out.bin").write_bytes(b"tampered")
    with pytest.raises(ModelzooError, match=r"dvc.lock: stage 'make@two' is not up to date here"):
        check_verified(project)
    sh(project, *DVC, "checkout", "-q", "--force")
    (project / "artifacts/one/verify.json").write_text(json.dumps({"status": "fail"}))
    sh(project, *DVC, "commit", "-q", "-f")  # a lock that records a failed verification is still refused
    with pytest.raises(VerificationFailed, match=r"artifacts/one/verify.json: status is 'fail'"):
        check_verified(project)


def test_leg_bundle_merge_and_pull_over_s3(project: Path, tmp_path: Path, s3_server, s3_bucket: str) -> None:  # type: ignore[no-untyped-def]
    registry = f"s3://{s3_bucket}/zoo"
    assert configure_remote(project, RegistryLocation.parse(registry, s3_server.endpoint)) == f"{registry}/dvc"
    sh(project, *DVC, "push", "-q")  # what earlier runs left in the registry
    sh(project, "git", "branch", "before")

    # A push-to-main leg rebuilt `two` (its source changed) and pushed it to the registry's DVC remote.
    (project / "src-two.txt").write_text("v2\n")
    sh(project, "git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-am", "two v2")
    origin = tmp_path / "origin.git"
    sh(tmp_path, "git", "clone", "-q", "--bare", str(project), str(origin))
    publish = tmp_path / "publish"  # the publish job's checkout of that commit
    sh(tmp_path, "git", "clone", "-q", str(origin), str(publish))
    (publish / "artifacts/two/.gitignore").unlink()  # as for a model no one ran `dvc repro` for yet
    sh(project, *DVC, "repro", "-q")
    sh(project, *DVC, "push", "-q", "make@two")
    bundles = tmp_path / "bundles"
    assert make_bundle(project, "two", "x86_64", bundles / "bundle-two-x86_64") == ["artifacts/two/verify.json"]
    make_bundle(project, "two", "aarch64", bundles / "bundle-two-aarch64")

    assert merge_bundles(publish, sorted(bundles.iterdir())) == ["two"]  # the Jetson leg only gates
    configure_remote(publish, RegistryLocation.parse(registry, s3_server.endpoint))
    sh(publish, *DVC, "pull", "-q")
    assert (publish / "artifacts/two/out.bin").read_bytes() == b"v2\n" * 3 + b"two"
    assert check_verified(publish).models == ["one", "two"]
    # The commit-back carries dvc.lock and the uncached results; the cached bytes stay in the DVC remote.
    assert (publish / "artifacts/two/.gitignore").read_text() == "/out.bin\n"
    pushed = commit_back(publish, ["dvc.lock", "artifacts"], "results", exclude=cached_outputs(publish))
    tree = sh(origin, "git", "ls-tree", "-r", "--name-only", "main").split()
    assert pushed and "artifacts/two/.gitignore" in tree and "artifacts/two/out.bin" not in tree
    assert (
        sh(origin, "git", "show", "main:artifacts/two/verify.json")
        == (project / "artifacts/two/verify.json").read_text()
    )

    # Without the merge, the checkout's dvc.lock is the stale one: refused, naming the stage.
    stale = tmp_path / "stale"
    sh(tmp_path, "git", "clone", "-q", str(project), str(stale))
    configure_remote(stale, RegistryLocation.parse(registry, s3_server.endpoint))
    sh(stale, *DVC, "pull", "-q", "--allow-missing")
    with pytest.raises(ModelzooError, match=r"stage 'make@two'"):
        check_verified(stale)

    with pytest.raises(UsageError, match="no stage of model 'ghost'"):
        make_bundle(project, "ghost", "x86_64", tmp_path / "ghost")
    with pytest.raises(UsageError, match="not a bundle"):
        merge_bundles(publish, [tmp_path])


def test_pull_request_leg_bundles_its_outputs(project: Path, tmp_path: Path) -> None:
    """A pull request's leg cannot `dvc push`: its bundle carries the built bytes themselves."""
    report = tmp_path / "report"
    sh(tmp_path, "git", "clone", "-q", str(project), str(report))
    (project / "src-two.txt").write_text("pr\n")
    (report / "src-two.txt").write_text("pr\n")
    sh(project, *DVC, "repro", "-q")
    files = make_bundle(project, "two", "x86_64", tmp_path / "b", with_outputs=True)
    assert files == ["artifacts/two/out.bin", "artifacts/two/verify.json"]
    merge_bundles(report, [tmp_path / "b"])
    data = (report / "artifacts/two/out.bin").read_bytes()
    assert data == b"pr\n" * 3 + b"two"
    lock = yaml.safe_load((report / "dvc.lock").read_text())["stages"]["make@two"]
    out = next(o for o in lock["outs"] if o["path"] == "artifacts/two/out.bin")
    assert out["md5"] == hashlib.md5(data).hexdigest()  # the lock the report job sees names these bytes


def test_dvc_remote_refuses_other_schemes(project: Path) -> None:
    with pytest.raises(RegistryError, match="unsupported registry URL") as err:
        configure_remote(project, RegistryLocation.parse("gs://bucket/zoo"))
    assert err.value.exit_code == 2
    with pytest.raises(RegistryError, match="a DVC remote needs an s3:// or local registry"):
        configure_remote(project, RegistryLocation.parse("https://example.com/zoo"))
    env = {k: v for k, v in os.environ.items() if k != "MODELZOO_REGISTRY"}
    cmd = [shutil.which("modelzoo") or "modelzoo", "ci", "dvc-remote"]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "registry URL is empty" in proc.stderr
