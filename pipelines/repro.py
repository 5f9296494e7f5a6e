"""`modelzoo repro`: `dvc repro`, asked only about the models whose inputs changed.

DVC checks every stage of the graph on each run (about 0.45 s a stage here), so a no-op
`dvc repro` over 50 models costs tens of seconds. This front keeps, per model, a stamp of the
(size, mtime) of every dependency and output that dvc.lock records for the model's stages. A model
whose stamp is unchanged is not handed to DVC; any other model is, and DVC alone decides what
reruns. A stale stamp can only make us ask DVC needlessly, never skip work: the stamp is saved only
after DVC succeeded, and any file touched since then changes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ModelzooError, UsageError
from pipelines.fileio import write_json
from pipelines.runtimes import TARGETS, target_environment
from pipelines.workspace import ARTIFACTS, PARAMS_FILE, load_params

STATE_FILE = Path(".dvc") / "tmp" / "modelzoo-repro.json"
MODEL_STAGES = ("export", "build", "verify", "evaluate")
REFERENCE_STAGES = ("recipe", "data", "train")
ENV_DIR = f"{ARTIFACTS}/env"

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


class _StatCache:
    def __init__(self, root: Path):
        self.root = root
        self._seen: dict[str, Any] = {}

    def signature(self, rel: str) -> Any:
        """(size, mtime_ns) of a file, or of every file under a directory; None when missing."""
        if rel not in self._seen:
            self._seen[rel] = self._walk(self.root / rel)
        return self._seen[rel]

    def _walk(self, path: Path) -> Any:
        try:
            st = path.stat()
        except OSError:
            return None
        if not path.is_dir():
            return [st.st_size, st.st_mtime_ns]
        out = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                try:
                    s = os.stat(p)
                except OSError:
                    continue
                out.append([os.path.relpath(p, path), s.st_size, s.st_mtime_ns])
        return out


def model_stages(name: str, reference: Iterable[str]) -> list[str]:
    stages = [f"{s}@{name}" for s in REFERENCE_STAGES] if name in reference else []
    return stages + [f"{s}@{name}" for s in MODEL_STAGES]


def _stamp(stages: list[str], lock: dict[str, Any], stats: _StatCache, shared: str) -> str | None:
    digest = hashlib.sha256(shared.encode())
    for stage in stages:
        entry = lock.get(stage)
        if entry is None:
            return None  # never ran (or failed): DVC must run it
        paths = [d["path"] for d in entry.get("deps", [])] + [o["path"] for o in entry.get("outs", [])]
        for rel in paths:
            if rel.startswith(ENV_DIR):
                continue  # always re-probed by DVC; compared by content in _environment_changed
            sig = stats.signature(rel)
            if sig is None:
                return None
            digest.update(json.dumps([rel, sig]).encode())
        digest.update(json.dumps(entry, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _environment_changed(root: Path, targets: list[str]) -> bool:
    """True when a build target's fingerprint differs from the one the last build recorded."""
    for target in targets:
        recorded = root / ARTIFACTS / "env" / f"{target}.json"
        try:
            old = json.loads(recorded.read_text())
        except (OSError, ValueError):
            return True
        if target not in TARGETS or target_environment(target).to_json() != old:
            return True
    return False


def _shared_inputs(root: Path) -> str:
    """Files every stage definition depends on: a change there hands every model to DVC."""
    digest = hashlib.sha256()
    for name in ("dvc.yaml", PARAMS_FILE):
        with contextlib.suppress(OSError):
            digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _stamps(root: Path, names: list[str], reference: list[str]) -> dict[str, str | None]:
    lock_path = root / "dvc.lock"
    lock: dict[str, Any] = {}
    if lock_path.is_file():
        lock = (yaml.load(lock_path.read_text(), Loader=_Loader) or {}).get("stages", {})
    stats = _StatCache(root)
    shared = _shared_inputs(root)
    return {n: _stamp(model_stages(n, reference), lock, stats, shared) for n in names}


def _dvc() -> list[str]:
    exe = Path(sys.executable).with_name("dvc")
    return [str(exe)] if exe.exists() else [shutil.which("dvc") or "dvc"]


def _summary(root: Path, names: list[str]) -> None:
    for name in names:
        metrics = root / ARTIFACTS / name / "metrics.json"
        base = f"{ARTIFACTS}/{name}"
        line = f"{name}: artifacts {base}/ (onnx/, build/, verify.json), metrics {base}/metrics.json"
        try:
            data = json.loads(metrics.read_text())
            head = data.get("headline", "")
            vals = ", ".join(f"{k} {v.get(head)}" for k, v in data.get("backends", {}).items())
            line += f" [{head}: {vals}]"
        except (OSError, ValueError):
            pass
        print(line)


def _dvc_repro(root: Path, stages: list[str]) -> int:
    env = dict(os.environ)
    # Stage commands call `modelzoo`: make sure it is this installation's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        return subprocess.run([*_dvc(), "repro", *stages], cwd=root, env=env, check=False).returncode
    except OSError as err:
        raise ModelzooError(f"dvc: cannot run: {err}") from None


def run_repro(root: Path, models: list[str] | None, dry: bool = False) -> int:
    params = load_params(root)
    known = list(params["models"])
    names = models or known
    unknown = [m for m in names if m not in known]
    if unknown:
        raise UsageError(f"{PARAMS_FILE}: models: unknown model(s) {unknown} (known: {', '.join(known)})")
    reference = list(params.get("reference_models") or [])
    targets = list(params.get("targets") or [])

    state_path = root / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    env_changed = _environment_changed(root, targets)
    asked: set[str] = set()
    # A model can share inputs with another (a checkpoint, a dataset): rerunning one may change
    # the other's stamp, so ask again until no model that was not yet asked has changed.
    while True:
        stamps = _stamps(root, [n for n in names if n not in asked], reference)
        changed = [n for n, st in stamps.items() if env_changed or st is None or state.get(n) != st]
        if not changed:
            break
        print(f"asking DVC about {len(changed)} of {len(names)} model(s): {', '.join(changed)}", flush=True)
        if dry:
            return 0
        rc = _dvc_repro(root, [f"evaluate@{n}" for n in changed])
        if rc != 0:
            return rc
        asked.update(changed)
        env_changed = False
        after = _stamps(root, changed, reference)
        state.update({n: st for n, st in after.items() if st is not None})
        write_json(state_path, state)
    if not asked:
        print(f"up to date: {len(names)} model(s), nothing handed to DVC")
    _summary(root, names)
    return 0
