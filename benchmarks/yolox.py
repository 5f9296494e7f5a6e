"""YOLOX latency and COCO mAP per backend, and the ONNX Runtime / PyTorch latency ratio at batch 1
and 4. Prints JSON. Everything is measured side by side in this one run, alternating the backends
pass by pass so that a busy neighbour on the machine slows both alike.

- `end_to_end`: the task pipeline on the val split (read image excluded; preprocess, model,
  postprocess), batch 1, through `models/yolox` (fixed batch), with mAP / mAP@0.5 per backend.
- `batch`: the model alone on letterboxed val images at batch 1 and 4, through `models/yolox_dynamic`
  (dynamic batch axis): PyTorch source module vs the built ONNX Runtime artifact.

Needs both models built: `dvc repro build@yolox build@yolox_dynamic`.

    python benchmarks/yolox.py [--samples 100] [--warmup 3] [--repeat 2] [--batch-runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.descriptor import Endpoint
from pipelines.gitrepo import find_root
from pipelines.latency import Timer, stats
from pipelines.stages.runner import run_endpoint
from pipelines.tasks import get_task
from pipelines.tasks.detection2d import Detection2DTask
from pipelines.workspace import model_context

ENDPOINTS = [Endpoint(backend="pytorch"), Endpoint(backend="onnxruntime")]


def end_to_end(root: Path, samples: int, warmup: int, repeat: int) -> dict[str, Any]:
    ctx = model_context(root, "yolox")
    task = get_task(ctx)
    images = task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, samples)
    timers = {ep.key: Timer() for ep in ENDPOINTS}
    metrics: dict[str, Any] = {}
    for _ in range(repeat):
        for ep in ENDPOINTS:
            results, timer = run_endpoint(task, ep, images, warmup=warmup)
            timers[ep.key].samples.extend(timer.samples)
            metrics[ep.key] = task.metrics([r.prediction for r in results], images)
    out: dict[str, Any] = {"samples": len(images), "repeat": repeat, "backends": {}}
    for key, timer in timers.items():
        m = metrics[key]
        out["backends"][key] = {
            "latency_ms": timer.summary(),
            **{k: m[k] for k in ("mAP", "mAP_50", "mAP_75")},
            **{k: v for k, v in m.items() if k.startswith("AP_")},
        }
    pt, ort = (out["backends"][ep.key]["latency_ms"] for ep in ENDPOINTS)
    out["ort_over_pytorch"] = {
        part: round(ort[part]["mean"] / pt[part]["mean"], 4) for part in ("yolox", "total") if pt[part]["mean"]
    }
    return out


def batched(root: Path, sizes: list[int], runs: int, warmup: int) -> dict[str, Any]:
    from pipelines.runtimes import get_backend
    from pipelines.tasks.detection2d.coco import read_image

    ctx = model_context(root, "yolox_dynamic")
    task = get_task(ctx)
    assert isinstance(task, Detection2DTask)
    images = task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, max(sizes))
    pixels = np.concatenate([task.preprocess(read_image(s))[0] for s in images])
    sessions = {ep.key: get_backend(ep.backend).open(ctx, task.component, ep) for ep in ENDPOINTS}
    out: dict[str, Any] = {}
    try:
        for size in sizes:
            x = {"images": np.ascontiguousarray(pixels[:size])}
            times: dict[str, list[float]] = {key: [] for key in sessions}
            # Blocks of runs per backend, alternated twice: run by run interleaving would time PyTorch
            # while ONNX Runtime's idle threads still spin (on 2 cores, that halves PyTorch's speed).
            for _ in range(2):
                for key, session in sessions.items():
                    for k in range(warmup + runs // 2):
                        start = time.perf_counter()
                        session.run(x)
                        if k >= warmup:
                            times[key].append((time.perf_counter() - start) * 1e3)
            entry: dict[str, Any] = {key: {"latency_ms": stats(t)} for key, t in times.items()}
            for key, t in times.items():
                entry[key]["per_image_ms"] = round(float(np.mean(t)) / size, 4)
            pt, ort = (float(np.mean(times[ep.key])) for ep in ENDPOINTS)
            entry["ort_over_pytorch"] = round(ort / pt, 4)
            out[f"batch_{size}"] = entry
    finally:
        for s in sessions.values():
            s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--samples", type=int, default=100, help="val images for the end-to-end pass (-1: all)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="end-to-end passes over the samples, alternating backends")
    ap.add_argument("--batch-runs", type=int, default=20, help="timed runs per batch size and backend")
    args = ap.parse_args()
    import onnxruntime  # type: ignore[import-untyped]
    import torch

    root = find_root(Path.cwd())
    out: dict[str, Any] = {
        "model": "yolox",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__,
        },
        "end_to_end": end_to_end(root, args.samples, args.warmup, args.repeat),
        "batch": batched(root, [1, 4], args.batch_runs, args.warmup),
    }
    out["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    out["ort_over_pytorch"] = {
        "end_to_end_batch_1": out["end_to_end"]["ort_over_pytorch"]["total"],
        "model_batch_1": out["batch"]["batch_1"]["ort_over_pytorch"],
        "model_batch_4": out["batch"]["batch_4"]["ort_over_pytorch"],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
