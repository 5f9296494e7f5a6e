"""Precision policies as ONNX transformations: fp32 (as exported), fp16 (mixed), int8 (explicit Q/DQ).

Precision lives in the ONNX graph, not in builder flags: TensorRT 11 removed the weak-typing flags
(BuilderFlag.FP16/INT8 and the calibrators), and a strongly typed network built from these files is
the same on TensorRT 10 and 11. ONNX Runtime runs the same files on the CPU, so every variant is
verified against the fp32 export and evaluated here, before any GPU sees it.

Libraries (tried here, see README "Precision and TensorRT"):
- fp16: onnxconverter-common's float16 conversion (keep_io_types, op block list). NVIDIA ModelOpt's
  AutoCast was the alternative, but its `[onnx]` extra pins onnx~=1.21 (we run 1.23), pulls
  onnxruntime-gpu~=1.24, which installs the same `onnxruntime` package as our CPU 1.31 and replaces
  it, and cupy-cuda12x, a CUDA 12 wheel on every CPU-only machine. onnxconverter-common is a
  dependency of that extra anyway.
- int8: ONNX Runtime's quantize_static in QDQ format, symmetric int8 activations (per tensor) and
  weights (per channel), biases kept in fp32: what TensorRT's explicit quantization consumes
  (zero points 0, no int32 bias), with no dependency beyond onnxruntime. Q/DQ pairs go on the
  inputs of weighted layers only (Conv, ConvTranspose, MatMul, Gemm), as TensorRT's guidance for
  explicit quantization places them: TensorRT fuses them into int8 kernels, and everything between
  (activations, residual adds, box decoding) stays in floating point. On YOLOX that placement
  alone took the int8 mAP drop from 2.1 to 1.5 points; see README "Precision and TensorRT".
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import DescriptorError, ModelzooError
from pipelines.stages.signature import check_signature, stamp_metadata

if TYPE_CHECKING:
    import onnx

    from pipelines.runtimes.base import Arrays
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)

# Layers whose inputs get Q/DQ pairs; their outputs are not quantized.
WEIGHTED_OPS = ["Conv", "ConvTranspose", "MatMul", "Gemm"]
# Inputs of the quantizer that say what the Q/DQ graph is; recorded in build.json.
INT8_OPTIONS = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "OpTypesToExcludeOutputQuantization": WEIGHTED_OPS,
}


def fp16_block_list(ctx: ModelContext) -> list[str]:
    """Op types kept in fp32: the converter's own list (ops with no fp16 kernel or that lose range,
    e.g. Resize, TopK, NonMaxSuppression, CumSum) plus the descriptor's build.fp16_block_list."""
    from onnxconverter_common import float16

    return sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(ctx.descriptor.build.fp16_block_list))


def _finish(ctx: ModelContext, component: str, model: onnx.ModelProto, dest: Path, meta: dict[str, str]) -> None:
    """Check the variant (valid ONNX, the descriptor's I/O signature unchanged), stamp it, save it."""
    import onnx

    comp = next(c for c in ctx.descriptor.components if c.name == component)
    onnx.checker.check_model(model)
    check_signature(model, comp, f"{dest.name} ({meta['precision']} variant of {ctx.descriptor_file})")
    stamp_metadata(model, meta)
    onnx.save(model, str(dest))


def _source_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def convert_fp16(model: onnx.ModelProto, block: list[str]) -> onnx.ModelProto:
    """Mixed fp16 with fp32 inputs/outputs and the block-listed op types in fp32.

    onnxconverter-common fails on a graph output written by a block-listed op (it puts a
    Cast-to-fp16/Cast-to-fp32 pair behind the op, then refuses to remove it): such outputs are taken
    out of graph.output during the conversion, so the op keeps writing them in fp32, and put back."""
    import onnx
    from onnxconverter_common import float16

    # Exported files can hold two value_info entries for one tensor (YOLOX's does); the converter
    # retypes only the first, and ONNX Runtime refuses the file over the stale fp32 one. Infer afresh.
    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    producer = {out: n.op_type for n in model.graph.node for out in n.output}
    consumed = {i for n in model.graph.node for i in n.input}
    order = [o.name for o in model.graph.output]
    detached = {
        o.name: onnx.ValueInfoProto.FromString(o.SerializeToString())
        for o in model.graph.output
        if producer.get(o.name) in block and o.name not in consumed
    }
    kept = [o for o in model.graph.output if o.name not in detached]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    out = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block, disable_shape_infer=True)
    converted = {o.name: o for o in out.graph.output}
    outputs = [converted.get(name) or detached[name] for name in order]
    del out.graph.output[:]
    out.graph.output.extend(outputs)
    return out


