"""CenterPoint latency per part (preprocess, pts_voxel_encoder, scatter, pts_backbone_neck_head,
postprocess) and center-distance mAP, per backend, on the val split; plus mmdet3d's own `predict` on the
same frames as a reference point. Prints JSON; the ONNX Runtime / PyTorch end-to-end ratio is measured
side by side in this one run.

Needs the exported and built model: `dvc repro build@centerpoint` (or `modelzoo export/build centerpoint`).

    python benchmarks/centerpoint.py [--samples 32] [--warmup 3] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pipelines.descriptor import Endpoint
from pipelines.gitrepo import find_root
from pipelines.latency import Timer, stats
from pipelines.stages.runner import run_endpoint
from pipelines.tasks import get_task
from pipelines.workspace import model_context


def mmdet3d_predict_ms(ctx: Any, frames: list[Any], warmup: int) -> dict[str, float]:
    import torch
    from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

    from pipelines.sources.openmmlab import build_detector

    detector, _ = build_detector(ctx)
    times = []
    with torch.inference_mode():
        for k, f in enumerate([frames[0]] * warmup + list(frames)):
            start = time.perf_counter()
            sample = Det3DDataSample(metainfo={"box_type_3d": LiDARInstance3DBoxes})
            data = detector.data_preprocessor(
                {"inputs": {"points": [torch.from_numpy(f.points)]}, "data_samples": [sample]}, False
            )
            detector.predict(data["inputs"], data["data_samples"])
            if k >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return stats(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="passes over the samples, alternating backends")
    ap.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True): PyTorch's CPU convolutions slow down badly on this model's denormal "
        "activations; the evaluate stage runs without it",
    )
    args = ap.parse_args()
    import torch

    torch.set_flush_denormal(args.flush_denormal)

    ctx = model_context(find_root(Path.cwd()), "centerpoint")
    task = get_task(ctx)
    frames = task.load_samples(ctx.dataset, ctx.descriptor.evaluation.split, args.samples)
    endpoints = [Endpoint(backend="pytorch"), Endpoint(backend="onnxruntime")]
    timers = {ep.key: Timer() for ep in endpoints}
    metrics: dict[str, Any] = {}
    # Alternate the backends pass by pass, so that a busy neighbour on the machine hits both alike.
    for _ in range(args.repeat):
        for ep in endpoints:
            results, timer = run_endpoint(task, ep, frames, warmup=args.warmup)
            timers[ep.key].samples.extend(timer.samples)
            metrics[ep.key] = task.metrics([r.prediction for r in results], frames)
    out: dict[str, Any] = {
        "model": "centerpoint",
        "samples": len(frames),
        "repeat": args.repeat,
        "torch_threads": torch.get_num_threads(),
        "flush_denormal": args.flush_denormal,
        "backends": {
            key: {
                "latency_ms": timers[key].summary(),
                "mAP": metrics[key]["mAP"],
                **{k: v for k, v in metrics[key].items() if k.startswith("AP_") and k.count("_") == 1},
            }
            for key in timers
        },
        "mmdet3d_predict_latency_ms": mmdet3d_predict_ms(ctx, frames, args.warmup),
    }
    pt, ort = (out["backends"][ep.key]["latency_ms"]["total"]["mean"] for ep in endpoints)
    out["ort_over_pytorch_end_to_end"] = round(ort / pt, 4)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
