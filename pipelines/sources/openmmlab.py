"""OpenMMLab source (mmdet, mmdet3d): a config file + checkpoint, as AWML hands a model over.

The detector is built with mmengine (`Config.fromfile`, `register_all_modules`, `MODELS.build`,
`load_checkpoint`), then cut into the exported components: by the task's built-in split (pillar
CenterPoint: voxel encoder + backbone/neck/head), or by `source.factory`, a function
`(detector, cfg) -> {component name: nn.Module}` (YOLOX: one raw-output wrapper), which also overrides
a built-in split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.sources.torch_factory import resolve_factory

if TYPE_CHECKING:
    import torch

    from pipelines.workspace import ModelContext


# (source kind, task) -> the built-in split `(detector, cfg, where) -> components` used when the
# descriptor names no source.factory; `where` is the config file, for messages.
BUILT_IN_SPLITS = {("mmdet3d", "detection3d"): "pipelines.tasks.detection3d.split:components"}


def _scope(kind: str) -> Any:
    """Register the scope's modules and return its MODELS registry."""
    try:
        if kind == "mmdet3d":
            from mmdet3d.registry import MODELS
            from mmdet3d.utils import register_all_modules
        else:
            from mmdet.registry import MODELS
            from mmdet.utils import register_all_modules
    except ImportError as err:
        raise ModelzooError(
            f"{kind} is not installed ({err}): install the 'openmmlab' extra (see README: OpenMMLab models)"
        ) from None
    register_all_modules(init_default_scope=True)
    return MODELS


def load_config(ctx: ModelContext) -> Any:
    from mmengine.config import Config

    src = ctx.descriptor.source
    assert src.config
    path = ctx.dir / src.config
    if not path.is_file():
        raise ModelzooError(f"{ctx.descriptor_file}: source.config: {path.name} not found")
    return Config.fromfile(str(path))


def build_detector(ctx: ModelContext, checkpoint: bool = True) -> tuple[torch.nn.Module, Any]:
    """The full OpenMMLab detector (weights from the checkpoint unless `checkpoint` is False)."""
    from mmengine.runner import load_checkpoint

    models = _scope(ctx.descriptor.source.kind)
    cfg = load_config(ctx)
    detector = models.build(cfg.model)
    if checkpoint:
        load_checkpoint(detector, str(ctx.checkpoint), map_location="cpu", strict=True, logger="silent")
    detector.eval()
    return detector, cfg


def build(ctx: ModelContext) -> dict[str, torch.nn.Module]:
    src = ctx.descriptor.source
    built_in = BUILT_IN_SPLITS.get((src.kind, ctx.descriptor.task))
    if not src.factory and not built_in:
        raise ModelzooError(
            f"{ctx.descriptor_file}: source.factory: a {src.kind} model of task {ctx.descriptor.task} "
            "needs 'file.py:function' returning its export components"
        )
    detector, cfg = build_detector(ctx)
    if src.factory:
        components: dict[str, torch.nn.Module] = resolve_factory(ctx, src.factory)(detector, cfg, **src.factory_args)
        return components
    assert built_in
    return resolve_factory(ctx, built_in)(detector, cfg, where=f"models/{ctx.name}/{src.config}")  # type: ignore[no-any-return]
