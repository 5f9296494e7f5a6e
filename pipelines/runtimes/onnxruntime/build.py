"""Target `onnxruntime`: an offline-optimized model in ORT format for the CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.runtimes.onnxruntime.session import ORT_SUFFIX, session_options

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

SUFFIX = ORT_SUFFIX
# EXTENDED, not ALL: ALL adds layout rewrites tied to this CPU's instruction set, which would make
# the artifact unportable between x86_64 machines.
LEVEL = "ORT_ENABLE_EXTENDED"


def build(src: Path, dest: Path, ctx: ModelContext, component: str) -> dict[str, Any]:
    import onnxruntime as ort

    from pipelines.ort_format import write_ort

    reproducible = write_ort(src, dest, LEVEL)
    # Load what was written: a file that does not load is not an artifact.
    check = ort.InferenceSession(str(dest), session_options(), providers=["CPUExecutionProvider"])
    return {
        "optimization_level": LEVEL,
        "format": "ORT",
        "reproducible": reproducible,
        "inputs": [i.name for i in check.get_inputs()],
        "outputs": [o.name for o in check.get_outputs()],
    }
