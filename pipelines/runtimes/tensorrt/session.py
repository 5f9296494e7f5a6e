"""TensorRT backend: runs the engines of the `tensorrt` target (needs TensorRT and a CUDA GPU).

Device memory, the stream and the timing events are PyTorch's, not pycuda's. TensorRT works in the
CUDA runtime's primary context of the device, which is also the context PyTorch uses, so torch
tensors are valid TensorRT bindings and the pytorch-cuda backend can run in the same process.
pycuda's usual `autoinit` creates and pushes a second context of its own; the two then fight over
which context is current. pycuda is also source-only on PyPI (it compiles against a CUDA toolkit),
while torch is already a dependency.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.errors import ModelzooError
from pipelines.runtimes.base import Arrays, BackendUnavailable, TargetEnvironment
from pipelines.runtimes.tensorrt.probe import probe

if TYPE_CHECKING:
    import tensorrt as trt
    import torch

    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext


def _torch_dtypes(api: ModuleType) -> dict[trt.DataType, torch.dtype]:
    import torch

    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = api

    return {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.BF16: torch.bfloat16,
        trt.DataType.INT8: torch.int8,
        trt.DataType.UINT8: torch.uint8,
        trt.DataType.INT32: torch.int32,
        trt.DataType.INT64: torch.int64,
        trt.DataType.BOOL: torch.bool,
    }


class TrtSession:
    """One deserialized engine and its execution context. `device_ms` holds the GPU time of each
    run (CUDA events around execute_async_v3), without the host<->device copies. `api` is the
    TensorRT module: tensorrt, or tensorrt_rtx_bindings for TensorRT-RTX engines (same Python API)."""

    def __init__(self, path: Path, device: str, api: ModuleType | None = None):
        import torch

        if TYPE_CHECKING or api is None:
            import tensorrt as trt
        else:
            trt = api

        self.path = path
        self.device = torch.device(device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        # Plans built VERSION_COMPATIBLE carry the lean runtime they run on.
        self.runtime.engine_host_code_allowed = True
        with torch.cuda.device(self.device):
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise ModelzooError(f"{path}: {trt.__name__} {trt.__version__} cannot deserialize this engine")
            self.engine: trt.ICudaEngine = engine
            self.context: trt.IExecutionContext = engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.device)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        dtypes = _torch_dtypes(trt)
        self.dtypes = {n: dtypes[engine.get_tensor_dtype(n)] for n in names}
        self.device_ms: list[float] = []

    def run(self, inputs: Arrays) -> Arrays:
        import torch

        missing = [n for n in self.inputs if n not in inputs]
        if missing:
            raise ModelzooError(f"{self.path}: inputs {missing} not given (engine inputs: {self.inputs})")
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            bound: dict[str, torch.Tensor] = {}
            for name in self.inputs:
                t = torch.from_numpy(np.ascontiguousarray(inputs[name])).to(self.device, self.dtypes[name])
                bound[name] = t
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    profile = self.engine.get_tensor_profile_shape(name, 0)
                    raise ModelzooError(
                        f"{self.path}: input {name} shape {list(t.shape)} is outside the optimization profile "
                        f"(min/opt/max {[_dims(d) for d in profile]})"
                    )
                self.context.set_tensor_address(name, t.data_ptr())
            for name in self.outputs:
                shape = _dims(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise ModelzooError(f"{self.path}: output {name} has a data-dependent shape {shape}: not supported")
                bound[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                self.context.set_tensor_address(name, bound[name].data_ptr())
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record(self.stream)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ModelzooError(f"{self.path}: execute_async_v3 failed")
            end.record(self.stream)
            host = {n: bound[n].to("cpu", non_blocking=False) for n in self.outputs}
        self.stream.synchronize()
        self.device_ms.append(float(start.elapsed_time(end)))
        return {n: t.numpy() for n, t in host.items()}

    def close(self) -> None:
        # Context before engine before runtime: TensorRT's required destruction order.
        for attr in ("context", "engine", "runtime"):
            if hasattr(self, attr):
                delattr(self, attr)


def _dims(d: Any) -> list[int]:
    return [int(d[i]) for i in range(len(d))]


class TensorRTBackend:
    """Runs the engines of the `tensorrt` target; the TensorRT-RTX backend is this one with its own
    probe, engine folder and module (the hooks below)."""

    name = "tensorrt"

    def environment(self) -> TargetEnvironment:
        return probe()

    def check(self, endpoint: Endpoint) -> None:
        env = self.environment()
        if not env.available:
            raise BackendUnavailable(env.reason)
        if not endpoint.device.startswith("cuda"):
            raise BackendUnavailable(f"{self.name} needs a cuda device, not {endpoint.device}")

    def engine(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> tuple[Path, str]:
        """The engine file to run, and what to do when it is not built."""
        from pipelines.runtimes.tensorrt.build import engine_path

        return engine_path(ctx, self.environment().key, endpoint.precision, component), "run the build stage first"

    def api(self) -> ModuleType | None:
        """The TensorRT module sessions use (None: `tensorrt`)."""
        return None

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> TrtSession:
        self.check(endpoint)
        path, hint = self.engine(ctx, component, endpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not built ({hint})")
        return TrtSession(path, endpoint.device, self.api())


BACKEND = TensorRTBackend()
