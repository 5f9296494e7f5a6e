"""`modelzoo validate`: every descriptor, its task options, and its wiring in params.yaml."""

from __future__ import annotations

from pathlib import Path

from pipelines.descriptor import list_models, load_descriptor
from pipelines.errors import DescriptorError
from pipelines.workspace import PARAMS_FILE, ModelContext, load_params


def check_wiring(root: Path, ctx: ModelContext, entry: dict[str, object]) -> None:
    """params.yaml wires a model's checkpoint and dataset into DVC; they must match the descriptor."""
    desc = ctx.descriptor
    expect = {
        "checkpoint": str(ctx.checkpoint.relative_to(root)),
        "dataset": desc.evaluation.dataset,
    }
    for key, want in expect.items():
        got = entry.get(key)
        if got != want:
            raise DescriptorError(
                f"{PARAMS_FILE}: models.{ctx.name}.{key}: is {got!r}, models/{ctx.name}/model.yaml says {want!r}"
            )
    if desc.reference is not None:
        made = {"checkpoint": f"artifacts/{ctx.name}/reference/checkpoint.pth", "dataset": f"data/{ctx.name}"}
        for key, want in made.items():
            if expect[key] != want:
                raise DescriptorError(
                    f"models/{ctx.name}/model.yaml: {key}: a reference model's {key} is made at {want!r}"
                )


def check_reference_list(root: Path, names: list[str], listed: list[str]) -> None:
    for name in listed:
        if load_descriptor(root, name).reference is None:
            raise DescriptorError(f"{PARAMS_FILE}: reference_models: {name} has no reference block")


def validate_all(root: Path, names: list[str] | None = None) -> list[str]:
    from pipelines.tasks import get_task

    all_params = load_params(root)
    params = all_params["models"]
    listed = list(all_params.get("reference_models") or [])
    if names is None:
        names = sorted(set(list_models(root)) | set(params))
    for name in names:
        ctx = ModelContext(root, load_descriptor(root, name))
        get_task(ctx)  # validates task_options
        if name not in params:
            raise DescriptorError(f"{PARAMS_FILE}: models.{name}: missing (every model folder must be listed)")
        check_wiring(root, ctx, params[name] or {})
        if ctx.descriptor.reference is not None and name not in listed:
            raise DescriptorError(f"{PARAMS_FILE}: reference_models: {name} is a reference model, not listed")
    check_reference_list(root, names, [n for n in listed if n in names])
    return names
