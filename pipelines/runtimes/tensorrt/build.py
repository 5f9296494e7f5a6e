"""Target `tensorrt`: one strongly typed TensorRT engine per component and precision variant.

Precision comes from the ONNX file (fp16 casts, int8 Q/DQ: pipelines/stages/build/precision.py), so the network is
created STRONGLY_TYPED and no precision flag is set: the same code builds on TensorRT 10 and 11 (which
removed BuilderFlag.FP16/INT8). Engines live under `build/<tensorrt-X.Y-smNN>/<precision>/`, keyed by
what an engine is tied to, with `<component>.engine.json` beside each engine.

Needs TensorRT and a CUDA GPU: the build stage calls `build` only where the probe found both. The
parse-configure-build part, `build_plan`, is shared with TensorRT-RTX (pipelines/runtimes/tensorrt_rtx),
whose Python API is the same there; it takes the module (tensorrt or tensorrt_rtx_bindings) as an
argument and is type-checked against tensorrt-stubs (tests/test_tensorrt_types.py).
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.fileio import atomic_path, sha256_file, write_json

if TYPE_CHECKING:
    import tensorrt as trt

    from pipelines.descriptor import Component
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)

SUFFIX = ".engine"
# The timing cache (kernel timings) is kept between builds, so rebuilds skip most tactic timing.
CACHE_DIR_ENV = "MODELZOO_TRT_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/modelzoo/tensorrt")

Shapes = tuple[list[int], list[int], list[int]]


def profile_shapes(comp: Component, where: str) -> dict[str, Shapes]:
    """min/opt/max shape of every input with a dynamic axis, from the component's dynamic_ranges."""
    shapes: dict[str, Shapes] = {}
    for t in comp.inputs:
        if not t.dynamic_axes:
            continue
        rows: list[list[int]] = [[], [], []]
        for dim in t.shape:
            if isinstance(dim, int):
                for row in rows:
                    row.append(dim)
                continue
            rng = comp.dynamic_ranges.get(dim)
            if rng is None:
                raise ModelzooError(
                    f"{where}: components.{comp.name}.dynamic_ranges: dynamic axis '{dim}' of input "
                    f"'{t.name}' needs min/opt/max for the TensorRT optimization profile"
                )
            for row, value in zip(rows, (rng.min, rng.opt, rng.max), strict=True):
                row.append(value)
        shapes[t.name] = (rows[0], rows[1], rows[2])
    return shapes


def engine_path(ctx: ModelContext, env_key: str, precision: str, component: str) -> Path:
    return ctx.target_dir(env_key, precision) / f"{component}{SUFFIX}"


def metadata_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def timing_cache_path(env_key: str) -> Path:
    """One cache per TensorRT version and GPU (timings of one never apply to another), shared by models."""
    base = Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser()
    return base / f"{env_key}.cache"


