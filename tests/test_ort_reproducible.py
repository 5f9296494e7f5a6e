"""ORT-format builds of one ONNX: the same bytes each time on this machine (pipelines/ort_format.py).

Without the child process (ASLR on, default threads) this model gave 4 different sha256 in 6 builds here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipelines.ort_format import write_ort
from pipelines.runtimes.onnxruntime.build import LEVEL


def small_cnn(path: Path) -> None:
    """Conv+Relu (fused by the optimizer), ReduceMean, Gemm, Add, Sigmoid: several kernel types to order."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    fc = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "fc")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["m", "fc"], ["g"]),
        helper.make_node("Add", ["g", "bias"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w, b, fc, bias],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_ort_builds_are_byte_identical_here(tmp_path: Path) -> None:
    import onnxruntime as ort

    src = tmp_path / "small.onnx"
    small_cnn(src)
    digests, hows = set(), set()
    for i in range(4):
        dest = tmp_path / f"small.{i}.ort"
        hows.add(write_ort(src, dest, LEVEL))
        digests.add(hashlib.sha256(dest.read_bytes()).hexdigest())
    assert len(hows) == 1
    how = hows.pop()
    if how.startswith("same bytes"):
        assert len(digests) == 1, f"{len(digests)} different .ort files from 4 builds: {how}"
    else:  # a sandbox refusing personality(): the documented limit, stated in build.json
        assert "not reproducible" in how
    # Whatever the bytes, the model is the ONNX's: same outputs as the ONNX itself.
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(tmp_path / "small.0.ort"), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
