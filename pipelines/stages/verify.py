"""verify: run each scenario's two endpoints on the same samples and compare every output tensor.

An element passes when abs(ref - test) <= atol + rtol * abs(ref) (numpy.isclose's rule).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.descriptor import Scenario, Tolerance, output_aliases
from pipelines.errors import DescriptorError, VerificationFailed
from pipelines.fileio import write_json
from pipelines.stages.runner import run_endpoint, skip_reason
from pipelines.tasks import get_task

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


def tolerance_for(scenario: Scenario, key: str) -> Tolerance:
    return next((scenario.tolerances[n] for n in output_aliases(key) if n in scenario.tolerances), scenario.default)


def _named(key: str, names: list[str]) -> bool:
    return any(n in names for n in output_aliases(key))


def compare(ref: np.ndarray, test: np.ndarray, tol: Tolerance) -> dict[str, Any]:
    if ref.shape != test.shape:
        return {"pass": False, "error": f"shape {list(test.shape)} != reference {list(ref.shape)}"}
    ref64, test64 = ref.astype(np.float64), test.astype(np.float64)
    err = np.abs(ref64 - test64)
    allowed = tol.atol + tol.rtol * np.abs(ref64)
    if err.size == 0:
        return {"pass": True, "max_abs_error": 0.0, "max_rel_error": 0.0, "worst_index": []}
    excess = err / np.maximum(allowed, np.finfo(np.float64).tiny)
    worst = np.unravel_index(int(np.argmax(excess)), err.shape)
    rel = err / np.maximum(np.abs(ref64), 1e-12)
    return {
        "pass": bool(np.all(err <= allowed)) and bool(np.isfinite(test64).all()),
        "max_abs_error": float(err.max()),
        "max_rel_error": float(rel.max()),
        "worst_index": [int(i) for i in worst],
        "worst_ref": float(ref64[worst]),
        "worst_test": float(test64[worst]),
        "failed_elements": int(np.count_nonzero(err > allowed)),
        "atol": tol.atol,
        "rtol": tol.rtol,
    }


def verify_scenario(ctx: ModelContext, scenario: Scenario) -> dict[str, Any]:
    for side in (scenario.ref, scenario.test):
        reason = skip_reason(side)
        if reason:
            log.warning("scenario %s skipped: %s", scenario.key, reason)
            return {"status": "skipped", "reason": f"{side.key}: {reason}"}
    task = get_task(ctx)
    n = scenario.samples or ctx.descriptor.verification.samples
    samples = task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, n)
    ref_results, _ = run_endpoint(task, scenario.ref, samples)
    test_results, _ = run_endpoint(task, scenario.test, samples)
    outputs: dict[str, Any] = {}
    for i, (r, t) in enumerate(zip(ref_results, test_results, strict=True)):
        checks: dict[str, dict[str, Any]] = {
            key: compare(ref, t.raw[key], tolerance_for(scenario, key))
            if key in t.raw
            else {"pass": False, "error": "missing in test outputs"}
            for key, ref in r.raw.items()
        }
        checks.update(task.compare_predictions(r.prediction, t.prediction, lambda k: tolerance_for(scenario, k)))
        for key, res in checks.items():
            res["sample"] = i
            prev = outputs.get(key)
            # Keep, per output, the worst sample: failures first, then the largest error.
            if prev is None or (prev["pass"], -prev.get("max_abs_error", np.inf)) > (
                res["pass"],
                -res.get("max_abs_error", np.inf),
            ):
                outputs[key] = res
    reported = {k for k in outputs if _named(k, scenario.report_only)}
    for name in scenario.report_only:
        if not any(_named(k, [name]) for k in outputs):
            raise DescriptorError(
                f"models/{ctx.name}/model.yaml: verification scenario {scenario.key}: report_only: '{name}' "
                f"names no output (outputs: {', '.join(sorted(outputs))})"
            )
    for key in reported:
        outputs[key]["report_only"] = True
    status = "pass" if all(o["pass"] for k, o in outputs.items() if k not in reported) else "fail"
    return {"status": status, "samples": len(samples), "outputs": outputs}


def run_verify(ctx: ModelContext) -> dict[str, Any]:
    report: dict[str, Any] = {"model": ctx.name, "scenarios": {}}
    for scenario in ctx.descriptor.verification.scenarios:
        log.info("verify %s: %s", ctx.name, scenario.key)
        report["scenarios"][scenario.key] = verify_scenario(ctx, scenario)
    failed = {k: v for k, v in report["scenarios"].items() if v["status"] == "fail"}
    report["status"] = "fail" if failed else "pass"
    write_json(ctx.verify_report, report)
    if failed:
        key, sc = next(iter(failed.items()))
        bad = {k: o for k, o in sc["outputs"].items() if not o["pass"] and not o.get("report_only")}
        name, worst = max(bad.items(), key=lambda kv: kv[1].get("max_abs_error", np.inf))
        detail = worst.get("error") or (
            f"max abs error {worst['max_abs_error']:.3g} at {worst['worst_index']} of sample {worst['sample']} "
            f"(ref {worst['worst_ref']:.6g}, test {worst['worst_test']:.6g}; "
            f"atol {worst['atol']:g}, rtol {worst['rtol']:g})"
        )
        raise VerificationFailed(
            f"{ctx.verify_report.relative_to(ctx.root)}: {key}: output {name}: {detail}"
            + (f" (+{len(failed) - 1} more failing scenarios)" if len(failed) > 1 else "")
        )
    return report
