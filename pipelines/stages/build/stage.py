"""The build stage: precision variants of the ONNX files, then one deployable artifact per target.

A target that cannot build here (no TensorRT, no GPU) records why in build.json and writes no file:
its environment key differs on a capable machine, so DVC reruns the build there.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pipelines.buildenv import BUILD_ENVIRONMENT, build_environment
from pipelines.fileio import atomic_dir, sha256_file, write_json
from pipelines.runtimes import build_folders, get_target, target_environment
from pipelines.stages.build.precision import make_variant

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


def run_build(ctx: ModelContext) -> dict[str, Any]:
    desc = ctx.descriptor
    report: dict[str, Any] = {"model": desc.name, "precisions": {}, "targets": {}}
    with atomic_dir(ctx.build_dir) as out:
        variants: dict[tuple[str, str], Any] = {}
        for precision in desc.build.precisions:
            info: dict[str, Any] = {}
            for comp in desc.components:
                fp32 = ctx.onnx_path(comp.name)
                if precision == "fp32":
                    variants[precision, comp.name] = fp32
                    continue
                dest = out / "onnx" / precision / f"{comp.name}.onnx"
                dest.parent.mkdir(parents=True, exist_ok=True)
                log.info("precision %s: %s/%s", precision, desc.name, comp.name)
                info[comp.name] = make_variant(ctx, precision, comp.name, dest)
                info[comp.name]["sha256"] = sha256_file(dest)
                variants[precision, comp.name] = dest
            report["precisions"][precision] = info

        for target in desc.build.targets:
            env = target_environment(target)
            entry: dict[str, Any] = {"environment": env.to_json(), "built": {}}
            report["targets"][target] = entry
            if not env.available:
                log.warning("target %s skipped: %s", target, env.reason)
                entry["skipped"] = env.reason
                continue
            builder = get_target(target)
            # One folder per environment key; TensorRT-RTX builds one per compute capability.
            folders = build_folders(target, ctx, env)
            entry["environments"] = folders
            if hasattr(builder, "describe"):  # what ran, for targets whose build is not what runs
                entry["note"] = builder.describe(ctx, env)
            several = hasattr(builder, "folders")
            for key in folders:
                for (variant, component), src in variants.items():
                    dest = ctx.target_dir(key, variant, out) / f"{component}{builder.SUFFIX}"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    start = time.perf_counter()
                    log.info("build %s %s/%s -> %s", target, desc.name, component, dest.relative_to(out))
                    meta = (
                        builder.build(src, dest, ctx, component, folder=key)
                        if several
                        else builder.build(src, dest, ctx, component)
                    )
                    name = f"{key}/{variant}/{component}" if several else f"{variant}/{component}"
                    entry["built"][name] = {
                        "file": str(dest.relative_to(out)),
                        "environment_key": key,
                        "precision": variant,
                        "sha256": sha256_file(dest),
                        "source_onnx_sha256": sha256_file(src),
                        "seconds": round(time.perf_counter() - start, 3),
                        **meta,
                    }
        write_json(out / "build.json", report)
        write_json(out / BUILD_ENVIRONMENT, build_environment().to_json())
    return report
