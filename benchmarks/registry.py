"""Registry benchmarks; prints one JSON object.

1. Bytes uploaded publishing a release where 1 of N models changed, divided by that model's bytes
   (target <= 1.01; the old ModelZoo re-uploaded one tarball of every model per arch).
2. Publish time and peak memory of a release holding a 200 MB ONNX file, in a fresh process
   (target: memory bounded, < 100 MB above the process's footprint before publishing).
3. Time of `release check` and of rendering MODELS.md for 50 models.

Models are synthetic but complete (descriptor, ONNX with real weights, built file, ROS params,
verify/metrics reports, checkpoint) so that the real publish path runs; S3 is moto's server in its
own process on 127.0.0.1. Usage: python benchmarks/registry.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)  # fmt: skip

IN_FEATURES = 5 * 64 * 64


def write_onnx(path: Path, hidden: int, seed: int) -> None:
    """A valid ONNX classifier with the calibration_status I/O signature and ~IN_FEATURES*hidden*4 bytes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((IN_FEATURES, hidden), dtype=np.float32)
    w2 = rng.standard_normal((hidden, 2), dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w1"], ["hidden"]),
            helper.make_node("MatMul", ["hidden", "w2"], ["output"]),
        ],
        "bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 5, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])],
        [
            numpy_helper.from_array(np.array([1, IN_FEATURES], dtype=np.int64), "shape"),
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(w2, "w2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key="git_commit", value=f"{seed:040d}")
    del w1
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def make_model(root: Path, name: str, hidden: int, seed: int) -> None:
    desc = yaml.safe_load((REPO / "models/calibration_status/model.yaml").read_text())
    desc.update(name=name, reference=None, provenance={})
    desc["source"]["checkpoint"] = f"artifacts/{name}/checkpoint.pth"
    desc["build"]["targets"] = ["onnxruntime"]
    desc["verification"]["scenarios"] = desc["verification"]["scenarios"][:1]
    desc["evaluation"]["backends"] = desc["evaluation"]["backends"][:2]
    mdir = root / "models" / name
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "model.yaml").write_text(yaml.safe_dump({k: v for k, v in desc.items() if v is not None}))
    shutil.copy(REPO / "models/calibration_status/net.py", mdir / "net.py")
    art = root / "artifacts" / name
    write_onnx(art / "onnx" / "calibration_classifier.onnx", hidden, seed)
    (art / "onnx" / f"{name}.param.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {"t": 0.5}}}))
    (art / "checkpoint.pth").write_bytes(np.random.default_rng(seed + 1).bytes(64 << 10))
    key = "onnxruntime-1.31-cpu-x86_64"
    built = art / "build" / key / "fp32" / "calibration_classifier.ort"
    built.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(art / "onnx" / "calibration_classifier.onnx", built)
    env = {"available": True, "key": key, "target": "onnxruntime", "reason": "", "details": {"onnxruntime": "1.31"}}
    built_entry = {"fp32/calibration_classifier": {"file": f"{key}/fp32/calibration_classifier.ort"}}
    build = {"precisions": {"fp32": {}}, "targets": {"onnxruntime": {"environment": env, "built": built_entry}}}
    (art / "build" / "build.json").write_text(json.dumps(build))
    (art / "verify.json").write_text(json.dumps({"status": "pass", "scenarios": {}}))
    lat = {"total": {"mean": 1.0 + seed % 7}}
    metrics = {"headline": "accuracy", "backends": {"onnxruntime-cpu-fp32": {"accuracy": 0.9, "latency_ms": lat}}}
    (art / "metrics.json").write_text(json.dumps(metrics))


def make_repo(root: Path, models: dict[str, tuple[int, int]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    params = {"models": {n: {"checkpoint": f"artifacts/{n}/checkpoint.pth"} for n in models}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for name, (hidden, seed) in models.items():
        make_model(root, name, hidden, seed)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    commit(root)
    return root


def commit(root: Path) -> None:
    """publish refuses a workspace that is not HEAD: commit the (DVC-less) generated repository."""
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=root, check=True)


class CountingStore:
    """Counts the bytes a publish writes through a store."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.bytes = inner, 0
        self.url = inner.url

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> bool:
        done = self.inner.put_file(key, path, if_absent=if_absent)
        self.bytes += path.stat().st_size if done else 0
        return done

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        done = self.inner.put_bytes(key, data, if_absent=if_absent)
        self.bytes += len(data) if done else 0
        return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def bucket(endpoint: str, name: str) -> str:
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/zoo"


def bench_one_of_n(tmp: Path, endpoint: str, n: int, hidden: int) -> dict[str, object]:
    from pipelines.registry.location import open_store
    from pipelines.registry.publish import publish

    models = {f"model_{i:02d}": (hidden, i) for i in range(n)}
    root = make_repo(tmp / "one_of_n", models)
    url = bucket(endpoint, "one-of-n")
    first = CountingStore(open_store(url, endpoint))
    publish(root, first, "1.0.0", push_dvc=False)  # type: ignore[arg-type]
    changed = "model_02"
    write_onnx(root / "artifacts" / changed / "onnx" / "calibration_classifier.onnx", hidden, seed=1000)
    commit(root)
    second = CountingStore(open_store(url, endpoint))
    start = time.perf_counter()
    result = publish(root, second, "1.1.0", push_dvc=False)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    from pipelines.registry.releases import read_manifest

    manifest = read_manifest(second.inner, "1.1.0")
    assert manifest is not None
    model_bytes = sum(f.size for f in manifest.models[changed].files)
    return {
        "models": n,
        "release_bytes_all_models": first.bytes,
        "changed_model_bytes": model_bytes,
        "uploaded_bytes": second.bytes,
        "uploaded_artifact_bytes": result.uploaded_bytes,
        "ratio_uploaded_to_changed_model": round(second.bytes / model_bytes, 5),
        "ratio_full_reupload_to_changed_model": round(first.bytes / model_bytes, 3),
        "publish_seconds": round(seconds, 3),
    }


CHILD = r"""
import json, sys, time, tracemalloc
from pathlib import Path
from pipelines.registry.publish import publish
from pipelines.registry.location import open_store
import pipelines.registry.entry, onnx, boto3  # imports counted in the baseline
root, url, endpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
store = open_store(url, endpoint)
store.exists("warm-up")
def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
before = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS: the peak below is the publish's own
tracemalloc.start()
start = time.perf_counter()
result = publish(root, store, "1.0.0", push_dvc=False)
seconds = time.perf_counter() - start
peak_py = tracemalloc.get_traced_memory()[1] / 2**20
peak = status_mb("VmHWM")
print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak,
                  "python_alloc_peak_mb": peak_py, "uploaded_bytes": result.uploaded_bytes}))
"""


def bench_big(tmp: Path, endpoint: str, hidden: int) -> dict[str, object]:
    root = make_repo(tmp / "big", {"big_model": (hidden, 7)})
    onnx_size = (root / "artifacts/big_model/onnx/calibration_classifier.onnx").stat().st_size
    url = bucket(endpoint, "big")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), url, endpoint], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "onnx_mb": round(onnx_size / 2**20, 1),
        "release_uploaded_mb": round(out["uploaded_bytes"] / 2**20, 1),
        "publish_seconds": round(out["seconds"], 2),
        "rss_before_publish_mb": round(out["rss_before_mb"], 1),
        "peak_rss_mb": round(out["peak_rss_mb"], 1),
        "peak_rss_above_baseline_mb": round(out["peak_rss_mb"] - out["rss_before_mb"], 1),
        "python_alloc_peak_mb": round(out["python_alloc_peak_mb"], 1),
    }


def bench_fifty(tmp: Path, n: int) -> dict[str, object]:
    from pipelines.registry.entry import local_models
    from pipelines.registry.index import render_index
    from pipelines.registry.location import open_store
    from pipelines.registry.publish import publish
    from pipelines.registry.releases import read_manifest
    from pipelines.registry.versioning import compare, required_bump

    root = make_repo(tmp / "fifty", {f"model_{i:02d}": (8, i) for i in range(n)})
    store = open_store(str(tmp / "fifty-registry"))
    publish(root, store, "1.0.0", push_dvc=False)
    write_onnx(root / "artifacts/model_07/onnx/calibration_classifier.onnx", 8, seed=999)
    start = time.perf_counter()
    previous = read_manifest(store, "1.0.0")
    assert previous is not None
    level = required_bump(compare(previous, {k: m.entry for k, m in local_models(root).items()}))
    check_s = time.perf_counter() - start
    publish(root, store, "1.1.0", push_dvc=False)
    template = REPO / "MODELS.md.j2"
    start = time.perf_counter()
    text = render_index(store, template)
    render_s = time.perf_counter() - start
    assert render_index(store, template) == text
    env = {**os.environ, "MODELZOO_ROOT": str(root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.perf_counter()
    cli = subprocess.run(
        ["modelzoo", "release", "check", "v1.1.0", "--registry", str(tmp / "fifty-registry")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    cli_s = time.perf_counter() - start
    if cli.returncode:
        raise SystemExit(cli.stderr)
    return {
        "models": n,
        "release_check_seconds": round(check_s, 3),
        "release_check_cli_seconds": round(cli_s, 3),
        "required_bump": level,
        "models_md_render_seconds": round(render_s, 4),
        "models_md_bytes": len(text),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run).")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    proc, endpoint = start_moto()
    try:
        out = {
            "one_of_n_changed": bench_one_of_n(tmp, endpoint, n=5, hidden=32 if args.quick else 256),
            "big_artifact": bench_big(tmp, endpoint, hidden=64 if args.quick else 2560),
            "fifty_models": bench_fifty(tmp, n=10 if args.quick else 50),
        }
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
