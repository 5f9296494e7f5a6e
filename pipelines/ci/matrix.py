"""The job matrix: one leg per model and runner architecture.

Every model runs on an x86_64 GPU runner. A model that also ships to Jetson lists its
architectures in params.yaml (a key DVC does not track, so it reruns nothing):

    runner_archs:
      centerpoint: [x86_64, aarch64]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.descriptor import load_descriptor
from pipelines.errors import UsageError
from pipelines.workspace import PARAMS_FILE, load_params

DEFAULT_ARCH = "x86_64"
# runs-on labels per architecture; .github/actionlint.yaml declares the self-hosted ones.
RUNNERS: dict[str, list[str]] = {
    "x86_64": ["self-hosted", "linux", "x64", "gpu"],
    "aarch64": ["self-hosted", "linux", "ARM64", "jetson"],
}


def archs_of(params: dict[str, Any], model: str) -> list[str]:
    table = params.get("runner_archs") or {}
    if not isinstance(table, dict):
        raise UsageError(f"{PARAMS_FILE}: runner_archs: expected a mapping of model -> [architectures]")
    archs = table.get(model, [DEFAULT_ARCH])
    if not isinstance(archs, list) or not archs:
        raise UsageError(f"{PARAMS_FILE}: runner_archs.{model}: expected a non-empty list of architectures")
    for arch in archs:
        if arch not in RUNNERS:
            raise UsageError(
                f"{PARAMS_FILE}: runner_archs.{model}: unknown architecture '{arch}' (known: {', '.join(RUNNERS)})"
            )
    return list(dict.fromkeys(archs))


def build_matrix(root: Path, models: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """`{"include": [{"model", "arch", "runs_on"}...]}` for the given models (default: all in params.yaml)."""
    params = load_params(root)
    known = params["models"]
    unknown_archs = sorted(set(params.get("runner_archs") or {}) - set(known))
    if unknown_archs:
        raise UsageError(f"{PARAMS_FILE}: runner_archs: {unknown_archs[0]} is not a model in models:")
    names = sorted(known) if models is None else models
    include = []
    for name in names:
        if name not in known:
            raise UsageError(f"{PARAMS_FILE}: models.{name}: unknown model (known: {', '.join(sorted(known))})")
        load_descriptor(root, name)  # a broken descriptor fails here, not on a runner
        for arch in archs_of(params, name):
            include.append({"model": name, "arch": arch, "runs_on": RUNNERS[arch]})
    return {"include": include}


def matrix_outputs(matrix: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    models = sorted({leg["model"] for leg in matrix["include"]})
    return {
        "matrix": json.dumps(matrix, separators=(",", ":")),
        "models": json.dumps(models, separators=(",", ":")),
        "empty": "true" if not models else "false",
    }