def onnx_precision(src: Path) -> str:
    """The precision stamped into the ONNX file by pipelines/stages/build/precision.py (the export itself: fp32)."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    return next((p.value for p in model.metadata_props if p.key == "precision"), "fp32")


def _logger(api: ModuleType) -> tuple[trt.ILogger, list[str]]:
    """A TensorRT logger that forwards to logging, and the list of errors it saw (for the one-line
    message). Defined on first use: its base class exists only where tensorrt is installed."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = api

    errors: list[str] = []

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                errors.append(msg)
                log.error("%s: %s", api.__name__, msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("%s: %s", api.__name__, msg)
            else:
                log.debug("%s: %s", api.__name__, msg)

    return Logger(), errors


def parser_errors(parser: trt.OnnxParser) -> list[str]:
    """Every error of the ONNX parser, each with the node it is about."""
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = f"node {err.node()} '{err.node_name()}' ({err.node_operator()})" if err.node() >= 0 else "graph"
        out.append(f"{node}: {err.desc()} [{err.code()}]")
    return out


def _load_timing_cache(config: trt.IBuilderConfig, path: Path) -> trt.ITimingCache:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("%s: timing cache does not match this TensorRT/GPU: starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    cache = config.get_timing_cache()
    if path.is_file():  # another build may have added timings meanwhile: keep both
        cache.combine(config.create_timing_cache(path.read_bytes()), ignore_mismatch=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(memoryview(cache.serialize()))


@dataclass
class Plan:
    """A serialized engine and what its build saw."""

    data: bytes
    seconds: float
    shapes: dict[str, Shapes]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    # The module's own types: tensorrt's, or tensorrt_rtx_bindings' (which mypy holds apart).
    config: Any
    logger: Any
    errors: list[str]


def build_plan(
    api: ModuleType,
    product: str,
    src: Path,
    ctx: ModelContext,
    component: str,
    configure: Callable[[Any], None],
) -> Plan:
    """Parse `src` into a strongly typed network, add the descriptor's optimization profile, let
    `configure` set what differs between runtimes, and build. Errors name the node or the log line."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = api

    opts = ctx.descriptor.build
    comp = next(c for c in ctx.descriptor.components if c.name == component)
    shapes = profile_shapes(comp, ctx.descriptor_file)

    logger, logged_errors = _logger(api)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    # parse_from_file, not parse(bytes): it resolves external weight files beside the ONNX file.
    if not parser.parse_from_file(str(src)):
        errors = parser_errors(parser) or logged_errors or ["no error reported"]
        raise ModelzooError(f"{src}: {product}'s ONNX parser failed ({len(errors)} errors): {'; '.join(errors)}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, trt.Dims(lo), trt.Dims(opt), trt.Dims(hi))
        config.add_optimization_profile(profile)
    configure(config)

    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None or plan.nbytes == 0:
        raise ModelzooError(f"{src}: {product} engine build failed: {'; '.join(logged_errors) or 'no error logged'}")
    return Plan(
        data=bytes(memoryview(plan)),
        seconds=seconds,
        shapes=shapes,
        inputs=[_tensor(network.get_input(i)) for i in range(network.num_inputs)],
        outputs=[_tensor(network.get_output(i)) for i in range(network.num_outputs)],
        config=config,
        logger=logger,
        errors=logged_errors,
    )


def profiles_json(shapes: dict[str, Shapes]) -> list[dict[str, Any]]:
    return [{name: {"min": lo, "opt": opt, "max": hi} for name, (lo, opt, hi) in shapes.items()}]


def build(src: Path, dest: Path, ctx: ModelContext, component: str) -> dict[str, Any]:
    import tensorrt as trt

    from pipelines.runtimes.tensorrt.probe import probe

    env = probe()
    opts = ctx.descriptor.build
    cache_path = timing_cache_path(env.key)

    def configure(config: trt.IBuilderConfig) -> None:
        if opts.hardware_compatible:
            # Runs on every Ampere-or-newer GPU, at some speed cost; still keyed by the builder's sm.
            config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
        if opts.version_compatible:
            # Runs on later TensorRT versions through the lean runtime embedded in the plan.
            config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        _load_timing_cache(config, cache_path)

    plan = build_plan(trt, "TensorRT", src, ctx, component, configure)
    _save_timing_cache(plan.config, cache_path)
    dest.write_bytes(plan.data)
    # Load what was written: a plan that does not deserialize is not an artifact.
    runtime = trt.Runtime(plan.logger)
    if opts.version_compatible:
        runtime.engine_host_code_allowed = True
    if runtime.deserialize_cuda_engine(dest.read_bytes()) is None:
        raise ModelzooError(f"{dest}: the engine just built does not deserialize: {'; '.join(plan.errors)}")

    details = env.details or {}
    meta: dict[str, Any] = {
        "tensorrt": trt.__version__,
        "gpu": details.get("gpu"),
        "compute_capability": details.get("compute_capability"),
        "environment": env.key,
        "precision": onnx_precision(src),
        "strongly_typed": True,
        "profiles": profiles_json(plan.shapes),
        "workspace_mib": opts.workspace_mib,
        "hardware_compatibility": "AMPERE_PLUS" if opts.hardware_compatible else "NONE",
        "version_compatible": opts.version_compatible,
        "onnx_sha256": sha256_file(src),
        "build_seconds": round(plan.seconds, 3),
        "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "timing_cache": str(cache_path),
        "inputs": plan.inputs,
        "outputs": plan.outputs,
    }
    write_json(metadata_path(dest), meta)
    return meta


def _tensor(t: trt.ITensor) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype.name, "shape": [int(t.shape[i]) for i in range(len(t.shape))]}
