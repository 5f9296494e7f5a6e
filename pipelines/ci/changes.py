"""Which models a change touches, read off the DVC graph itself.

A changed file marks every stage that depends on it (a file inside a dependency folder counts, and
so does `<path>.dvc` for a DVC-tracked dependency); a changed params.yaml marks the stages whose
tracked keys (e.g. `models.<name>`) hold other values; a changed dvc.yaml marks every stage. Then
everything downstream is marked too, so a change to `pipelines/runtimes` (the `env` stages)
reaches every model's build. The answer is the models of the marked `<stage>@<model>` stages.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipelines.gitrepo import changed_files, show
from pipelines.workspace import PARAMS_FILE, load_params
from pipelines.yamlio import load_yaml, parse_yaml

DVC_YAML = "dvc.yaml"


def _touches(dep: str, changed: Iterable[str]) -> bool:
    dep = dep.rstrip("/")
    return any(f == dep or f.startswith(dep + "/") or f == dep + ".dvc" for f in changed)


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _params_changed(dep: Any, old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    if old is None:
        return True
    keys = list(getattr(dep, "params", None) or [])
    if not keys:  # the whole file is tracked
        return old != new
    return any(_lookup(old, k) != _lookup(new, k) for k in keys)


def stages_touched(root: Path, changed: list[str], base: str) -> set[str]:
    """Addresses of the stages (and their downstream stages) that the changed files affect."""
    import networkx as nx  # type: ignore[import-untyped]
    from dvc.repo import Repo  # type: ignore[import-untyped]

    old_text = show(root, base, PARAMS_FILE) if PARAMS_FILE in changed else None
    old_params = (parse_yaml(old_text, f"{base}:{PARAMS_FILE}") or {}) if old_text is not None else None
    new_params = load_yaml(root / PARAMS_FILE, PARAMS_FILE) or {}

    with Repo(str(root)) as repo:
        index = repo.index
        everything = DVC_YAML in changed
        hit = []
        for stage in index.stages:
            for dep in stage.deps:
                path = str(dep.def_path)
                if path == PARAMS_FILE and hasattr(dep, "params"):
                    if PARAMS_FILE in changed and _params_changed(dep, old_params, new_params):
                        hit.append(stage)
                        break
                elif _touches(path, changed):
                    hit.append(stage)
                    break
            else:
                if everything:
                    hit.append(stage)
        graph = index.graph  # edges point from a stage to the stages it depends on
        marked = set(hit)
        for stage in hit:
            marked |= nx.ancestors(graph, stage)
        return {s.addressing for s in marked}


def models_of(root: Path, stages: Iterable[str]) -> list[str]:
    models = set(load_params(root)["models"])
    out = {addr.rpartition("@")[2] for addr in stages if "@" in addr}
    return sorted(out & models)


def changed_models(root: Path, base: str, head: str = "HEAD") -> list[str]:
    """Models whose pipeline a change from `base` to `head` (the checked-out workspace) reruns."""
    changed = changed_files(root, base, head)
    if not changed:
        return []
    return models_of(root, stages_touched(root, changed, base))
