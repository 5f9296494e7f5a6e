"""Plain-PyTorch source: a factory `module:function` (or `file.py:function` in the model folder)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.sources.checkpoint import load_state_dict

if TYPE_CHECKING:
    import torch

    from pipelines.workspace import ModelContext


def resolve_factory(ctx: ModelContext, spec: str) -> Callable[..., Any]:
    module_name, _, func = spec.partition(":")
    where = f"{ctx.descriptor_file}: source.factory"
    if module_name.endswith(".py"):
        path = ctx.dir / module_name
        if not path.is_file():
            raise ModelzooError(f"{where}: {path.relative_to(ctx.root)} not found")
        module = ctx.load_module(path)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ModelzooError(f"{where}: cannot import '{module_name}': {err}") from None
    factory = getattr(module, func, None)
    if not callable(factory):
        raise ModelzooError(f"{where}: '{spec}' has no function '{func}'")
    return factory


def build(ctx: ModelContext) -> dict[str, torch.nn.Module]:
    import torch

    src = ctx.descriptor.source
    assert src.factory
    made = resolve_factory(ctx, src.factory)(**src.factory_args)
    modules = made if isinstance(made, dict) else {ctx.descriptor.components[0].name: made}
    state = load_state_dict(ctx.checkpoint)
    holder = torch.nn.ModuleDict(modules) if len(modules) > 1 else next(iter(modules.values()))
    missing, unexpected = holder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelzooError(
            f"{ctx.checkpoint.relative_to(ctx.root)}: does not fit the model: "
            f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}"
        )
    return dict(modules)
