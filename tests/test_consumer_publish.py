"""A consumer fetches what `modelzoo publish` wrote: the built reference model, over the moto S3 server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import S3Server

BIN = Path(sys.executable).parent
MODEL = "calibration_status"


def modelzoo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MODELZOO_LOG": "WARNING"}
    env.pop("MODELZOO_ROOT", None)
    proc = subprocess.run([str(BIN / "modelzoo"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"modelzoo {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_fetch_what_publish_wrote(pipeline_repo: Path, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    repo = Path(shutil.copytree(pipeline_repo, tmp_path / "repo", symlinks=True))
    s3 = ("--registry", f"s3://{s3_bucket}/registry", "--endpoint-url", s3_server.endpoint)
    modelzoo(repo, "publish", "--version", "v1.0.0", "--no-dvc-push", *s3)

    consumer = tmp_path / "autoware"
    consumer.mkdir()
    modelzoo(consumer, "pin", *s3, "--version", "1.0.0", "--models", MODEL, "--target", "onnxruntime-cpu")
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
