"""Hand a matrix leg's results to the publish job.

A leg runs `dvc repro` for one model and `dvc push`es the cached outputs to the registry's DVC
remote. What the remote does not hold travels in a bundle (a workflow artifact): the leg's
dvc.lock and its `cache: false` outputs (verify.json, metrics.json, plots, the env fingerprints).
A pull request's legs may not write to the registry, so their bundles carry every output
(`--with-outputs`). The publish job merges the bundles: each model's `<stage>@<model>` entries,
and the `env@*` ones, go into dvc.lock, so `dvc pull` then fetches exactly the bytes the legs
verified.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipelines.errors import ModelzooError, UsageError
from pipelines.fileio import atomic_path
from pipelines.yamlio import dump_yaml, load_yaml

LOCK = "dvc.lock"
META = "bundle.json"
FILES = "files"


def _owned(stage: str, model: str) -> bool:
    return stage.endswith(f"@{model}") or stage.startswith("env@")


def outputs_of(root: Path, model: str, *, cached: bool = False) -> list[str]:
    """The `cache: false` outputs of the model's stages and of the env stages (all outputs with `cached`)."""
    from dvc.repo import Repo  # type: ignore[import-untyped]

    with Repo(str(root)) as repo:
        return sorted(
            str(out.def_path)
            for stage in repo.index.stages
            if _owned(stage.addressing, model)
            for out in stage.outs
            if cached or not out.use_cache
        )


def cached_outputs(root: Path) -> list[str]:
    """Every DVC-cached output of the graph (they live in the DVC remote, never in git)."""
    if not (root / "dvc.yaml").is_file():
        return []
    from dvc.repo import Repo  # type: ignore[import-untyped]

    with Repo(str(root)) as repo:
        return sorted(str(out.def_path) for stage in repo.index.stages for out in stage.outs if out.use_cache)


def _read_lock(path: Path) -> dict[str, Any]:
    data = load_yaml(path, error=ModelzooError) or {}
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise ModelzooError(f"{path}: stages: expected a mapping (not a dvc.lock?)")
    return data


def make_bundle(root: Path, model: str, arch: str, out: Path, *, with_outputs: bool = False) -> list[str]:
    lock = _read_lock(root / LOCK)
    missing = [s for s in lock["stages"] if s.endswith(f"@{model}")]
    if not missing:
        raise UsageError(f"{LOCK}: no stage of model '{model}': run `dvc repro` for it first")
    if out.exists():
        shutil.rmtree(out)
    (out / FILES).mkdir(parents=True)
    shutil.copy2(root / LOCK, out / LOCK)
    copied = []
    for rel in outputs_of(root, model, cached=with_outputs):
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, out / FILES / rel)
        elif src.is_file():
            (out / FILES / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / FILES / rel)
        else:
            continue
        copied.append(rel)
    cached = [rel for rel in outputs_of(root, model, cached=True) if rel not in outputs_of(root, model)]
    meta = {"model": model, "arch": arch, "files": copied, "cached": cached}
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    return copied


def ignore_outputs(root: Path, paths: list[str]) -> None:
    """Git-ignore DVC-cached outputs as `dvc repro` does (`/<name>` in the parent's .gitignore)."""
    for rel in paths:
        parent, name = (root / rel).parent, Path(rel).name
        gitignore = parent / ".gitignore"
        lines = gitignore.read_text().splitlines() if gitignore.is_file() else []
        if f"/{name}" not in lines:
            parent.mkdir(parents=True, exist_ok=True)
            gitignore.write_text("".join(f"{line}\n" for line in [*lines, f"/{name}"]))


def merge_bundles(root: Path, bundles: list[Path]) -> list[str]:
    """Apply bundles to the workspace; returns the models merged. Only x86_64 legs feed dvc.lock."""
    lock_path = root / LOCK
    # A first run has no dvc.lock yet: the legs' entries make it.
    lock: dict[str, Any] = _read_lock(lock_path) if lock_path.exists() else {"schema": "2.0", "stages": {}}
    merged = []
    for bundle in bundles:
        try:
            meta = json.loads((bundle / META).read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"{bundle / META}: not a bundle: {err}") from None
        if meta.get("arch") != "x86_64":
            continue  # device legs verify on their hardware; dvc.lock records the x86_64 build
        theirs = _read_lock(bundle / LOCK)["stages"]
        for name, entry in theirs.items():
            if _owned(name, meta["model"]):
                lock["stages"][name] = entry
        for rel in meta.get("files", []):
            src, dest = bundle / FILES / rel, root / rel
            if dest.is_dir():
                shutil.rmtree(dest)
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
        ignore_outputs(root, meta.get("cached", []))
        merged.append(meta["model"])
    with atomic_path(lock_path) as tmp:
        tmp.write_text(dump_yaml(lock, sort_keys=False, width=1_000))
    return sorted(merged)
