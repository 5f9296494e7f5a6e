"""TensorRT-RTX on this CPU: build time per model, precision and compute capability, engine size per
precision, and the setup time its wheels add. Prints JSON.

    python benchmarks/rtx_build.py [--root DIR] [--sm sm86 ...] [--models NAME ...] [--wheels DIR] [--download]

Builds from the ONNX files the pipeline already wrote (`artifacts/<model>/onnx` and the precision
variants in `artifacts/<model>/build/onnx/<precision>`) into a temporary folder, through the
tensorrt_rtx target's own `build`. Setup time (with --wheels DIR or --download): `pip install` of
the two wheels into a throwaway virtual environment from local files, and with --download (the one
step that reaches PyPI) their download, timed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.descriptor import list_models, load_descriptor
from pipelines.gitrepo import find_root
from pipelines.runtimes import target_environment
from pipelines.runtimes.tensorrt_rtx import build as rtx
from pipelines.workspace import ModelContext

WHEELS = ["tensorrt-rtx-cu13-libs==1.7.1.116", "tensorrt-rtx-cu13-bindings==1.7.1.116"]


def builds(root: Path, models: list[str], sms: list[str], out: Path) -> dict[str, Any]:
    env = target_environment("tensorrt_rtx")
    if not env.available:
        raise SystemExit(f"tensorrt_rtx: {env.reason}")
    rows: list[dict[str, Any]] = []
    for name in models:
        ctx = ModelContext(root, load_descriptor(root, name))
        for precision in ctx.descriptor.build.precisions:
            for comp in ctx.descriptor.components:
                src = ctx.onnx_path(comp.name, precision)
                if not src.is_file():
                    raise SystemExit(f"{src}: missing: run `modelzoo repro {name}` first")
                for sm in sms:
                    dest = out / name / sm / precision / f"{comp.name}.engine"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    start, cpu = time.perf_counter(), time.process_time()
                    meta = rtx.build(src, dest, ctx, comp.name, folder=f"{env.key}-{sm}")
                    rows.append(
                        {
                            "model": name,
                            "component": comp.name,
                            "precision": precision,
                            "capability": sm,
                            "builder_seconds": meta["build_seconds"],  # build_serialized_network alone
                            "total_seconds": round(time.perf_counter() - start, 3),  # parse, build, write, check
                            # CPU time of all threads: on a shared, loaded machine wall time overstates it
                            "cpu_seconds": round(time.process_time() - cpu, 3),
                            "engine_bytes": meta["engine_bytes"],
                            "onnx_bytes": src.stat().st_size,
                        }
                    )
    per_model: dict[str, dict[str, float]] = {}
    size: dict[str, int] = {}
    for r in rows:
        key = f"{r['model']}/{r['precision']}"
        per_model.setdefault(key, {"seconds": 0.0, "cpu_seconds": 0.0, "engine_bytes": 0})
        per_model[key]["seconds"] = round(per_model[key]["seconds"] + r["total_seconds"], 3)
        per_model[key]["cpu_seconds"] = round(per_model[key]["cpu_seconds"] + r["cpu_seconds"], 3)
        per_model[key]["engine_bytes"] += r["engine_bytes"]
        size[r["precision"]] = size.get(r["precision"], 0) + r["engine_bytes"]
    return {
        "load_average": os.getloadavg(),
        "environment": env.to_json(),
        "capabilities": sms,
        "engines": len(rows),
        "total_seconds": round(sum(r["total_seconds"] for r in rows), 2),
        "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 2),
        "per_model_precision": per_model,
        "engine_bytes_per_precision": size,
        "builds": rows,
    }


def setup_time(tmp: Path, wheels: Path | None, download: bool) -> dict[str, Any]:
    """Seconds `pip install` of the wheels takes in a fresh venv, from local wheel files (no network);
    with `download`, also the `pip download` of them from PyPI (the only step that leaves this machine)."""
    out: dict[str, Any] = {"wheels": WHEELS}
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "-q"]
    if download:
        wheels = wheels or tmp / "wheels"
        start = time.perf_counter()
        subprocess.run([*pip, "download", "--no-cache-dir", "--no-deps", "-d", str(wheels), *WHEELS], check=True)
        out["download_seconds"] = round(time.perf_counter() - start, 2)
    assert wheels is not None
    out["wheel_bytes"] = sum(p.stat().st_size for p in wheels.glob("tensorrt_rtx_cu13_*.whl"))
    start, cpu = time.perf_counter(), os.times()
    subprocess.run([*pip, "install", "--no-index", "--no-deps", "--find-links", str(wheels), *WHEELS], check=True)
    out["install_seconds"] = round(time.perf_counter() - start, 2)
    done = os.times()
    out["install_cpu_seconds"] = round(
        done.children_user + done.children_system - cpu.children_user - cpu.children_system, 2
    )
    start = time.perf_counter()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tensorrt_rtx_bindings as t; print(t.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    out["first_import_seconds"] = round(time.perf_counter() - start, 2)
    out["imported_version"] = probe.stdout.strip()
    out["measured"] = "pip install --no-index from local wheel files into a fresh venv" + (
        "; pip download --no-cache-dir from PyPI before it" if download else ""
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="repository whose artifacts to build from")
    ap.add_argument("--sm", nargs="+", default=None, help="compute capabilities (default: each model's list)")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--wheels", type=Path, default=None, help="folder holding the two wheels: time their install")
    ap.add_argument("--download", action="store_true", help="also time downloading them from PyPI (network)")
    args = ap.parse_args()
    root = (args.root or find_root()).resolve()
    models = args.models or list_models(root)
    sms = args.sm or sorted({sm for m in models for sm in load_descriptor(root, m).build.rtx_compute_capabilities})
    with tempfile.TemporaryDirectory() as tmp:
        out: dict[str, Any] = {
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
            "root": str(root),
            **builds(root, models, sms, Path(tmp) / "engines"),
        }
        if args.wheels or args.download:
            out["setup"] = setup_time(Path(tmp), args.wheels, args.download)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
