"""verify: run each scenario's two endpoints on the same samples and compare every output tensor
(`pipelines.comparison.compare`), plus the task's end-to-end checks; typed results, written as verify.json.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pipelines.comparison import OutputComparison, compare
from pipelines.descriptor import Scenario, Tolerance, output_aliases
from pipelines.errors import DescriptorError, VerificationFailed
from pipelines.fileio import write_json
from pipelines.stages.runner import run_endpoint, skip_reason
from pipelines.tasks import get_task

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario: skipped (with the reason), or the worst sample of every output and check."""

    status: Literal["pass", "fail", "skipped"]
    reason: str | None = None
    samples: int | None = None
    outputs: Mapping[str, OutputComparison] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.status == "skipped":
            return {"status": self.status, "reason": self.reason}
        return {
            "status": self.status,
            "samples": self.samples,
            "outputs": {k: o.to_json() for k, o in self.outputs.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        outputs = {k: OutputComparison.from_json(o) for k, o in data.get("outputs", {}).items()}
        return cls(data["status"], data.get("reason"), data.get("samples"), outputs)


@dataclass(frozen=True)
class VerifyReport:
    """verify.json: every scenario of a model; it fails when one scenario fails."""

    model: str
    scenarios: Mapping[str, ScenarioResult]

    @property
    def status(self) -> Literal["pass", "fail"]:
        return "fail" if any(s.status == "fail" for s in self.scenarios.values()) else "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scenarios": {k: s.to_json() for k, s in self.scenarios.items()},
            "status": self.status,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyReport:
        return cls(data["model"], {k: ScenarioResult.from_json(s) for k, s in data["scenarios"].items()})


def tolerance_for(scenario: Scenario, key: str) -> Tolerance:
    return next((scenario.tolerances[n] for n in output_aliases(key) if n in scenario.tolerances), scenario.default)


def _named(key: str, names: list[str]) -> bool:
    return any(n in names for n in output_aliases(key))


def verify_scenario(ctx: ModelContext, scenario: Scenario) -> ScenarioResult:
    for side in (scenario.ref, scenario.test):
        reason = skip_reason(side)
        if reason:
            log.warning("scenario %s skipped: %s", scenario.key, reason)
            return ScenarioResult("skipped", reason=f"{side.key}: {reason}")
    task = get_task(ctx)
    n = scenario.samples or ctx.descriptor.verification.samples
    samples = task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, n)
    ref_results, _ = run_endpoint(task, scenario.ref, samples)
    test_results, _ = run_endpoint(task, scenario.test, samples)
    outputs: dict[str, OutputComparison] = {}
    for i, (r, t) in enumerate(zip(ref_results, test_results, strict=True)):
        checks: dict[str, OutputComparison] = {
            key: compare(ref, t.raw[key], tolerance_for(scenario, key))
            if key in t.raw
            else OutputComparison(False, error="missing in test outputs")
            for key, ref in r.raw.items()
        }
        checks.update(task.compare_predictions(r.prediction, t.prediction, lambda k: tolerance_for(scenario, k)))
        for key, res in checks.items():
            res = dataclasses.replace(res, sample=i)
            prev = outputs.get(key)
            # Keep, per output, the worst sample: failures first, then the largest error.
            if prev is None or res.severity > prev.severity:
                outputs[key] = res
    reported = {k for k in outputs if _named(k, scenario.report_only)}
    for name in scenario.report_only:
        if not any(_named(k, [name]) for k in outputs):
            raise DescriptorError(
                f"{ctx.descriptor_file}: verification scenario {scenario.key}: report_only: '{name}' "
                f"names no output (outputs: {', '.join(sorted(outputs))})"
            )
    for key in reported:
        outputs[key] = dataclasses.replace(outputs[key], report_only=True)
    passed = all(o.passed for k, o in outputs.items() if k not in reported)
    return ScenarioResult("pass" if passed else "fail", samples=len(samples), outputs=outputs)


def run_verify(ctx: ModelContext) -> VerifyReport:
    scenarios = {}
    for scenario in ctx.descriptor.verification.scenarios:
        log.info("verify %s: %s", ctx.name, scenario.key)
        scenarios[scenario.key] = verify_scenario(ctx, scenario)
    report = VerifyReport(ctx.name, scenarios)
    write_json(ctx.verify_report, report.to_json())
    failed = {k: v for k, v in scenarios.items() if v.status == "fail"}
    if failed:
        key, sc = next(iter(failed.items()))
        bad = {k: o for k, o in sc.outputs.items() if not o.passed and not o.report_only}
        name, worst = max(bad.items(), key=lambda kv: kv[1].severity)
        detail = worst.error or (
            f"max abs error {worst.max_abs_error:.3g} at {list(worst.worst_index or ())} of sample {worst.sample} "
            f"(ref {worst.worst_ref:.6g}, test {worst.worst_test:.6g}; "
            f"atol {worst.atol:g}, rtol {worst.rtol:g})"
        )
        raise VerificationFailed(
            f"{ctx.verify_report.relative_to(ctx.root)}: {key}: output {name}: {detail}"
            + (f" (+{len(failed) - 1} more failing scenarios)" if len(failed) > 1 else "")
        )
    return report
