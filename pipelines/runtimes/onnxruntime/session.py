"""ONNX Runtime backend: runs the built, offline-optimized model of the `onnxruntime` target."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.runtimes.base import Arrays, BackendUnavailable
from pipelines.runtimes.onnxruntime.probe import probe

if TYPE_CHECKING:
    import onnxruntime as ort

    from pipelines.descriptor import Endpoint
    from pipelines.workspace import ModelContext

ORT_SUFFIX = ".ort"


def session_options(threads: int = 0, spinning: bool = False) -> ort.SessionOptions:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    # Idle ORT threads spin and, on small machines, slow whatever runs next (another backend's
    # timed run, the task's postprocessing).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OrtSession:
    def __init__(self, path: Path, providers: list[str]):
        import onnxruntime as ort

        self.path = path
        self.session = ort.InferenceSession(str(path), session_options(), providers=providers)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: Arrays) -> Arrays:
        outs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outs, strict=True))

    def close(self) -> None:
        del self.session


def built_model_path(ctx: ModelContext, component: str, precision: str) -> Path:
    """The deployable file of the onnxruntime target for this machine's runtime."""
    key = probe().key
    return ctx.target_dir(key, precision) / f"{component}{ORT_SUFFIX}"


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def check(self, endpoint: Endpoint) -> None:
        if endpoint.device != "cpu":
            # onnxruntime-gpu is not a dependency: the GPU path is TensorRT.
            raise BackendUnavailable(f"onnxruntime runs on the CPU here, not {endpoint.device}")

    def open(self, ctx: ModelContext, component: str, endpoint: Endpoint) -> OrtSession:
        self.check(endpoint)
        path = built_model_path(ctx, component, endpoint.precision)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not built (run the build stage first)")
        return OrtSession(path, ["CPUExecutionProvider"])


BACKEND = OnnxRuntimeBackend()
