"""Release manifests: what a release (X.Y.Z or bleedingedge) contains, model by model.

Registry layout (relative to the registry root):
    models/{algorithm}/{model}/{artifact_version}/{target}/{file}   written once, never overwritten
    releases/{X.Y.Z}/manifest.json                                  written once (conditional write)
    releases/bleedingedge/manifest.json                             overwritten by each push to main
    info/{version}/{set}/info_{train,val,test}.pkl
    auto_label/{day}_{dataset}/...
    dvc/                                                            the DVC remote (verify = true)

`artifact_version` is `{model_version}-{fingerprint[:12]}`: a new fingerprint gets a new folder, so
an artifact path always names the same bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.errors import format_validation_error
from pipelines.registry.stores.base import safe_relpath
from pipelines.version import DESCRIPTOR_INTERFACE_VERSION

MANIFEST_SCHEMA = 1
# The one size cap of every JSON manifest or artifact record read from a registry.
MAX_MANIFEST_BYTES = 64 << 20
BLEEDING_EDGE = "bleedingedge"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(Strict):
    # Registry path, relative to the registry root.
    path: str
    # Where a consumer puts it: <dest>/<model>/<name> (Autoware's layout).
    name: str
    # "onnx" (portable ONNX, per precision), a build environment key such as
    # "onnxruntime-1.31-cpu-x86_64" / "tensorrt-10.13-sm86", "ros" (param files) or "provenance".
    target: str
    precision: Literal["fp32", "fp16", "int8"] | None = None
    size: int = Field(ge=0)
    sha256: str

    @field_validator("path", "name")
    @classmethod
    def _safe(cls, v: str) -> str:
        return safe_relpath(v)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not SHA256.match(v):
            raise ValueError("not a sha256 hex digest")
        return v


class TensorSig(Strict):
    name: str
    dtype: str
    shape: list[int | str]


class ComponentSig(Strict):
    inputs: list[TensorSig]
    outputs: list[TensorSig]


class AutowarePackage(Strict):
    """Where Autoware reads the model: `<data_dir>/<package>/<file>`, from the Hub repository `repository`."""

    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    repository: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ModelEntry(Strict):
    name: str
    algorithm: str
    task: str
    model_version: str
    artifact_version: str
    # sha256 over the ONNX graphs + weights without volatile metadata, plus the build options.
    fingerprint: str
    build_options: dict[str, Any]
    io_signature: dict[str, ComponentSig]
    ros_param_keys: dict[str, list[str]] = {}
    # Build environment per target key, e.g. {"tensorrt-10.13-sm86": {"tensorrt": "10.13.0", ...}}.
    environments: dict[str, dict[str, str]] = {}
    # Build targets that could not build where this was published: target -> reason.
    skipped_targets: dict[str, str] = {}
    files: list[FileEntry]
    # Headline metric per evaluated endpoint, and mean end-to-end latency (ms) per endpoint.
    headline: str = ""
    metrics: dict[str, float] = {}
    latency_ms: dict[str, float] = {}
    # Every scalar metric per endpoint (per-class AP, recall per class...), for the registry's site.
    metric_details: dict[str, dict[str, float]] = {}
    # None: the model belongs to no Autoware package (no Hugging Face channel, no autoware layout).
    autoware: AutowarePackage | None = None

    @property
    def targets(self) -> list[str]:
        return sorted({f.target for f in self.files})

    def identity(self) -> dict[str, Any]:
        """What a consumer gets: everything but the measurements (metrics, latency), which vary run to run."""
        return self.model_dump(mode="json", exclude={"headline", "metrics", "latency_ms", "metric_details"})


class Manifest(Strict):
    schema_version: int = MANIFEST_SCHEMA
    # Version of the descriptor/manifest interface consumers code against (ModelZoo rule X).
    interface_version: str = DESCRIPTOR_INTERFACE_VERSION
    version: str
    # A Z>0 release publishes no artifacts: it points at X.Y.0 (ModelZoo rule Z).
    alias_of: str | None = None
    git_commit: str = "unknown"
    # Bleeding edge published with --allow-dirty only: the workspace was not `git_commit`, and the
    # sha256 of its difference (`git diff --binary HEAD` plus untracked model files). Left out when clean.
    dirty: bool = False
    dirty_diff_sha256: str | None = None
    models: dict[str, ModelEntry] = {}

    def _dump(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if not self.dirty:  # a clean manifest reads as it did before these fields existed
            data.pop("dirty")
            data.pop("dirty_diff_sha256")
        return data

    def content_key(self) -> str:
        """Canonical JSON: two manifests with the same key publish the same release."""
        return json.dumps(self._dump(), sort_keys=True, separators=(",", ":"))

    def to_json(self) -> str:
        return json.dumps(self._dump(), indent=2, sort_keys=True) + "\n"

    def identity_key(self) -> str:
        """Canonical JSON of what the release serves (not metrics, latency or the commit it was built at)."""
        data = {
            "interface_version": self.interface_version,
            "alias_of": self.alias_of,
            "models": {name: m.identity() for name, m in self.models.items()},
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def parse_manifest(text: str | bytes, where: str) -> Manifest:
    """A manifest from JSON, or a one-line ValueError naming `where` and the first bad field."""
    from pydantic import ValidationError

    try:
        return Manifest.model_validate_json(text)
    except ValidationError as err:
        raise ValueError(format_validation_error(where, err)) from None


def manifest_path(version: str) -> str:
    return f"releases/{version}/manifest.json"


def artifact_record_path(algorithm: str, model: str, artifact_version: str) -> str:
    """Written once, after every file of an artifact version is uploaded: its files with sha256 and size."""
    return f"models/{algorithm}/{model}/{artifact_version}/artifact.json"


def artifact_prefix(algorithm: str, model: str, artifact_version: str, target: str) -> str:
    return f"models/{algorithm}/{model}/{artifact_version}/{target}"
