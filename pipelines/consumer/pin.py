"""The pin file (`modelzoo.yaml` in a consumer's repository): which release, which models, which target.

registry: s3://models-bucket/modelzoo   # or https://..., file://..., a path (relative: to this file)
endpoint_url: null                      # an S3-compatible endpoint (MinIO, ...); optional
version: 1.2.0                          # X.Y.Z, or bleedingedge (for testing)
target: tensorrt-sm86                   # see pipelines.consumer.targets
precisions: [fp16]                      # optional: only these precisions (default: all)
interface: ">=1.0.0,<2.0.0"             # accepted descriptor interface versions
models: [centerpoint, yolox]
dest: autoware_data                     # where fetch writes <dest>/<model>/<file> (relative: to this file)
public_key: keys/modelzoo.pub           # the publisher's EC public key (a PEM file, relative: to this file,
                                        # or the PEM itself): fetch refuses a release it did not sign
layout: model                           # or autoware: <dest>/<package>/<file>, as Autoware's launch files read
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipelines.consumer.compat import InterfaceRange
from pipelines.errors import UsageError, format_validation_error
from pipelines.fileio import write_text
from pipelines.registry.location import RegistryLocation
from pipelines.registry.releases import check_version
from pipelines.registry.signing import Verifier, load_verifier
from pipelines.yamlio import dump_yaml, load_yaml

PIN_FILE = "modelzoo.yaml"
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TARGET = re.compile(r"^[a-z0-9][a-z0-9._]*(-[a-z0-9._]+)*$")
HEADER = "# Which modelzoo release this repository uses: `modelzoo fetch` downloads exactly these files.\n"


class Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str
    endpoint_url: str | None = None
    version: str
    target: str = "onnx"
    precisions: list[Literal["fp32", "fp16", "int8"]] | None = None
    interface: str = ">=1.0.0,<2.0.0"
    models: list[str]
    dest: str = "autoware_data"
    public_key: str | None = None
    # "model": <dest>/<model>/<file>; "autoware": <dest>/<autoware package>/<file> (pipelines/registry/layout.py).
    layout: Literal["model", "autoware"] = "model"

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_version(v, git_tag=False, bleeding_edge=True)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not TARGET.match(v):
            raise ValueError(f"{v!r}: expected dash-separated lowercase words, e.g. onnx, tensorrt-sm86")
        return v

    @field_validator("interface")
    @classmethod
    def _interface(cls, v: str) -> str:
        InterfaceRange.parse(v)
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one model")
        for name in v:
            if not MODEL_NAME.match(name) or name in (".", ".."):
                raise ValueError(f"{name!r} is not a model name")
        if len(set(v)) != len(v):
            raise ValueError("a model is named twice")
        return v

    def location(self, base: Path) -> RegistryLocation:
        """The registry (a relative local path is relative to the pin file's folder) and its endpoint."""
        return RegistryLocation.resolve(self.registry, self.endpoint_url, base=base)

    def dest_dir(self, base: Path) -> Path:
        return (base / self.dest).resolve()

    def verifier(self, base: Path) -> Verifier | None:
        """The pinned public key (None: signatures are not checked)."""
        return load_verifier(self.public_key, base, "public_key") if self.public_key else None


def load_pin(path: Path) -> Pin:
    if not Path(path).exists():
        raise UsageError(f"{path}: not found (write one with `modelzoo pin`)")
    data = load_yaml(Path(path), str(path), UsageError)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping (registry, version, target, interface, models)")
    try:
        return Pin.model_validate(data)
    except ValidationError as err:
        raise UsageError(format_validation_error(str(path), err)) from None


def save_pin(path: Path, pin: Pin) -> None:
    data = pin.model_dump(mode="json", exclude_none=True)
    if data.get("layout") == "model":
        del data["layout"]  # the default: pin files written before the field stay as they were
    write_text(Path(path), HEADER + dump_yaml(data, sort_keys=False, default_flow_style=None))


def updated_pin(current: Pin | None, **changes: object) -> Pin:
    """`current` with the given (non-None) fields replaced, validated; a new pin if there is none."""
    data = current.model_dump() if current else {}
    data.update({k: v for k, v in changes.items() if v is not None})
    try:
        return Pin.model_validate(data)
    except ValidationError as err:
        raise UsageError(format_validation_error("pin", err)) from None
