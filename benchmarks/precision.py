"""The precision trade-off in one table: per model and endpoint (backend, device, precision), the
headline metric and latency, measured side by side in one run. Prints JSON.

    python benchmarks/precision.py [MODEL ...] [--samples N] [--warmup N] [--out FILE]

Endpoints: ONNX Runtime on the CPU for every built precision, PyTorch on the CPU and on CUDA, and
TensorRT for every built precision; the ones that cannot run here are listed with the reason.
Latency is per sample: `model_ms` is the time in the model's components (host timer, includes
host<->device copies), `total_ms` adds the task's pre/post-processing; CUDA rows (PyTorch, TensorRT)
also give `gpu_ms`, the CUDA-event time of the components' computation alone. Run it after
`modelzoo build` of the models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.descriptor import Endpoint
from pipelines.fileio import write_text
from pipelines.gitrepo import find_root
from pipelines.latency import stats
from pipelines.stages.runner import run_endpoint, skip_reason
from pipelines.tasks import get_task
from pipelines.workspace import load_params, model_context


def endpoints(precisions: list[str], targets: list[str]) -> list[Endpoint]:
    out = [Endpoint(backend="onnxruntime", device="cpu", precision=p) for p in precisions]
    out += [Endpoint(backend="pytorch", device="cpu"), Endpoint(backend="pytorch", device="cuda")]
    if "tensorrt" in targets:
        out += [Endpoint(backend="tensorrt", device="cuda", precision=p) for p in precisions]
    return out


def _short(s: dict[str, float]) -> dict[str, float]:
    return {k: s[k] for k in ("mean", "p50", "p90") if k in s}


def measure(ctx: Any, ep: Endpoint, samples: list[Any], warmup: int) -> dict[str, Any]:
    task = get_task(ctx)
    components = [c.name for c in ctx.descriptor.components]
    results, timer = run_endpoint(task, ep, samples, warmup=warmup)
    metrics = task.metrics([r.prediction for r in results], samples)
    headline = ctx.descriptor.evaluation.headline
    row: dict[str, Any] = {
        "endpoint": ep.key,
        headline: metrics.get(headline),
        "model_ms": _short(stats([sum(t.get(c, 0.0) for c in components) for t in timer.samples])),
        "total_ms": _short(stats([sum(t.values()) for t in timer.samples])),
    }
    if any(timer.device_samples):
        row["gpu_ms"] = _short(stats([sum(d.values()) for d in timer.device_samples]))
    return row


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
    info["cpu_count"] = os.cpu_count()
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def benchmark_model(root: Path, name: str, limit: int, warmup: int) -> dict[str, Any]:
    ctx = model_context(root, name)
    desc = ctx.descriptor
    task = get_task(ctx)
    samples = list(task.load_samples(ctx.dataset, desc.evaluation.split, limit))
    rows = []
    for ep in endpoints(desc.build.precisions, desc.build.targets):
        reason = skip_reason(ep)
        if reason is None:
            try:
                rows.append(measure(ctx, ep, samples, warmup))
                print(f"{name} {ep.key}: {rows[-1]}", file=sys.stderr)
                continue
            except FileNotFoundError as err:  # a variant that was not built
                reason = str(err)
        rows.append({"endpoint": ep.key, "skipped": reason})
    return {"headline": desc.evaluation.headline, "samples": len(samples), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="models (default: all in params.yaml)")
    parser.add_argument("--samples", type=int, default=200, help="evaluation samples per endpoint (-1: all)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    root = find_root()
    names = args.models or list(load_params(root)["models"])
    out: dict[str, Any] = {"machine": machine(), "models": {}}
    for name in names:
        try:
            out["models"][name] = benchmark_model(root, name, args.samples, args.warmup)
        except Exception as err:  # e.g. an OpenMMLab model where mmcv is missing: say so, go on
            out["models"][name] = {"not_run": f"{type(err).__name__}: {err}".splitlines()[0]}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
