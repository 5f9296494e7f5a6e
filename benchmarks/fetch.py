"""Benchmark `modelzoo fetch`; prints JSON.

- download_ratio: bytes a fetch of one model of three transfers (counted by the HTTP server that
  serves the registry: bodies of every response, manifest included) / that model's bytes for the
  pinned target. The old ModelZoo tarball made every consumer download every model of the arch:
  `tarball_ratio` is that number for the same release.
- throughput: a 200 MB artifact from moto's S3 server (its own process, on 127.0.0.1), fetched by
  `fetch` (stream + sha256 + size check + rename) next to boto3 downloading the same object
  (`download_file`, its threaded transfer manager, and a plain `get_object` stream), in rotated order,
  `--repeat` times each, medians. Every download runs in a fresh subprocess and is timed from
  before its S3 client is made (fetch: the whole `fetch()` call, manifest read included).
  CPU seconds are reported too: on a busy machine they say more than wall time.
- peak memory: the fetch process's peak RSS (VmHWM), and its growth over the same process's RSS
  after its imports, right before the fetch starts.
- resume_after_kill: a fetch SIGKILLed once its partial download holds ~40% of the artifact, then run
  again: the bytes the second run downloads (only the missing part: a range GET), vs the missing bytes.
- noop: a second fetch into the same destination (downloads nothing; hashes what is there), in
  process and as the `modelzoo fetch` command end to end.

Usage: python benchmarks/fetch.py [--size-mb 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
BUCKET = "bench-registry"
MB = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: a child inherits its parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status")


# --- child processes: one download each, JSON on stdout -------------------------------------------


def child_fetch(pin_path: str, dest: str) -> None:
    # Imported by fetch anyway: their memory is not the fetch's.
    import boto3  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    import tqdm  # type: ignore[import-untyped,unused-ignore]  # noqa: F401

    from pipelines.consumer.fetch import fetch
    from pipelines.consumer.pin import load_pin

    pin = load_pin(Path(pin_path))
    before = proc_status_mb("VmRSS")
    t, cpu = time.perf_counter(), time.process_time()
    report = fetch(pin, Path(pin_path).parent, Path(dest))
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = proc_status_mb("VmHWM")
    out = {
        "seconds": seconds,
        "cpu_s": cpu,
        "bytes": report.bytes_downloaded,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
    }
    print(json.dumps(out))


def child_boto3(endpoint: str, key: str, dest: str, how: str) -> None:
    import boto3

    t, cpu = time.perf_counter(), time.process_time()  # client creation included, as in fetch's time
    client = boto3.client("s3", endpoint_url=endpoint)
    if how == "download_file":
        client.download_file(BUCKET, key, dest)
    else:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
        with open(dest, "wb") as f:
            for chunk in body.iter_chunks(1 << 20):
                f.write(chunk)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "bytes": os.path.getsize(dest)}))


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child {args[0]} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def sha256_cpu_seconds(size: int) -> float:
    """CPU time of hashing `size` bytes here: the integrity check's share of a fetch."""
    import hashlib

    block, digest = os.urandom(1 << 20), hashlib.sha256()
    cpu = time.process_time()
    for _ in range(size // len(block)):
        digest.update(block)
    return round(time.process_time() - cpu, 2)


# --- setup ----------------------------------------------------------------------------------------


def random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n


def publish(store, work: Path, models: dict[str, int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Write a release 1.0.0 with each model's files (ONNX, ORT, two TensorRT builds, ROS params).

    Returns each model's bytes for target onnx (what a pin `target: onnx` selects)."""
    from pipelines.fileio import sha256_file
    from pipelines.registry.manifest import FileEntry, Manifest, ModelEntry, artifact_prefix, manifest_path

    entries, selected = {}, {}
    for model, size in models.items():
        files = []
        for name, target, frac in (
            (f"{model}.onnx", "onnx", 1.0),
            (f"{model}.ort", "onnxruntime-1.31-cpu-x86_64", 1.0),
            (f"{model}.engine", "tensorrt-10.13-sm86", 0.6),
            (f"{model}.engine", "tensorrt-10.13-sm90", 0.6),
            (f"{model}.param.yaml", "ros", 0.0),
        ):
            src = work / "src" / target / name
            src.parent.mkdir(parents=True, exist_ok=True)
            random_file(src, max(int(size * frac), 300))
            path = f"{artifact_prefix('bench', model, '1.0.0-000000000000', target)}/{name}"
            store.put_file(path, src)
            entry = FileEntry(
                path=path, name=name, target=target, size=src.stat().st_size, sha256=sha256_file(src)
            )  # fmt: skip
            files.append(entry)
            src.unlink()
        entries[model] = ModelEntry(
            name=model, algorithm="bench", task="classification", model_version="1.0.0",
            artifact_version="1.0.0-000000000000", fingerprint="0" * 64, build_options={}, io_signature={},
            files=files,
        )  # fmt: skip
        selected[model] = sum(f.size for f in files if f.target in ("onnx", "ros"))
    manifest = Manifest(version="1.0.0", models=entries)
    store.put_bytes(manifest_path("1.0.0"), manifest.to_json().encode())
    return selected


def write_pin(path: Path, registry: str, models: list[str], endpoint: str | None = None) -> Path:
    import yaml

    data = {"registry": registry, "version": "1.0.0", "target": "onnx", "models": models}
    if endpoint:
        data["endpoint_url"] = endpoint
    path.write_text(yaml.safe_dump(data))
    return path


class CountingHandler(SimpleHTTPRequestHandler):
    sent = 0
    lock = threading.Lock()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        n = 0
        while chunk := source.read(1 << 20):
            outputfile.write(chunk)
            n += len(chunk)
        with CountingHandler.lock:
            CountingHandler.sent += n

    def log_message(self, *args: object) -> None:
        pass


def resume_after_kill(pin: Path, dest: Path, size: int) -> dict[str, object]:
    from pipelines.consumer.fetch import STAGING_SUFFIX

    parts = dest.parent / f".{dest.name}{STAGING_SUFFIX}"
    child = subprocess.Popen(
        [sys.executable, __file__, "_fetch", str(pin), str(dest)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    have, deadline = 0, time.time() + 120
    while time.time() < deadline and child.poll() is None:
        found = list(parts.glob("*.part")) if parts.is_dir() else []
        have = max((p.stat().st_size for p in found), default=0)
        if have >= 0.4 * size:
            break
        time.sleep(0.005)
    child.kill()
    child.wait()
    found = list(parts.glob("*.part")) if parts.is_dir() else []
    have = max((p.stat().st_size for p in found), default=0)
    if not found or have >= size:
        raise SystemExit("benchmark: the fetch finished before it could be killed; use a larger --size-mb")
    second = run_child("_fetch", str(pin), str(dest))
    return {
        "artifact_bytes": size,
        "partial_bytes_at_kill": have,
        "bytes_downloaded_after_resume": second["bytes"],
        "missing_bytes": size - have,
        "only_missing_part_downloaded": second["bytes"] == size - have,
        "resume_seconds": round(second["seconds"], 3),
    }


def wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"moto server on port {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from pipelines.registry.location import open_store

    work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-fetch-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        result: dict[str, object] = {}

        # 1. Bytes transferred for one model of three (HTTP registry, counted by the server).
        models = {"detector": 30 * MB, "segmenter": 20 * MB, "classifier": 5 * MB}
        local_root = work / "local-registry"
        selected = publish(open_store(str(local_root)), work, models)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(CountingHandler, directory=str(local_root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        pin = write_pin(work / "ratio.yaml", base, ["segmenter"])
        run_child("_fetch", str(pin), str(work / "ratio-dest"))
        sent = CountingHandler.sent
        httpd.shutdown()
        result["download_ratio"] = {
            "model": "segmenter",
            "model_bytes_for_target": selected["segmenter"],
            "bytes_sent_by_server": sent,
            "ratio": round(sent / selected["segmenter"], 5),
            "tarball_ratio": round(sum(selected.values()) / selected["segmenter"], 3),
            "target": "<= 1.01",
        }

        # 2. Throughput and memory: one 200 MB artifact over S3.
        s3 = open_store(f"s3://{BUCKET}/registry", endpoint)
        size = args.size_mb * MB
        big_root = work / "big-src"
        big_root.mkdir()
        from pipelines.fileio import sha256_file
        from pipelines.registry.manifest import FileEntry, Manifest, ModelEntry, manifest_path

        src = big_root / "big.onnx"
        random_file(src, size)
        key = "models/bench/big/1.0.0-000000000000/onnx/big.onnx"
        s3.put_file(key, src)
        entry = FileEntry(path=key, name="big.onnx", target="onnx", size=size, sha256=sha256_file(src))
        src.unlink()
        model = ModelEntry(
            name="big", algorithm="bench", task="classification", model_version="1.0.0",
            artifact_version="1.0.0-000000000000", fingerprint="0" * 64, build_options={}, io_signature={},
            files=[entry],
        )  # fmt: skip
        s3.put_bytes(manifest_path("1.0.0"), Manifest(version="1.0.0", models={"big": model}).to_json().encode())
        pin = write_pin(work / "big.yaml", f"s3://{BUCKET}/registry", ["big"], endpoint)
        full_key = f"registry/{key}"

        runs: dict[str, list[dict[str, float]]] = {"fetch": [], "boto3_download_file": [], "boto3_get_object": []}
        order = ["fetch", "download_file", "get_object"]
        for i in range(args.repeat):
            for how in order[i % 3 :] + order[: i % 3]:  # rotated: no one always runs first
                if how == "fetch":
                    dest = work / f"dest-{i}"
                    runs["fetch"].append(run_child("_fetch", str(pin), str(dest)))
                    if i < args.repeat - 1:
                        shutil.rmtree(dest)
                else:
                    out = work / f"boto3-{how}-{i}"
                    runs[f"boto3_{how}"].append(run_child("_boto3", endpoint, full_key, str(out), how))
                    out.unlink()

        def mbps(rs: list[dict[str, float]]) -> float:
            return round(statistics.median(r["bytes"] / MB / r["seconds"] for r in rs), 1)

        fetch_mbps = mbps(runs["fetch"])
        result["throughput"] = {
            "artifact_mb": size / MB,
            "repeat": args.repeat,
            "fetch_mb_s": fetch_mbps,
            "boto3_download_file_mb_s": mbps(runs["boto3_download_file"]),
            "boto3_get_object_mb_s": mbps(runs["boto3_get_object"]),
            "fetch_over_boto3_download_file": round(fetch_mbps / mbps(runs["boto3_download_file"]), 3),
            "fetch_over_boto3_get_object": round(fetch_mbps / mbps(runs["boto3_get_object"]), 3),
            "all_mb_s": {k: [round(r["bytes"] / MB / r["seconds"], 1) for r in v] for k, v in runs.items()},
            # CPU seconds (all threads) per run: less sensitive than wall time to a busy machine.
            "cpu_s_median": {k: round(statistics.median(r["cpu_s"] for r in v), 2) for k, v in runs.items()},
            "sha256_alone_cpu_s": sha256_cpu_seconds(size),
            "target": "fetch within 10% of boto3",
        }
        peaks = [r["rss_peak_mb"] for r in runs["fetch"]]
        growth = [r["rss_peak_mb"] - r["rss_before_mb"] for r in runs["fetch"]]
        result["peak_memory"] = {
            "fetch_process_peak_rss_mb": round(max(peaks), 1),
            "growth_during_fetch_mb": round(max(growth), 1),
            "target": "< 100 MB for a 200 MB file",
        }

        # 3. A fetch killed mid-file (SIGKILL once its part holds ~40%), then run again: only the
        #    missing bytes are downloaded (a range GET), the partial's bytes are hashed again.
        result["resume_after_kill"] = resume_after_kill(pin, work / "killed-dest", size)

        # 4. A second fetch into the last destination: downloads nothing.
        dest = work / f"dest-{args.repeat - 1}"
        noop = run_child("_fetch", str(pin), str(dest))
        t = time.perf_counter()
        cli = subprocess.run(
            [str(Path(sys.executable).with_name("modelzoo")), "fetch", "--pin", str(pin), "--dest", str(dest)],
            capture_output=True,
            text=True,
            check=True,
        )
        result["noop_second_fetch"] = {
            "bytes_downloaded": noop["bytes"],
            "in_process_s": round(noop["seconds"], 3),
            "cli_end_to_end_s": round(time.perf_counter() - t, 3),
            "cli_says": cli.stdout.strip().split(" -> ")[0],
        }
        print(json.dumps(result, indent=2))
    finally:
        moto.terminate()
        moto.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_fetch":
        child_fetch(*sys.argv[2:4])
    elif len(sys.argv) > 1 and sys.argv[1] == "_boto3":
        child_boto3(*sys.argv[2:6])
    else:
        main()
