"""Promote, don't rebuild: before a release, the workspace must hold the bytes verified for this commit.

The push-to-main run built and verified every model and pushed its outputs to the DVC remote; the
tag run pulls them (`dvc pull`) and this check proves that nothing would rebuild: every stage's
outputs and dependencies match what dvc.lock of the tagged commit records, and every verification
report passed (a skipped scenario, e.g. TensorRT without a GPU, is listed with its reason).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import ModelzooError, VerificationFailed
from pipelines.workspace import load_params, model_context

ALWAYS_CHANGED = "always changed"


@dataclass
class Verified:
    models: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


def stale_stages(root: Path) -> dict[str, list[object]]:
    """`dvc status` of the whole graph, less the stages that are re-probed on every run (env)."""
    try:
        proc = subprocess.run(["dvc", "status", "--json"], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise ModelzooError("dvc: not found on PATH") from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise ModelzooError(f"dvc status: {detail}")
    status = json.loads(proc.stdout or "{}")
    return {name: st for name, st in status.items() if st != [ALWAYS_CHANGED]}


def check_verified(root: Path) -> Verified:
    stale = stale_stages(root)
    if stale:
        name, what = sorted(stale.items())[0]
        more = f" (+{len(stale) - 1} more)" if len(stale) > 1 else ""
        raise ModelzooError(
            f"dvc.lock: stage '{name}' is not up to date here ({json.dumps(what)}){more}: "
            "a release publishes the outputs verified on main; run `dvc pull` or let the main workflow finish"
        )
    result = Verified(models=sorted(load_params(root)["models"]))
    for name in result.models:
        report_path = model_context(root, name).verify_report
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError) as err:
            raise ModelzooError(
                f"{report_path.relative_to(root)}: cannot read the verification report: {err}"
            ) from None
        if report.get("status") != "pass":
            raise VerificationFailed(f"{report_path.relative_to(root)}: status is {report.get('status')!r}, not 'pass'")
        for key, sc in report.get("scenarios", {}).items():
            if sc.get("status") == "skipped":
                result.skipped[f"{name}: {key}"] = sc.get("reason", "")
    return result
