"""Stages of the bundled reference models: make their synthetic data, train their checkpoint.

A reference model's folder holds a module (descriptor `reference.module`) with
`make_data(out: Path, seed: int, options: dict)` and `train(ctx, checkpoint: Path) -> dict`.

Data and training depend on the model's recipe (artifacts/<model>/recipe.json), not on its folder:
the recipe holds only what they read (see `recipe`), so editing a tolerance, a precision or a budget
in model.yaml, or export-only code, does not retrain the model.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipelines.descriptor import DESCRIPTOR_FILE
from pipelines.errors import DescriptorError
from pipelines.fileio import atomic_dir, atomic_path, sha256_file, write_json, write_json_if_changed

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)

MODEL_CARD = "README.md"


def reference_module(ctx: ModelContext) -> ModuleType:
    ref = ctx.descriptor.reference
    if ref is None:
        raise DescriptorError(f"{ctx.descriptor_file}: reference: not a bundled reference model")
    path = ctx.dir / ref.module
    if not path.is_file():
        raise DescriptorError(f"{ctx.descriptor_file}: reference.module: {path.name} not found")
    return ctx.load_module(path, "reference")


def recipe(ctx: ModelContext) -> dict[str, Any]:
    """What data and training read. Left out, because training never reads them: the descriptor's
    build, verification and evaluation settings (but the dataset folder), version, description,
    provenance, export-only component fields (opset, dynamic ranges, outputs) and the files that
    `reference.exclude` names (that list itself shows as the set of files hashed)."""
    desc = ctx.descriptor
    ref = desc.reference
    where = f"{ctx.descriptor_file}: reference.exclude"
    # The model card (README.md) is documentation; .dvcignore hides it from the DVC graph as well.
    files = sorted(
        p
        for p in ctx.dir.rglob("*")
        if p.is_file() and p.name != DESCRIPTOR_FILE and p != ctx.dir / MODEL_CARD and "__pycache__" not in p.parts
    )
    names = [p.relative_to(ctx.dir).as_posix() for p in files]
    exclude = ref.exclude if ref else []
    read_by_training = [f for f in (ref.module if ref else None, desc.source.config) if f]
    for i, pattern in enumerate(exclude):
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise DescriptorError(f"{where}[{i}]: '{pattern}' matches no file")
        if hit := next((f for f in read_by_training if fnmatch.fnmatchcase(f, pattern)), None):
            raise DescriptorError(f"{where}[{i}]: '{pattern}' matches {hit}, which training reads")
    return {
        "model": ctx.name,
        "reference": ref.model_dump(mode="json", exclude={"exclude"}) if ref else None,
        "source": desc.source.model_dump(mode="json"),
        "task": desc.task,
        "task_options": desc.task_options,
        "inputs": {c.name: [t.model_dump(mode="json") for t in c.inputs] for c in desc.components},
        "dataset": desc.evaluation.dataset,
        "files": {
            n: sha256_file(p)
            for p, n in zip(files, names, strict=True)
            if not any(fnmatch.fnmatchcase(n, x) for x in exclude)
        },
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
