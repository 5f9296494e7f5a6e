"""A synthetic registry with a history: N models over M releases, with metrics and latency that move.

Written straight into a store (no publish command), like tests/consumer_registry.py, for the index's
charts, the static site and benchmarks/site.py. Values are a function of (model, release), so two
registries built with the same arguments are identical.
"""

from __future__ import annotations

import hashlib

from pipelines.registry.manifest import (
    BLEEDING_EDGE,
    ComponentSig,
    FileEntry,
    Manifest,
    ModelEntry,
    TensorSig,
    artifact_prefix,
    manifest_path,
)
from pipelines.registry.stores import Store

ENDPOINTS = ("onnxruntime-cpu-fp32", "onnxruntime-cpu-fp16", "tensorrt-cuda-fp16")
CLASSES = ("car", "pedestrian", "bicycle")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unit(*key: object) -> float:
    """A deterministic number in [0, 1) from a key."""
    return int(_sha(repr(key).encode())[:8], 16) / 0x1_0000_0000


def synthetic_model(store: Store, name: str, generation: int, index: int, *, upload: bool = True) -> ModelEntry:
    """Model `name` as built in its `generation`-th retraining (its artifacts change with it)."""
    fingerprint = _sha(f"{name}:{generation}".encode())
    artifact_version = f"1.{generation}.0-{fingerprint[:12]}"
    seed = f"{name}:{generation}".encode()
    arts = [
        (f"{name}.onnx", "onnx", "fp32", b"onnx:" + seed * 40),
        (f"fp16/{name}.onnx", "onnx", "fp16", b"onnx16:" + seed * 30),
        (f"{name}.ort", "onnxruntime-1.31-cpu-x86_64", "fp32", b"ort:" + seed * 20),
        (f"fp16/{name}.engine", "tensorrt-10.13-sm90", "fp16", b"trt:" + seed * 25),
        (f"{name}.param.yaml", "ros", None, b"/**:\n  ros__parameters:\n    score_threshold: 0.35\n"),
        ("provenance/checkpoint/checkpoint.pth", "provenance", None, b"ckpt:" + seed),
    ]
    files = []
    for file_name, target, precision, data in arts:
        path = f"{artifact_prefix('CenterPoint', name, artifact_version, target)}/{file_name.rsplit('/', 1)[-1]}"
        if upload:
            store.put_bytes(path, data)
        files.append(
            FileEntry(path=path, name=file_name, target=target, precision=precision, size=len(data), sha256=_sha(data))  # type: ignore[arg-type]
        )
    metrics, latency, details = {}, {}, {}
    for ep in ENDPOINTS:
        base = 0.6 + 0.3 * _unit(name, generation, ep) + 0.01 * generation
        metrics[ep] = round(base, 4)
        latency[ep] = round((4.0 if "tensorrt" in ep else 20.0) * (1 + _unit("lat", name, index, ep)), 3)
        details[ep] = {
            "mAP": metrics[ep],
            **{f"AP_{c}": round(base + 0.05 * _unit(name, generation, c), 4) for c in CLASSES},
        }
    sig = ComponentSig(
        inputs=[TensorSig(name="voxels", dtype="float32", shape=["num_voxels", 32, 4])],
        outputs=[TensorSig(name="heatmap", dtype="float32", shape=[1, 3, 128, 128])],
    )
    return ModelEntry(
        name=name,
        algorithm="CenterPoint",
        task="detection3d",
        model_version=f"1.{generation}.0",
        artifact_version=artifact_version,
        fingerprint=fingerprint,
        build_options={"precisions": ["fp16", "fp32"], "target_environments": ["tensorrt-10.13-sm90"]},
        io_signature={"encoder": sig},
        ros_param_keys={name: ["score_threshold"]},
        environments={"tensorrt-10.13-sm90": {"tensorrt": "10.13.0"}},
        skipped_targets={"tensorrt-10.13-sm86": "no sm86 GPU on the publishing runner"},
        files=files,
        headline="mAP",
        metrics=metrics,
        latency_ms=latency,
        metric_details=details,
    )


def versions(count: int) -> list[str]:
    """1.0.0, 1.1.0, 1.1.1 (an alias), 1.2.0, ... : every third release a Z alias of the one before."""
    out, minor = ["1.0.0"], 0
    while len(out) < count:
        if len(out) % 3 == 2:
            out.append(f"1.{minor}.1")
        else:
            minor += 1
            out.append(f"1.{minor}.0")
    return out


def build_history(store: Store, models: int, releases: int, *, bleeding_edge: bool = True) -> list[str]:
    """`releases` releases of `models` models (model i retrained every (i % 3 + 1) releases); the versions."""
    names = [f"model_{i:02d}" for i in range(models)]
    done: list[str] = []
    for r, version in enumerate(versions(releases)):
        if version.endswith(".1"):
            base = done[-1]
            previous = Manifest.model_validate_json(store.open_read(manifest_path(base)).read())
            manifest = Manifest(
                version=version, alias_of=base, git_commit=_sha(version.encode())[:40], models=previous.models
            )
        else:
            entries = {n: synthetic_model(store, n, r // (i % 3 + 1), r) for i, n in enumerate(names)}
            manifest = Manifest(version=version, git_commit=_sha(version.encode())[:40], models=entries)
        store.put_bytes(manifest_path(version), manifest.to_json().encode())
        done.append(version)
    if bleeding_edge:
        r = releases
        entries = {n: synthetic_model(store, n, r // (i % 3 + 1), r) for i, n in enumerate(names)}
        manifest = Manifest(version=BLEEDING_EDGE, git_commit=_sha(b"edge")[:40], models=entries)
        store.put_bytes(manifest_path(BLEEDING_EDGE), manifest.to_json().encode())
    return done
