"""Test setup for the consumer tests: releases written straight into a registry (no publish command)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.registry.manifest import (
    ComponentSig,
    FileEntry,
    Manifest,
    ModelEntry,
    TensorSig,
    artifact_prefix,
    manifest_path,
)
from pipelines.registry.stores import Store


@dataclass(frozen=True)
class Art:
    name: str
    target: str
    data: bytes
    precision: str | None = None


def standard_files(model: str, salt: bytes = b"") -> list[Art]:
    """A model's files as publish would list them: ONNX, two build targets, ROS params, provenance."""
    seed = model.encode() + salt
    return [
        Art(f"{model}.onnx", "onnx", b"onnx:" + seed * 500, "fp32"),
        Art(f"{model}.fp16.onnx", "onnx", b"onnx16:" + seed * 300, "fp16"),
        Art(f"{model}.ort", "onnxruntime-1.31-cpu-x86_64", b"ort:" + seed * 400, "fp32"),
        Art(f"{model}.fp16.engine", "tensorrt-10.13-sm86", b"trt86:" + seed * 350, "fp16"),
        Art(f"{model}.fp16.engine", "tensorrt-10.13-sm90", b"trt90:" + seed * 360, "fp16"),
        Art(f"{model}.param.yaml", "ros", b"/**:\n  ros__parameters:\n    threshold: 0.5\n"),
        Art("provenance.json", "provenance", b'{"git_commit": "abc"}'),
    ]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_entry(store: Store, model: str, arts: list[Art]) -> ModelEntry:
    artifact_version = "1.0.0-0123456789ab"
    files = []
    for a in arts:
        path = f"{artifact_prefix('classifier', model, artifact_version, a.target)}/{a.name}"
        store.put_bytes(path, a.data)
        files.append(
            FileEntry(
                path=path,
                name=a.name,
                target=a.target,
                precision=a.precision,  # type: ignore[arg-type]
                size=len(a.data),
                sha256=sha256(a.data),
            )
        )
    sig = ComponentSig(
        inputs=[TensorSig(name="image", dtype="float32", shape=["batch", 3, 64, 64])],
        outputs=[TensorSig(name="logits", dtype="float32", shape=["batch", 2])],
    )
    return ModelEntry(
        name=model,
        algorithm="classifier",
        task="classification",
        model_version="1.0.0",
        artifact_version=artifact_version,
        fingerprint="f" * 64,
        build_options={},
        io_signature={"main": sig},
        ros_param_keys={f"{model}.param.yaml": ["threshold"]},
        files=files,
    )


def put_release(
    store: Store, version: str, models: dict[str, list[Art]], *, interface: str = "1.0.0", alias_of: str | None = None
) -> Manifest:
    entries = {name: model_entry(store, name, arts) for name, arts in models.items()}
    manifest = Manifest(version=version, interface_version=interface, alias_of=alias_of, models=entries)
    store.put_bytes(manifest_path(version), manifest.to_json().encode())
    return manifest


def put_raw_manifest(store: Store, version: str, data: dict[str, Any]) -> None:
    """A manifest that the schema would refuse to build (a hostile or broken registry)."""
    store.put_bytes(manifest_path(version), json.dumps(data).encode())


def sign_release(store: Store, version: str, key: Path) -> None:
    """Sign the manifest as it is in the registry, as `modelzoo publish` does with a signing key."""
    from pipelines.registry.signing import load_signer, put_signature

    with store.open_read(manifest_path(version)) as f:
        put_signature(store, version, f.read(), load_signer(str(key)))
