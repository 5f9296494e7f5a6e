"""Which of a model's release files a pinned target selects.

A manifest file's target is "onnx", "ros", "provenance" or a build environment key such as
"onnxruntime-1.31-cpu-x86_64" or "tensorrt-10.13-sm86". A pin target matches a file target when
both name the same runtime (first dash-separated word) and every further word of the pin target is
a word of the file target:

    onnx              -> onnx (the portable ONNX files)
    tensorrt-sm86     -> tensorrt-10.13-sm86, tensorrt-10.14-sm86, ...
    tensorrt-10.13    -> tensorrt-10.13-sm86, tensorrt-10.13-sm90, ...
    onnxruntime-cpu   -> onnxruntime-1.31-cpu-x86_64, ...
    tensorrt-10.13-sm86 -> exactly that key

A pin target must select exactly one build environment of each model (pin a longer key when a
release carries two). When it selects several that differ by compute capability (`tensorrt_rtx`
against tensorrt_rtx-1.7-sm80 ... -sm120), the GPU of this machine picks one: its `smNN` from
`nvidia-smi`, or from MODELZOO_GPU_SM (`sm86`, or `none`) where nvidia-smi cannot see the GPU.
ROS parameter files ("ros") always come along; provenance files never do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from pipelines.errors import ModelzooError
from pipelines.registry.manifest import FileEntry, ModelEntry

ALWAYS = "ros"
GPU_ENV = "MODELZOO_GPU_SM"
SM = re.compile(r"^sm\d+$")


def target_matches(pin_target: str, file_target: str) -> bool:
    want, have = pin_target.split("-"), file_target.split("-")
    return want[0] == have[0] and set(want[1:]) <= set(have[1:])


def detect_gpu_sm() -> str | None:
    """`sm86` for this machine's first GPU, or None without one."""
    if forced := os.environ.get(GPU_ENV):
        return None if forced == "none" else forced
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    return "sm" + first.replace(".", "") if re.fullmatch(r"\d+\.\d+", first) else None


def _by_gpu(matched: list[str], pin_target: str, model: str, release: str) -> list[str]:
    """Of builds that differ by compute capability, the one for this machine's GPU."""
    if not all(any(SM.match(w) for w in t.split("-")) for t in matched):
        return matched
    sm = detect_gpu_sm()
    if sm is None:
        example = next(w for w in matched[0].split("-") if SM.match(w))
        raise ModelzooError(
            f"{release}: target '{pin_target}' matches several builds of model '{model}' ({', '.join(matched)}) "
            f"and no GPU was detected: pin one of them, e.g. {pin_target}-{example}"
        )
    mine = [t for t in matched if sm in t.split("-")]
    if not mine:
        raise ModelzooError(
            f"{release}: model '{model}' has no files for this GPU ({sm}) and target '{pin_target}' "
            f"(has: {', '.join(matched)})"
        )
    return mine


def select_files(
    model: ModelEntry, pin_target: str, precisions: Sequence[str] | None = None, *, release: str = "release"
) -> list[FileEntry]:
    """The files of `model` for `pin_target` (and the ROS parameter files), or an error saying why none."""
    envs = sorted({f.target for f in model.files if f.target not in (ALWAYS, "provenance")})
    matched = [t for t in envs if target_matches(pin_target, t)]
    if not matched:
        raise ModelzooError(
            f"{release}: model '{model.name}' has no files for target '{pin_target}' (has: {', '.join(envs) or 'none'})"
        )
    if len(matched) > 1:
        matched = _by_gpu(matched, pin_target, model.name, release)
    if len(matched) > 1:
        raise ModelzooError(
            f"{release}: target '{pin_target}' matches several builds of model '{model.name}' "
            f"({', '.join(matched)}): pin one of them"
        )
    wanted = [f for f in model.files if f.target == matched[0]]
    if precisions is not None:
        wanted = [f for f in wanted if f.precision is None or f.precision in precisions]
        if not wanted:
            have = sorted({f.precision or "-" for f in model.files if f.target == matched[0]})
            raise ModelzooError(
                f"{release}: model '{model.name}' has no {'/'.join(precisions)} files for '{matched[0]}' "
                f"(has: {', '.join(have)})"
            )
    return wanted + [f for f in model.files if f.target == ALWAYS]