def make_fp16(ctx: ModelContext, component: str, dest: Path) -> dict[str, Any]:
    import onnx
    import onnxconverter_common

    src = onnx.load(str(ctx.onnx_path(component)))
    block = fp16_block_list(ctx)
    model = convert_fp16(src, block)
    present = sorted({n.op_type for n in src.graph.node} & set(block))
    _finish(ctx, component, model, dest, {**_source_metadata(src), "precision": "fp16"})
    return {
        "tool": f"onnxconverter-common {onnxconverter_common.__version__}",
        "keep_io_types": True,
        "descriptor_block_list": list(ctx.descriptor.build.fp16_block_list),
        "kept_fp32_op_types": present,
    }


@dataclass(frozen=True)
class CalibrationSet:
    """The inputs of one component for int8 calibration, and what identifies them."""

    dataset: str
    split: str
    indices: list[int]
    inputs: list[Arrays]

    @property
    def sha256(self) -> str:
        """Hash of the arrays fed to the quantizer (names, dtypes, shapes, bytes), in order: it
        changes with the samples and with the task's preprocessing."""
        digest = hashlib.sha256()
        for feed in self.inputs:
            for name in sorted(feed):
                a = feed[name]
                digest.update(f"{name}|{a.dtype.str}|{list(a.shape)}|".encode())
                digest.update(a.tobytes())
        return digest.hexdigest()

    def record(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "samples": len(self.indices),
            "indices": self.indices,
            "sha256": self.sha256,
        }


_CALIBRATION: dict[tuple[str, str, int], dict[str, CalibrationSet]] = {}


def calibration_sets(ctx: ModelContext) -> dict[str, CalibrationSet]:
    """Every component's calibration inputs: the first build.calibration_samples samples of the
    evaluation split, through the task's own preprocessing (Task.calibration_inputs), so each
    component sees exactly what the pipeline feeds it (CenterPoint's head gets real
    pillar-feature maps, not noise). One PyTorch run serves every component."""
    from pipelines.tasks import get_task
    from pipelines.tasks.base import Task

    desc = ctx.descriptor
    n = desc.build.calibration_samples
    key = (str(ctx.root), ctx.name, n)
    if key in _CALIBRATION:
        return _CALIBRATION[key]
    task = get_task(ctx)
    samples = task.load_samples(ctx.dataset, desc.evaluation.split, n)
    if not samples:
        split = desc.evaluation.split
        raise ModelzooError(f"{desc.evaluation.dataset}: split '{split}' is empty: nothing to calibrate on")
    if len(samples) < n:
        log.warning("calibration: split has %d samples, build.calibration_samples asks %d", len(samples), n)
    names = [c.name for c in desc.components]
    if type(task).calibration_inputs is Task.calibration_inputs:
        captured = task.capture_inputs(samples)  # the default hook, run once for all components
        inputs = {c: captured.get(c, []) for c in names}
    else:
        inputs = {c: task.calibration_inputs(samples, c) for c in names}
    sets = {}
    for comp in names:
        if not inputs[comp]:
            raise ModelzooError(
                f"{ctx.descriptor_file}: components.{comp}: the task never ran this component on calibration data"
            )
        indices = list(range(len(samples)))
        sets[comp] = CalibrationSet(desc.evaluation.dataset, desc.evaluation.split, indices, inputs[comp])
    _CALIBRATION[key] = sets
    return sets


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: Sequence[Arrays]):
        self._it: Iterator[Arrays] = iter(feeds)

    def get_next(self) -> Arrays | None:
        return next(self._it, None)


def excluded_nodes(ctx: ModelContext, model: onnx.ModelProto, patterns: list[str] | None = None) -> list[str]:
    """Names of the weighted nodes (the only ones that get Q/DQ) that build.int8_exclude keeps in
    floating point."""
    patterns = ctx.descriptor.build.int8_exclude if patterns is None else patterns
    return [
        n.name
        for n in model.graph.node
        if n.op_type in WEIGHTED_OPS and any(fnmatch.fnmatchcase(n.name, p) for p in patterns)
    ]


