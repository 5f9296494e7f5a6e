"""Test helpers: tiny model repositories built from the bundled classifier."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines.yamlio import dump_yaml

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = "calibration_status"
BIN = Path(sys.executable).parent


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(data, sort_keys=False))


def tiny_descriptor(name: str, size: int = 16, reference: bool = True) -> dict[str, Any]:
    """The classifier's descriptor, shrunk: small images, narrow network, few samples."""
    desc = copy.deepcopy(read_yaml(REPO / "models" / CLASSIFIER / "model.yaml"))
    desc["name"] = name
    desc["source"]["factory_args"] = {"in_channels": 5, "num_classes": 2, "widths": [4, 8]}
    desc["components"][0]["inputs"][0]["shape"] = [1, 5, size, size]
    desc["build"] = {"targets": ["onnxruntime", "tensorrt"], "precisions": ["fp32"]}
    desc["verification"] = {
        "samples": 2,
        "scenarios": [
            {
                "ref": {"backend": "pytorch", "device": "cpu"},
                "test": {"backend": "onnxruntime", "device": "cpu"},
                "default": {"atol": 1e-4, "rtol": 1e-3},
            },
            {
                "ref": {"backend": "onnxruntime", "device": "cpu"},
                "test": {"backend": "tensorrt", "device": "cuda"},
            },
        ],
    }
    desc["evaluation"].update(
        {
            "samples": 20,
            "warmup": 1,
            "budget": {},
            "backends": [
                {"backend": "pytorch", "device": "cpu"},
                {"backend": "onnxruntime", "device": "cpu"},
                {"backend": "tensorrt", "device": "cuda"},
            ],
        }
    )
    if reference:
        desc["source"]["checkpoint"] = f"artifacts/{name}/reference/checkpoint.pth"
        desc["evaluation"]["dataset"] = f"data/{name}"
        desc["reference"] = {
            "module": "reference.py",
            "seed": 0,
            "options": {"train": 64, "val": 24, "height": size, "width": size, "epochs": 1, "batch": 32},
        }
    else:
        desc.pop("reference", None)
    return desc


def copy_skeleton(dest: Path) -> None:
    """dvc.yaml, ignore files and the pipelines/ source (stage deps name its paths) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("dvc.yaml", ".gitignore", ".dvcignore"):
        if (REPO / f).exists():
            shutil.copy(REPO / f, dest / f)
    shutil.copytree(REPO / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))


def init_repo(dest: Path) -> None:
    """git + DVC repository with everything committed."""
    run(["git", "init", "-q"], dest)
    run([str(BIN / "dvc"), "init", "-q"], dest)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], dest)


def bundled_subset_repo(dest: Path, names: list[str]) -> Path:
    """A repository with only some of the bundled models (folders copied, params.yaml restricted).
    The caller may edit the copied descriptors before calling init_repo(dest)."""
    copy_skeleton(dest)
    for name in names:
        shutil.copytree(REPO / "models" / name, dest / "models" / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = read_yaml(REPO / "params.yaml")
    params["models"] = {n: params["models"][n] for n in names}
    params["reference_models"] = [n for n in params.get("reference_models") or [] if n in names]
    write_yaml(dest / "params.yaml", params)
    return dest


def make_repo(dest: Path, models: dict[str, dict[str, Any]], git: bool = True) -> Path:
    """A modelzoo repository at `dest` holding `models` (name -> descriptor), with dvc.yaml and params."""
    copy_skeleton(dest)
    params: dict[str, Any] = {"models": {}, "reference_models": [], "targets": ["onnxruntime", "tensorrt"]}
    for name, desc in models.items():
        mdir = dest / "models" / name
        mdir.mkdir(parents=True, exist_ok=True)
        for f in ("net.py", "reference.py"):
            shutil.copy(REPO / "models" / CLASSIFIER / f, mdir / f)
        write_yaml(mdir / "model.yaml", desc)
        params["models"][name] = {"checkpoint": desc["source"]["checkpoint"], "dataset": desc["evaluation"]["dataset"]}
        if "reference" in desc:
            params["reference_models"].append(name)
    write_yaml(dest / "params.yaml", params)
    if git:
        init_repo(dest)
    return dest


def built_model(dest: Path, name: str, desc: dict[str, Any]) -> Any:
    """A one-model repository at `dest`, with its reference data, checkpoint, ONNX and build made."""
    from pipelines.descriptor import load_descriptor
    from pipelines.reference import make_data, train
    from pipelines.stages.build import run_build
    from pipelines.stages.export import run_export
    from pipelines.workspace import ModelContext

    root = make_repo(dest, {name: desc})
    ctx = ModelContext(root, load_descriptor(root, name))
    make_data(ctx)
    train(ctx)
    run_export(ctx)
    run_build(ctx)
    return ctx


def run(
    cmd: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:

    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    full_env.pop("MODELZOO_ROOT", None)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def modelzoo(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "modelzoo"), *args], cwd, check=check)
