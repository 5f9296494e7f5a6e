"""Model sources: build the PyTorch components of a model from its descriptor + checkpoint.

A source module exposes `build(ctx) -> dict[component name, torch.nn.Module]` (weights loaded,
eval mode, on the CPU). Add a source by adding a module and a line in _MODULES.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pipelines.errors import ModelzooError

if TYPE_CHECKING:
    import torch

    from pipelines.workspace import ModelContext

_MODULES = {
    "torch": "pipelines.sources.torch_factory",
    "mmdet": "pipelines.sources.openmmlab",
    "mmdet3d": "pipelines.sources.openmmlab",
}


_BUILT: dict[tuple[str, str], dict[str, torch.nn.Module]] = {}


def _build_cpu(ctx: ModelContext) -> dict[str, torch.nn.Module]:
    key = (str(ctx.root), ctx.name)
    if key in _BUILT:
        return _BUILT[key]
    if not ctx.checkpoint.is_file():
        raise ModelzooError(
            f"{ctx.checkpoint.relative_to(ctx.root)}: checkpoint not found ({ctx.descriptor_file} source.checkpoint)"
        )
    module = importlib.import_module(_MODULES[ctx.descriptor.source.kind])
    components: dict[str, torch.nn.Module] = module.build(ctx)
    expected = {c.name for c in ctx.descriptor.components}
    if set(components) != expected:
        raise ModelzooError(
            f"{ctx.descriptor_file}: components: source builds {sorted(components)}, "
            f"descriptor names {sorted(expected)}"
        )
    for m in components.values():
        m.eval()
    _BUILT[key] = components
    return components


def load_components(ctx: ModelContext, device: str = "cpu") -> dict[str, torch.nn.Module]:
    components = _build_cpu(ctx)
    if device == "cpu":
        return components
    import copy

    return {k: copy.deepcopy(m).to(device) for k, m in components.items()}
