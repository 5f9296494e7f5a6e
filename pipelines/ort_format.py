"""Writing an ORT-format model (`.ort`) with the same bytes every time, where the OS allows it.

Why builds of one ONNX differed (ONNX Runtime 1.32, four builds, three sha256): the graph, the
initializers and the node order are identical; only the kernel-type-string resolver table at the
head of the flatbuffer (~1.4 KB) is written in the iteration order of a hash map, and that order
follows the hash seed, which is an address in the process (ASLR) and, with several intra-op
threads, the heap layout. So the optimization runs in a fresh child process with address space
randomization off (personality ADDR_NO_RANDOMIZE) and one intra-op thread: measured 6 of 6 (YOLOX)
and 4 of 4 (CenterPoint) identical, against 3 of 4 with ASLR off alone and all different with one
thread alone. The child runs in a fresh folder on fixed file names: the working directory and the
path lengths move the heap, and so the order (three parent folders gave three sha256 before). The
addresses then depend on the interpreter, the libraries, the stack limit and $TMPDIR, so
the bytes repeat on one machine with one environment (provenance/build/environment.json), and
are not promised across machines. Where the personality call is refused (a container's seccomp
profile), the build is not reproducible and says so.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.errors import ModelzooError

ADDR_NO_RANDOMIZE = 0x0040000
_CHILD = """
import json, sys
import onnxruntime as ort
a = json.loads(sys.argv[1])
o = ort.SessionOptions()
o.intra_op_num_threads = 1
o.inter_op_num_threads = 1
o.log_severity_level = 3
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, a["level"])
o.optimized_model_filepath = a["dest"]
o.add_session_config_entry("session.save_model_format", "ORT")
ort.InferenceSession(a["src"], o, providers=["CPUExecutionProvider"])
"""


def _no_aslr() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.personality(ADDR_NO_RANDOMIZE) == -1:
        raise OSError(ctypes.get_errno(), "personality(ADDR_NO_RANDOMIZE) refused")


def write_ort(src: Path, dest: Path, level: str) -> str:
    """Optimize `src` at `level` into `dest` (ORT format); how reproducible the bytes are, in words.

    The child works in a fresh folder of fixed-length name on fixed file names: the working
    directory and the paths' lengths move the heap, and with it the table's order.
    """
    with tempfile.TemporaryDirectory(prefix="modelzoo-ort-") as tmp:
        work = Path(tmp)
        os.symlink(Path(src).resolve(), work / "model.onnx")
        argv = [sys.executable, "-c", _CHILD, json.dumps({"src": "model.onnx", "dest": "model.ort", "level": level})]
        how = "same bytes on this machine and environment (child process, ASLR off, 1 intra-op thread)"
        try:
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, preexec_fn=_no_aslr)
        except (OSError, subprocess.SubprocessError):
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True)
            how = "not reproducible: ASLR could not be turned off here (bytes vary build to build)"
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            raise ModelzooError(f"{src}: ORT-format optimization failed: {lines[-1] if lines else done.returncode}")
        shutil.move(work / "model.ort", dest)
    return how
