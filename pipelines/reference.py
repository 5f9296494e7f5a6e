"""Stages of the bundled reference models: make their synthetic data, train their checkpoint.

A reference model's folder holds a module (descriptor `reference.module`) with
`make_data(out: Path, seed: int, options: dict)` and `train(ctx, checkpoint: Path) -> dict`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from pipelines.errors import DescriptorError
from pipelines.fileio import atomic_dir, atomic_path, write_json

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
