"""Where things live: the repository root, params.yaml, and each model's artifact paths."""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipelines.descriptor import DESCRIPTOR_FILE, MODELS_DIR, Descriptor, load_descriptor, model_dir
from pipelines.errors import DescriptorError
from pipelines.gitrepo import PARAMS_FILE
from pipelines.yamlio import load_yaml

ARTIFACTS = "artifacts"


def load_params(root: Path) -> dict[str, Any]:
    return check_params(load_yaml(root / PARAMS_FILE, PARAMS_FILE))


def check_params(data: Any) -> dict[str, Any]:
    """params.yaml's shape: `models` maps each model name to a mapping of its settings (or nothing)."""
    data = data or {}
    if not isinstance(data, dict):
        raise DescriptorError(f"{PARAMS_FILE}: (top level): expected a mapping, got {type(data).__name__}")
    if not isinstance(data.get("models"), dict):
        raise DescriptorError(f"{PARAMS_FILE}: models: expected a mapping of model name -> settings")
    for name, entry in data["models"].items():
        if entry is not None and not isinstance(entry, dict):
            raise DescriptorError(
                f"{PARAMS_FILE}: models.{name}: expected a mapping (checkpoint, dataset...), got {type(entry).__name__}"
            )
    return data


@dataclass(frozen=True)
class ModelContext:
    """One model: its descriptor and every path the stages read or write."""

    root: Path
    descriptor: Descriptor

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def dir(self) -> Path:
        return model_dir(self.root, self.name)

    @property
    def descriptor_file(self) -> str:
        """The descriptor as messages name it: `models/<name>/model.yaml`."""
        return f"{MODELS_DIR}/{self.name}/{DESCRIPTOR_FILE}"

    def load_module(self, path: Path, stem: str | None = None) -> ModuleType:
        """A Python file of the model folder, imported as `modelzoo_models.<model>.<stem>` (the file's
        stem unless given) and registered in sys.modules, so that pickle and dataclasses find it."""
        name = f"modelzoo_models.{self.name}.{stem or path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    def rel(self, path: Path) -> str:
        """A path as messages show it: relative to the repository root when inside it."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    @property
    def artifacts(self) -> Path:
        return self.root / ARTIFACTS / self.name

    @property
    def checkpoint(self) -> Path:
        return self.root / self.descriptor.source.checkpoint

    @property
    def recipe(self) -> Path:
        """What a reference model's data and training stages read (pipelines/reference.py)."""
        return self.root / ARTIFACTS / self.name / "recipe.json"

    @property
    def dataset(self) -> Path:
        return self.root / self.descriptor.evaluation.dataset

    @property
    def onnx_dir(self) -> Path:
        return self.artifacts / "onnx"

    @property
    def build_dir(self) -> Path:
        return self.artifacts / "build"

    def onnx_path(self, component: str, precision: str = "fp32") -> Path:
        """The ONNX file of a component at a precision (fp32 is the export itself)."""
        if precision == "fp32":
            return self.onnx_dir / f"{component}.onnx"
        return self.build_dir / "onnx" / precision / f"{component}.onnx"

    def target_dir(self, target_key: str, precision: str, build_dir: Path | None = None) -> Path:
        return (build_dir or self.build_dir) / target_key / precision

    @property
    def verify_report(self) -> Path:
        return self.artifacts / "verify.json"

    @property
    def metrics(self) -> Path:
        return self.artifacts / "metrics.json"

    @property
    def plots_dir(self) -> Path:
        return self.artifacts / "plots"


@functools.cache
def model_context(root: Path, name: str) -> ModelContext:
    return ModelContext(root=root, descriptor=load_descriptor(root, name))
