"""evaluate: task metrics and latency for every enabled endpoint, into one metrics file per model."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.errors import BudgetExceeded
from pipelines.fileio import atomic_dir, write_json
from pipelines.stages.runner import run_endpoint, skip_reason
from pipelines.tasks import get_task

if TYPE_CHECKING:
    from pipelines.workspace import ModelContext

log = logging.getLogger(__name__)


def check_budget(ctx: ModelContext, results: dict[str, Any]) -> list[str]:
    """Headline-metric drop of each precision vs fp32 on the same backend/device, over budget."""
    ev = ctx.descriptor.evaluation
    over = []
    for ep in ev.backends:
        budget = ev.budget.get(ep.precision)
        if budget is None or ep.precision == "fp32":
            continue
        base_key = ep.model_copy(update={"precision": "fp32"}).key
        base, cur = results.get(base_key, {}), results.get(ep.key, {})
        if ev.headline not in base or ev.headline not in cur:
            continue
        drop = base[ev.headline] - cur[ev.headline]
        cur[f"{ev.headline}_drop_vs_fp32"] = round(drop, 6)
        if drop > budget:
            over.append(f"{ep.key}: {ev.headline} dropped {drop:.4g} vs fp32, budget {budget:g}")
    return over


def run_evaluate(ctx: ModelContext) -> dict[str, Any]:
    ev = ctx.descriptor.evaluation
    task = get_task(ctx)
    samples = task.load_samples(ctx.dataset, ev.split, ev.samples)
    metrics: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    latency_rows: list[dict[str, Any]] = []
    plots: dict[str, list[dict[str, Any]]] = {}
    for ep in ev.backends:
        reason = skip_reason(ep)
        if reason:
            log.warning("evaluate %s on %s skipped: %s", ctx.name, ep.key, reason)
            skipped[ep.key] = reason
            continue
        log.info("evaluate %s on %s: %d samples", ctx.name, ep.key, len(samples))
        results, timer = run_endpoint(task, ep, samples, warmup=ev.warmup)
        predictions = [r.prediction for r in results]
        m = task.metrics(predictions, samples)
        m["latency_ms"] = timer.summary()
        metrics[ep.key] = m
        for part, st in m["latency_ms"].items():
            latency_rows.append({"endpoint": ep.key, "part": part, "mean_ms": st.get("mean", 0.0)})
        for stem, records in task.plots(predictions, samples).items():
            plots[f"{stem}_{ep.key}"] = records
    over = check_budget(ctx, metrics)
    out = {"model": ctx.name, "headline": ev.headline, "samples": len(samples), "backends": metrics}
    if skipped:
        out["skipped"] = skipped
    write_json(ctx.metrics, out)
    plots["latency"] = latency_rows
    with atomic_dir(ctx.plots_dir) as pdir:
        for stem, records in plots.items():
            write_json(pdir / f"{stem}.json", records)
    if over:
        raise BudgetExceeded(f"{ctx.metrics.relative_to(ctx.root)}: accuracy budget exceeded: {'; '.join(over)}")
    return out
