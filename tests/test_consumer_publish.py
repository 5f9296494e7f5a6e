"""A consumer fetches what `modelzoo publish` wrote: the built reference model, over the moto S3 server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.registry.stores import S3Store
from tests.conftest import S3Server

BIN = Path(sys.executable).parent
MODEL = "calibration_status"


def modelzoo(cwd: Path, *args: str, rc: int = 0, **env_over: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MODELZOO_LOG": "WARNING", **env_over}
    env.pop("MODELZOO_ROOT", None)
    proc = subprocess.run([str(BIN / "modelzoo"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == rc, f"modelzoo {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_fetch_what_publish_wrote(pipeline_repo: Path, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    repo = Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))
    s3 = ("--registry", f"s3://{s3_bucket}/registry", "--endpoint-url", s3_server.endpoint)
    modelzoo(tmp_path, "registry", "keygen", str(tmp_path / "zoo.pem"), str(tmp_path / "zoo.pub"))
    key = {"MODELZOO_SIGNING_KEY": str(tmp_path / "zoo.pem")}
    published = modelzoo(repo, "publish", "--version", "v1.0.0", "--no-dvc-push", *s3, **key)
    assert "(signed)" in published.stdout
    body = S3Store(f"s3://{s3_bucket}/registry", s3_server.endpoint).open_read("releases/1.0.0/manifest.json")
    names = {f["name"] for f in json.loads(body.read())["models"][MODEL]["files"]}
    assert "provenance/build/environment.json" in names  # the machine it was built on

    consumer = tmp_path / "autoware"
    consumer.mkdir()
    pub = ("--public-key", str(tmp_path / "zoo.pub"))
    modelzoo(consumer, "pin", *s3, *pub, "--version", "1.0.0", "--models", MODEL, "--target", "onnxruntime-cpu")
    first = modelzoo(consumer, "fetch")
    again = modelzoo(consumer, "fetch")

    dest = consumer / "autoware_data" / MODEL
    built = next((repo / f"artifacts/{MODEL}/build").glob("onnxruntime-*-cpu-*/fp32/calibration_classifier.ort"))
    assert (dest / "calibration_classifier.ort").read_bytes() == built.read_bytes()
    assert "0 file(s) fetched (0 bytes)" in again.stdout and "0 file(s) fetched" not in first.stdout

    # What an Autoware node would do with it: load the fetched model and run it.
    session = ort.InferenceSession(str(dest / "calibration_classifier.ort"), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
        for i in session.get_inputs()
    }
    assert all(np.isfinite(out).all() for out in session.run(None, feeds))

    # The portable ONNX, by checksum list, as an Ansible/CMake step would pin it.
    modelzoo(consumer, "pin", "--target", "onnx")
    listed = modelzoo(consumer, "fetch", "--print-checksums").stdout
    assert f"{MODEL}/calibration_classifier.onnx" in listed
    modelzoo(consumer, "fetch")
    (tmp_path / "SHA256SUMS").write_text(listed)
    check = subprocess.run(["sha256sum", "-c", str(tmp_path / "SHA256SUMS")], cwd=dest.parent, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    onnx = repo / f"artifacts/{MODEL}/onnx/calibration_classifier.onnx"
    assert (dest / "calibration_classifier.onnx").read_bytes() == onnx.read_bytes()


@pytest.mark.slow
def test_dirty_workspace(pipeline_repo: Path, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    """An edited, uncommitted descriptor: refused for X.Y.Z; --allow-dirty bleeding edge records it."""
    import yaml

    repo = Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))
    s3 = ("--registry", f"s3://{s3_bucket}/registry", "--endpoint-url", s3_server.endpoint, "--no-dvc-push")
    path = repo / "models" / MODEL / "model.yaml"
    desc = yaml.safe_load(path.read_text())
    desc["description"] = str(desc.get("description", "")) + " (edited)"
    path.write_text(yaml.safe_dump(desc, sort_keys=False))

    refused = modelzoo(repo, "publish", "--version", "v1.1.0", "--unsigned", *s3, rc=7)
    assert refused.stderr.count("\n") == 1 and f"models/{MODEL}/model.yaml" in refused.stderr
    assert "never published from a dirty tree" in refused.stderr
    refused = modelzoo(repo, "publish", "--version", "v1.1.0", "--unsigned", "--allow-dirty", *s3, rc=2)
    assert "--allow-dirty is for the bleeding edge only" in refused.stderr
    assert not list(S3Store(f"s3://{s3_bucket}/registry", s3_server.endpoint).list("releases/"))

    done = modelzoo(repo, "publish", "--channel", "bleedingedge", "--unsigned", "--allow-dirty", *s3)
    assert "DIRTY workspace" in done.stdout
    body = S3Store(f"s3://{s3_bucket}/registry", s3_server.endpoint).open_read("releases/bleedingedge/manifest.json")
    manifest = json.loads(body.read())
    assert manifest["dirty"] is True and len(manifest["dirty_diff_sha256"]) == 64
    modelzoo(repo, "index", "-o", str(tmp_path / "MODELS.md"), *s3[:4])
    assert "published from a dirty workspace" in (tmp_path / "MODELS.md").read_text()
