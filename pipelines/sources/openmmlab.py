"""OpenMMLab source (mmdet, mmdet3d): a config file + checkpoint, as AWML hands a model over.

The detector is built with mmengine (`Config.fromfile`, `register_all_modules`, `MODELS.build`,
`load_checkpoint`); `source.factory` then names the model folder's function
`(detector, cfg) -> {component name: nn.Module}` that cuts it into the exported components
(CenterPoint: voxel encoder + backbone/neck/head; YOLOX: one raw-output wrapper).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.sources.torch_factory import resolve_factory

if TYPE_CHECKING:
    import torch

    from pipelines.workspace import ModelContext


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
        raise ModelzooError(f"models/{ctx.name}/model.yaml: source.config: {path.name} not found")
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
    if not src.factory:
        raise ModelzooError(
            f"models/{ctx.name}/model.yaml: source.factory: an OpenMMLab model needs "
            "'file.py:function' returning its export components"
        )
    detector, cfg = build_detector(ctx)
    components: dict[str, torch.nn.Module] = resolve_factory(ctx, src.factory)(detector, cfg, **src.factory_args)
    return components
