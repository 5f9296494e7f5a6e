"""Registry site benchmark; prints one JSON object.

Renders the static site (`modelzoo site build`: pages + one trend chart per model) of a synthetic
registry of 50 models x 10 releases (and the bleeding edge), twice into two folders, and reports the
wall time of each build (target < 10 s) and whether the two are byte-identical. The registry is a
local folder: the time is rendering, not S3. On a shared machine the wall time says more about the
neighbours than about the code, so it also reports the CPU seconds of one build in a single process
(charts not farmed out to workers) with the 1-minute load average: what a build costs on an idle core.

Usage: python benchmarks/site.py [--models 50] [--releases 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from site_registry import build_history  # noqa: E402

from pipelines.registry import charts  # noqa: E402
from pipelines.registry.history import read_history  # noqa: E402
from pipelines.registry.stores import LocalStore  # noqa: E402
from pipelines.site.build import build_site  # noqa: E402


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--releases", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelzoo-site-bench-") as tmp:
        work = Path(tmp)
        store = LocalStore(work / "registry")
        build_history(store, args.models, args.releases)
        times = []
        for name in ("a", "b"):
            started = time.perf_counter()
            result = build_site(read_history(store), store, work / name, files_url="..")
            times.append(time.perf_counter() - started)
        charts.PARALLEL_FROM = 10**9  # one process, so that process_time() sees all of the work
        cpu = time.process_time()
        build_site(read_history(store), store, work / "c", files_url="..")
        cpu = time.process_time() - cpu
        a, b = tree(work / "a"), tree(work / "b")
        print(
            json.dumps(
                {
                    "models": args.models,
                    "releases": args.releases,
                    "pages": len(result.pages),
                    "charts": result.charts,
                    "site_bytes": sum(len(v) for v in a.values()),
                    "build_s": [round(t, 2) for t in times],
                    "target_s": 10.0,
                    "under_target": max(times) < 10.0,
                    "byte_identical": a == b and a == tree(work / "c"),
                    "single_process_cpu_s": round(cpu, 2),
                    "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
