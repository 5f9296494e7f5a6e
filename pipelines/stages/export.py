"""export: PyTorch -> ONNX, one file per component, checked against the descriptor and stamped."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.descriptor import Component
from pipelines.errors import ModelzooError
from pipelines.fileio import atomic_dir, sha256_file, write_json, write_text
from pipelines.gitrepo import head_commit
from pipelines.stages.signature import check_signature, stamp_metadata
from pipelines.tasks import get_task
from pipelines.version import __version__

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


def export_component(module: Any, comp: Component, example: dict[str, np.ndarray], dest: Path) -> None:
    import torch

    args = tuple(torch.from_numpy(example[t.name]) for t in comp.inputs)
    dynamic_axes = {t.name: t.dynamic_axes for t in [*comp.inputs, *comp.outputs] if t.dynamic_axes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: what OpenMMLab models (and AWML) export with; the dynamo
        # exporter does not trace mmdet3d's data-dependent code paths.
        torch.onnx.export(
            module,
            args,
            str(dest),
            input_names=[t.name for t in comp.inputs],
            output_names=[t.name for t in comp.outputs],
            dynamic_axes=dynamic_axes or None,
            opset_version=comp.opset,
            do_constant_folding=True,
            dynamo=False,
        )


def simplify(path: Path) -> None:
    import onnx
    import onnxslim

    slim = onnxslim.slim(onnx.load(str(path)))
    onnx.save(slim, str(path))


def write_ros_params(dest: Path, params: dict[str, Any], meta: dict[str, str]) -> None:
    """A ROS 2 parameter file (`/**: ros__parameters: ...`), stamped with model and modelzoo versions."""
    import yaml

    body = {**params, "model_version": meta["model_version"], "modelzoo_version": __version__}
    text = yaml.safe_dump({"/**": {"ros__parameters": body}}, sort_keys=True, default_flow_style=None)
    write_text(dest, text)


def run_export(ctx: ModelContext) -> dict[str, Any]:
    import onnx

    from pipelines.sources import load_components

    desc = ctx.descriptor
    where = ctx.descriptor_file
    task = get_task(ctx)
    samples = task.load_samples(ctx.dataset, desc.evaluation.split, 1)
    if not samples:
        raise ModelzooError(f"{ctx.dataset}: split '{desc.evaluation.split}' is empty")
    examples = task.capture_inputs(samples)
    modules = load_components(ctx, "cpu")
    meta = {
        "model_name": desc.name,
        "model_version": desc.version,
        "algorithm": desc.algorithm,
        "checkpoint_sha256": sha256_file(ctx.checkpoint),
        "git_commit": head_commit(ctx.root),
        "producer": "modelzoo",
    }
    report: dict[str, Any] = {"model": desc.name, "metadata": meta, "components": {}}
    with atomic_dir(ctx.onnx_dir) as out:
        for comp in desc.components:
            if comp.name not in examples:
                raise ModelzooError(f"{where}: components.{comp.name}: the task never ran this component")
            dest = out / f"{comp.name}.onnx"
            log.info("export %s/%s (opset %d)", desc.name, comp.name, comp.opset)
            export_component(modules[comp.name], comp, examples[comp.name][0], dest)
            if desc.build.simplify:
                simplify(dest)
            model = onnx.load(str(dest))
            onnx.checker.check_model(model, full_check=True)
            check_signature(model, comp, where)
            stamp_metadata(model, meta)
            onnx.save(model, str(dest))
            report["components"][comp.name] = {"file": dest.name, "sha256": sha256_file(dest)}
        for stem, params in task.ros_params().items():
            write_ros_params(out / f"{stem}.param.yaml", params, meta)
            report.setdefault("ros_params", []).append(f"{stem}.param.yaml")
        for name, text in task.deploy_files().items():
            write_text(out / name, text)
            report.setdefault("deploy_files", []).append(name)
        write_json(out / "export.json", report)
    return report
