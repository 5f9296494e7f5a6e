"""The ONNX files' contract with the descriptor, shared by export and build's precision variants:
the I/O signature check and the modelzoo metadata stamp."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelzooError
from pipelines.version import __version__

if TYPE_CHECKING:
    import onnx

    from pipelines.descriptor import Component, TensorSpec

ONNX_DTYPES = {
    "float32": 1,
    "uint8": 2,
    "int32": 6,
    "int64": 7,
    "bool": 9,
    "float16": 10,
}


def stamp_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in meta.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "modelzoo"
    model.producer_version = __version__


def _shape(vi: Any) -> list[int | str]:
    return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]


def check_signature(model: onnx.ModelProto, comp: Component, where: str) -> None:
    """The ONNX file's inputs/outputs must be exactly the descriptor's: names, dtypes, shapes."""

    def compare(kind: str, actual: list[Any], expected: list[TensorSpec]) -> None:
        got = [v.name for v in actual]
        want = [t.name for t in expected]
        if got != want:
            raise ModelzooError(f"{where}: components.{comp.name}.{kind}: ONNX has {got}, descriptor {want}")
        for vi, spec in zip(actual, expected, strict=True):
            dtype = vi.type.tensor_type.elem_type
            if dtype != ONNX_DTYPES[spec.dtype]:
                raise ModelzooError(
                    f"{where}: components.{comp.name}.{kind}.{spec.name}: dtype {dtype} in ONNX, "
                    f"descriptor {spec.dtype}"
                )
            shape = _shape(vi)
            if shape != list(spec.shape):
                raise ModelzooError(
                    f"{where}: components.{comp.name}.{kind}.{spec.name}: shape {shape} in ONNX, "
                    f"descriptor {list(spec.shape)}"
                )

    compare("inputs", list(model.graph.input), comp.inputs)
    compare("outputs", list(model.graph.output), comp.outputs)