def _check_exclusions(ctx: ModelContext) -> None:
    """A pattern that matches no node of any component is a descriptor error: a typo would
    silently quantize the layer it meant to keep."""
    import onnx

    patterns = ctx.descriptor.build.int8_exclude
    if not patterns:
        return
    models = [onnx.load(str(ctx.onnx_path(c.name))) for c in ctx.descriptor.components]
    for i, pattern in enumerate(patterns):
        if not any(excluded_nodes(ctx, m, [pattern]) for m in models):
            raise DescriptorError(
                f"{ctx.descriptor_file}: build.int8_exclude[{i}]: '{pattern}' matches no {'/'.join(WEIGHTED_OPS)} node"
            )


def _check_fixed_shapes(ctx: ModelContext, component: str, calib: CalibrationSet) -> None:
    method = ctx.descriptor.build.calibration_method
    if method == "MinMax":
        return
    shapes = {name: {feed[name].shape for feed in calib.inputs} for name in calib.inputs[0]}
    varying = sorted(name for name, seen in shapes.items() if len(seen) > 1)
    if varying:
        raise DescriptorError(
            f"{ctx.descriptor_file}: build.calibration_method: {method} needs one input shape per component, but "
            f"{component}.{varying[0]} varies across calibration samples: use MinMax"
        )


def make_int8(ctx: ModelContext, component: str, dest: Path) -> dict[str, Any]:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = ctx.descriptor.build.calibration_method
    _check_exclusions(ctx)
    calib = calibration_sets(ctx)[component]
    _check_fixed_shapes(ctx, component, calib)
    src_path = ctx.onnx_path(component)
    src = onnx.load(str(src_path))
    with tempfile.TemporaryDirectory(prefix="modelzoo-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Shape inference + ONNX-standard graph folding, as onnxruntime recommends before quantizing.
        quant_pre_process(str(src_path), str(pre), skip_symbolic_shape=True)
        pre_model = onnx.load(str(pre))
        excluded = excluded_nodes(ctx, pre_model)
        lost = [
            p
            for p in ctx.descriptor.build.int8_exclude
            if excluded_nodes(ctx, src, [p]) and not excluded_nodes(ctx, pre_model, [p])
        ]
        if lost:
            raise DescriptorError(
                f"{ctx.descriptor_file}: build.int8_exclude: '{lost[0]}' matches {component} nodes that ONNX Runtime's "
                "pre-processing renamed or fused away: match the names in its output"
            )
        quantize_static(
            str(pre),
            str(dest),
            _Feeds(calib.inputs),  # type: ignore[arg-type]  # a duck-typed CalibrationDataReader
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=WEIGHTED_OPS,
            nodes_to_exclude=excluded,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
            extra_options=dict(INT8_OPTIONS),
        )
    model = onnx.load(str(dest))
    record = calib.record()
    meta = {**_source_metadata(src), "precision": "int8", "calibration_sha256": record["sha256"]}
    _finish(ctx, component, model, dest, meta)
    ops = [n.op_type for n in model.graph.node]
    return {
        "tool": f"onnxruntime.quantization {onnxruntime.__version__}",
        "format": "QDQ",
        "activations": "int8, symmetric, per tensor",
        "weights": "int8, symmetric, per channel",
        "quantized_op_types": WEIGHTED_OPS,
        "excluded_nodes": excluded,
        "calibration_method": method,
        "options": INT8_OPTIONS,
        "quantize_nodes": ops.count("QuantizeLinear"),
        "dequantize_nodes": ops.count("DequantizeLinear"),
        "calibration": record,
    }


POLICIES = {"fp16": make_fp16, "int8": make_int8}


def make_variant(ctx: ModelContext, precision: str, component: str, dest: Path) -> dict[str, Any]:
    """Write the `precision` variant of a component's fp32 ONNX to `dest`; returns what was done."""
    if precision not in POLICIES:
        known = ", ".join(["fp32", *POLICIES])
        raise ModelzooError(
            f"{ctx.descriptor_file}: build.precisions: '{precision}' has no ONNX policy (known: {known})"
        )
    return POLICIES[precision](ctx, component, dest)
