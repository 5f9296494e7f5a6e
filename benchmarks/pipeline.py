"""Pipeline benchmark: DVC graph wall times, from scratch and no-op, for the bundled models and for
generated sets of N tiny models. Prints JSON.

    python benchmarks/pipeline.py [--sizes 20 50] [--bundled] [--skip-scratch-over N]

A generated set is N copies of the classifier's descriptor with a tiny input (5x16x16, widths 4/8),
sharing one tiny reference model's data and checkpoint. For each set it times: `dvc repro` from
scratch, a no-op `dvc repro`, a no-op `modelzoo repro`, and the fraction of stages that reran after
editing one model's descriptor.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import BIN, REPO, make_repo, read_yaml, run, tiny_descriptor, write_yaml


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = run(cmd, cwd)
    return time.perf_counter() - start, proc.stdout


def stages_ran(output: str) -> list[str]:
    return [s for s in re.findall(r"Running stage '([^']+)'", output) if not s.startswith("env@")]


def generated_repo(dest: Path, n: int) -> Path:
    base = tiny_descriptor("tiny_ref")
    models = {"tiny_ref": base}
    for i in range(n - 1):
        d = tiny_descriptor(f"tiny_{i:03d}", reference=False)
        d["source"]["checkpoint"] = base["source"]["checkpoint"]
        d["evaluation"]["dataset"] = base["evaluation"]["dataset"]
        models[d["name"]] = d
    return make_repo(dest, models)


def measure(repo: Path, n_models: int, scratch: bool) -> dict[str, object]:
    dvc, mz = str(BIN / "dvc"), str(BIN / "modelzoo")
    out: dict[str, object] = {"models": n_models}
    if scratch:
        t, _ = timed([dvc, "repro"], repo)
        out["scratch_dvc_repro_s"] = round(t, 2)
    else:
        run([dvc, "repro"], repo)
    run([mz, "repro"], repo)  # records the front's stamps
    t, _ = timed([dvc, "repro"], repo)
    out["noop_dvc_repro_s"] = round(t, 2)
    t, text = timed([mz, "repro"], repo)
    assert "up to date" in text, text
    out["noop_modelzoo_repro_s"] = round(t, 2)
    out["noop_speedup"] = round(out["noop_dvc_repro_s"] / max(out["noop_modelzoo_repro_s"], 1e-9), 1)  # type: ignore[operator]
    # Edit one model, then count the stages DVC reruns out of all model stages.
    params = read_yaml(repo / "params.yaml")
    victim = sorted(params["models"])[-1]
    path = repo / "models" / victim / "model.yaml"
    desc = read_yaml(path)
    desc["evaluation"]["samples"] = desc["evaluation"]["samples"] - 1
    write_yaml(path, desc)
    t, text = timed([mz, "repro"], repo)
    total = 4 * len(params["models"]) + 2 * len(params.get("reference_models") or [])
    rerun = stages_ran(text)
    out["edit_one_model"] = {
        "stages_rerun": len(rerun),
        "stages_total": total,
        "fraction_rerun": round(len(rerun) / total, 4),
        "all_in_edited_model": all(s.endswith(f"@{victim}") for s in rerun),
        "wall_s": round(t, 2),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="*", default=[20, 50])
    ap.add_argument("--bundled", action="store_true", help="also time the bundled models in a clone")
    ap.add_argument("--skip-scratch-over", type=int, default=10**9, help="no from-scratch timing above N models")
    args = ap.parse_args()
    dvc_version = subprocess.run([str(BIN / "dvc"), "--version"], capture_output=True, text=True).stdout.strip()
    report: dict[str, object] = {"dvc": dvc_version, "sets": []}
    work = Path(tempfile.mkdtemp(prefix="mz-bench-"))
    try:
        if args.bundled:
            clone = work / "bundled"
            run(["git", "clone", "-q", str(REPO), str(clone)], REPO)
            n = len(read_yaml(clone / "params.yaml")["models"])
            report["bundled"] = measure(clone, n, scratch=True)
        for n in args.sizes:
            repo = generated_repo(work / f"gen{n}", n)
            result = measure(repo, n, scratch=n <= args.skip_scratch_over)
            report["sets"].append(result)  # type: ignore[union-attr]
            print(json.dumps(result), file=sys.stderr, flush=True)  # progress: one set at a time
            shutil.rmtree(repo, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
