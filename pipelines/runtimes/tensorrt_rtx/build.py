"""Target `tensorrt_rtx`: strongly typed TensorRT-RTX engines built ahead of time on the CPU, one per
component, precision variant and compute capability listed in `build.rtx_compute_capabilities`, under
`build/tensorrt_rtx-<X.Y>-sm<NN>/<precision>/<component>.engine` with `.engine.json` beside each.

Parsing, the optimization profile and the build itself are the TensorRT target's `build_plan` (the
Python API is the same). What differs, as measured with TensorRT-RTX 1.7.1:
- the compute capability is named (a CPU build has no GPU to take it from);
- no timing cache: its calls are deprecated no-ops, and a non-empty cache logs a CUDA error on the CPU;
- no hardware or version compatibility: the level is ignored with a warning, VERSION_COMPATIBLE fails
  (no lean runtime), so `hardware_compatible`/`version_compatible` do not apply and are recorded so;
- every network is strongly typed (as in the TensorRT target);
- kernels are compiled on the GPU at first run, so on the CPU the check after the build is what can
  be checked without one (a non-empty plan, metadata consistent with the ONNX file and the folder);
  where a GPU of that capability is present the plan is also deserialized.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.fileio import sha256_file, write_json
from pipelines.runtimes.base import TargetEnvironment, major_minor
from pipelines.runtimes.tensorrt.build import SUFFIX, build_plan, metadata_path, onnx_precision, profiles_json
from pipelines.runtimes.tensorrt_rtx.probe import PRODUCT, folder_key, load, not_executed, probe, supported_gpu

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

__all__ = ["SUFFIX", "build", "describe", "folders"]

NOTE = "built on the CPU by {product} {version}; kernels are compiled on the GPU at first run; not executed here"


def _cc(sm: str) -> str:
    digits = sm.removeprefix("sm")
    return f"{digits[:-1]}.{digits[-1]}"


def folders(ctx: ModelContext, env: TargetEnvironment) -> dict[str, dict[str, str]]:
    """One build folder per listed compute capability, each with its manifest details."""
    return {
        folder_key(env.key, sm): {**(env.details or {}), "compute_capability": _cc(sm)}
        for sm in ctx.descriptor.build.rtx_compute_capabilities
    }


def describe(ctx: ModelContext, env: TargetEnvironment) -> str:
    """What build.json says ran: "built by TensorRT-RTX 1.7 on the CPU, not executed: no CUDA GPU"."""
    version = (env.details or {}).get("tensorrt_rtx", "?")
    device = supported_gpu()
    if not isinstance(device, str) and device.sm in ctx.descriptor.build.rtx_compute_capabilities:
        built = f"built by {PRODUCT} {major_minor(version)} on the CPU"
        return f"{built}; the {device.sm} engines deserialized on {device.name}"
    return not_executed(version)


def build(src: Path, dest: Path, ctx: ModelContext, component: str, *, folder: str) -> dict[str, Any]:
    api = load()
    if isinstance(api, str):
        raise ModelzooError(api)
    if TYPE_CHECKING:  # stubs generated from the wheel (tests/test_tensorrt_types.py): it ships none
        import tensorrt_rtx_bindings as trt
    else:
        trt = api
    env = probe()
    sm = folder.removeprefix(f"{env.key}-")
    opts = ctx.descriptor.build

    def configure(config: trt.IBuilderConfig) -> None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(getattr(trt.ComputeCapability, sm.upper()), 0)

    plan = build_plan(api, PRODUCT, src, ctx, component, configure)
    dest.write_bytes(plan.data)
    version = str(trt.__version__)
    device = supported_gpu()
    executed = not isinstance(device, str) and device.sm == sm
    if executed:  # a GPU of this capability: load the plan (compiling its kernels) as the TensorRT target does
        runtime = trt.Runtime(plan.logger)
        if runtime.deserialize_cuda_engine(dest.read_bytes()) is None:
            raise ModelzooError(f"{dest}: the engine just built does not deserialize: {'; '.join(plan.errors)}")
    meta: dict[str, Any] = {
        "runtime": PRODUCT,
        "tensorrt_rtx": version,
        "compute_capability": _cc(sm),
        "environment": folder,
        "precision": onnx_precision(src),
        "strongly_typed": True,
        "profiles": profiles_json(plan.shapes),
        "workspace_mib": opts.workspace_mib,
        "hardware_compatibility": f"not applicable ({PRODUCT} builds for the named compute capability)",
        "version_compatible": False,
        "onnx_sha256": sha256_file(src),
        "engine_bytes": len(plan.data),
        "build_seconds": round(plan.seconds, 3),
        "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "built_on": "cpu",
        "executed": executed,
        "note": f"built by {PRODUCT} {major_minor(version)} on the CPU; deserialized on this {sm} GPU"
        if executed
        else NOTE.format(product=PRODUCT, version=major_minor(version)),
        "inputs": plan.inputs,
        "outputs": plan.outputs,
    }
    write_json(metadata_path(dest), meta)
    check(dest, src, folder)
    return meta


def check(engine: Path, src: Path, folder: str) -> None:
    """What can be checked without a GPU: a non-empty plan whose metadata names this ONNX file,
    its precision, the folder's compute capability and the installed TensorRT-RTX."""
    meta = json.loads(metadata_path(engine).read_text())
    size = engine.stat().st_size if engine.is_file() else 0
    env = probe()
    problems = []
    if size == 0:
        problems.append("empty plan")
    if meta.get("engine_bytes") != size:
        problems.append(f"engine_bytes {meta.get('engine_bytes')} != {size}")
    if meta.get("onnx_sha256") != sha256_file(src):
        problems.append("onnx_sha256 differs from the source ONNX file")
    if meta.get("precision") != onnx_precision(src):
        problems.append(f"precision {meta.get('precision')} differs from the ONNX file's")
    if folder_key(env.key, "sm" + str(meta.get("compute_capability", "")).replace(".", "")) != folder:
        problems.append(f"compute_capability {meta.get('compute_capability')} does not match folder {folder}")
    if (env.details or {}).get("tensorrt_rtx") != meta.get("tensorrt_rtx"):
        problems.append(f"tensorrt_rtx {meta.get('tensorrt_rtx')} is not the installed version")
    if problems:
        raise ModelzooError(f"{metadata_path(engine)}: {'; '.join(problems)}")
