"""ONNX Runtime CPU latency of every component's fp32 ONNX file per thread count and spinning policy,
measured side by side (configurations alternate in blocks of 10 runs). Prints JSON.

Inputs are random, shaped from the descriptor; a dynamic axis takes its `dynamic_ranges` opt value
(1 where the descriptor gives none). The backend runs sessions without spinning (see
pipelines/runtimes/onnxruntime/session.py); this shows what that costs on the machine at hand.

    python benchmarks/ort_threads.py [MODEL ...] [--runs 50] [--threads 1 4 0] [--also MODEL/COMPONENT=PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.fileio import write_text
from pipelines.gitrepo import find_root
from pipelines.latency import stats
from pipelines.runtimes.onnxruntime.session import session_options
from pipelines.workspace import load_params, model_context

BLOCK = 10


def random_inputs(component: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for spec in component.inputs:
        shape = [
            d if isinstance(d, int) else component.dynamic_ranges[d].opt if d in component.dynamic_ranges else 1
            for d in spec.shape
        ]
        out[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
    return out


def bench_component(path: Path, inputs: dict[str, np.ndarray], configs: list[tuple[int, bool]], runs: int) -> list:
    import onnxruntime as ort

    sessions = [
        ort.InferenceSession(str(path), session_options(t, s), providers=["CPUExecutionProvider"]) for t, s in configs
    ]
    times: list[list[float]] = [[] for _ in configs]
    # Blocks of runs per configuration, alternating: a run right after another session's would pay for
    # that session's threads still spinning.
    for block in range(-1, -(-runs // BLOCK)):
        for k, sess in enumerate(sessions):
            for _ in range(BLOCK):
                start = time.perf_counter()
                sess.run(None, inputs)
                if block >= 0:  # block -1 warms up
                    times[k].append((time.perf_counter() - start) * 1e3)
    return [
        {"threads": t or "default", "spinning": s, "ms": {k: v for k, v in stats(ms).items() if k != "samples"}}
        for (t, s), ms in zip(configs, times, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="models (default: all in params.yaml)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 4, 0], help="0: ONNX Runtime's default (physical cores)"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="MODEL/COMPONENT=PATH",
        help="also time another ONNX file of that component (e.g. an earlier export), side by side",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = find_root()
    configs = [(t, s) for t in args.threads for s in (False, True)]
    rng = np.random.default_rng(0)
    runs = -(-args.runs // BLOCK) * BLOCK  # whole blocks
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "runs": runs, "components": {}}
    jobs = []
    names = list(load_params(root)["models"])
    for name in args.models or names:
        ctx = model_context(root, name)
        jobs += [(f"{name}/{c.name}", c, ctx.onnx_path(c.name)) for c in ctx.descriptor.components]
    for spec in args.also:
        key, _, path = spec.partition("=")
        name, _, component = key.partition("/")
        comps = model_context(root, name).descriptor.components if name in names else []
        comp = next((c for c in comps if c.name == component), None)
        if comp is None or not Path(path).is_file():
            parser.error(f"--also {spec}: needs MODEL/COMPONENT=PATH with a known model, component and file")
        jobs.append((f"{key} ({path})", comp, Path(path)))
    for key, comp, path in jobs:
        out["components"][key] = bench_component(path, random_inputs(comp, rng), configs, runs)
        print(key, "done", file=sys.stderr)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
