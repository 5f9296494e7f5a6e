"""Stages of the bundled reference models: make their synthetic data, train their checkpoint.

A reference model's folder holds a module (descriptor `reference.module`) with
`make_data(out: Path, seed: int, options: dict)` and `train(ctx, checkpoint: Path) -> dict`.

Data and training depend on the model's recipe (artifacts/<model>/recipe.json), not on its folder:
the recipe holds only what training reads (the descriptor's `reference` and `source` sections and
the sha256 of every other file in the folder but those `reference.exclude` names), so editing a
tolerance, a precision or a budget in model.yaml, or export-only code, does not retrain the model.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipelines.descriptor import DESCRIPTOR_FILE
from pipelines.errors import DescriptorError
from pipelines.fileio import atomic_dir, atomic_path, sha256_file, write_json, write_json_if_changed

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


def reference_module(ctx: ModelContext) -> ModuleType:
    ref = ctx.descriptor.reference
    if ref is None:
        raise DescriptorError(f"models/{ctx.name}/model.yaml: reference: not a bundled reference model")
    path = ctx.dir / ref.module
    if not path.is_file():
        raise DescriptorError(f"models/{ctx.name}/model.yaml: reference.module: {path.name} not found")
    name = f"modelzoo_models.{ctx.name}.reference"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def recipe(ctx: ModelContext) -> dict[str, Any]:
    desc = ctx.descriptor
    files = sorted(
        p for p in ctx.dir.rglob("*") if p.is_file() and p.name != DESCRIPTOR_FILE and "__pycache__" not in p.parts
    )
    exclude = desc.reference.exclude if desc.reference else []
    names = [p.relative_to(ctx.dir).as_posix() for p in files]
    for i, pattern in enumerate(exclude):
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise DescriptorError(f"models/{ctx.name}/model.yaml: reference.exclude[{i}]: '{pattern}' matches no file")
    files = [p for p, n in zip(files, names, strict=True) if not any(fnmatch.fnmatchcase(n, x) for x in exclude)]
    return {
        "model": ctx.name,
        "reference": desc.reference.model_dump(mode="json") if desc.reference else None,
        "source": desc.source.model_dump(mode="json"),
        "files": {p.relative_to(ctx.dir).as_posix(): sha256_file(p) for p in files},
    }


def write_recipe(ctx: ModelContext) -> Path:
    """Write recipe.json; an unchanged recipe keeps its file, so DVC sees nothing new downstream."""
    reference_module(ctx)  # fails early, with the descriptor field, for a model that is no reference model
    write_json_if_changed(ctx.recipe, recipe(ctx))
    return ctx.recipe


def make_data(ctx: ModelContext) -> None:
    module = reference_module(ctx)
    ref = ctx.descriptor.reference
    assert ref is not None
    with atomic_dir(ctx.dataset) as out:
        module.make_data(out, ref.seed, ref.options)
        write_json(out / "dataset.json", {"model": ctx.name, "seed": ref.seed, "options": ref.options})


def train(ctx: ModelContext) -> None:
    module = reference_module(ctx)
    with atomic_path(ctx.checkpoint) as tmp:
        info = module.train(ctx, tmp)
    log_path = ctx.checkpoint.parent / "train_log.json"
    write_json(log_path, info)
    log.info("trained %s in %ss", ctx.name, info.get("seconds"))
    log.debug(json.dumps(info))
