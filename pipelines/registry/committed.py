"""Is the workspace what HEAD says it is? Tracked files against HEAD, published outputs against dvc.lock.

A release records `git_commit = HEAD`; that is only true when no tracked file differs from HEAD (and
no untracked file sits in a published model's folder, whose files are published as provenance) and
the DVC outputs it publishes are the ones HEAD's dvc.lock names (else `dvc get --rev <tag>` returns
other bytes than the release).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.errors import ModelzooError
from pipelines.gitrepo import git

# `modelzoo publish` on a workspace that is not HEAD (documented in the README's exit codes).
DIRTY_EXIT = 7
SHOWN = 3


class DirtyWorkspace(ModelzooError):
    exit_code = DIRTY_EXIT


@dataclass(frozen=True)
class WorkspaceState:
    # Tracked files that differ from HEAD (staged or not), and untracked files in published model folders.
    changed: list[str] = field(default_factory=list)
    # Published DVC outputs that differ from what dvc.lock records (stale inputs are `modelzoo ci
    # verified`'s business: the outputs dvc.lock names are then still the ones published).
    stale: list[str] = field(default_factory=list)
    # The stages whose dvc.lock entries are stale (what `dvc repro` needs to bring up to date).
    stale_stages: list[str] = field(default_factory=list)
    # sha256 of `git diff --binary HEAD` plus the untracked files counted above (None when clean).
    diff_sha256: str | None = None

    @property
    def dirty(self) -> bool:
        return bool(self.changed or self.stale)

    def message(self, what: str) -> str:
        """One line: what differs (a few paths) and the command that fixes it."""
        parts = []
        if self.changed:
            parts.append(f"files differ from HEAD ({_few(self.changed)}): commit them (git commit) or stash them")
        if self.stale:
            targets = " ".join(self.stale_stages) or "<stage>"
            parts.append(
                f"outputs differ from dvc.lock ({_few(self.stale)}): run `dvc repro {targets}` "
                f"(or `dvc commit {targets}` for outputs changed on purpose) and commit dvc.lock"
            )
        return f"{what}: the workspace is not HEAD: " + "; ".join(parts)


def _few(paths: list[str]) -> str:
    more = f", +{len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def _git_changes(root: Path, model_dirs: list[str]) -> tuple[list[str], list[str]]:
    """(tracked files differing from HEAD, untracked unignored files under the model folders)."""
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    tracked, untracked = [], []
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(entries, None)  # a rename's source path follows
        if code == "??":
            if any(path.startswith(d) for d in model_dirs):
                untracked.append(path)
        elif code != "!!":
            tracked.append(path)
    return sorted(tracked), sorted(untracked)


def _diff_sha256(root: Path, untracked: list[str]) -> str:
    digest = hashlib.sha256(git(root, "diff", "--binary", "HEAD").stdout.encode())
    for path in untracked:
        digest.update(f"\0untracked {path}\0".encode())
        digest.update((root / path).read_bytes())
    return digest.hexdigest()


def _stages(root: Path, models: list[str]) -> list[str]:
    """The DVC stages whose outputs a release of `models` publishes (those dvc.yaml defines)."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ModelzooError(f"params.yaml: cannot read: {str(err).splitlines()[0]}") from None
    reference = set(params.get("reference_models") or [])
    stages = []
    for m in models:
        if m in reference:
            stages.append(f"train@{m}")
        stages += [f"{s}@{m}" for s in ("export", "build", "verify", "evaluate")]
    return stages


def _dvc_stale(root: Path, stages: list[str]) -> tuple[list[str], list[str]]:
    """(paths that differ from dvc.lock, their stages), from `dvc status --json` of those stages only."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json", *stages], cwd=root, capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "failed")
        raise ModelzooError(f"dvc status: {why.strip()}")
    try:
        status = json.loads(done.stdout.strip() or "{}")
    except ValueError:
        raise ModelzooError(f"dvc status: unexpected output {done.stdout.strip()[:80]!r}") from None
    paths: set[str] = set()
    stale_stages = []
    for stage, changes in sorted(status.items()):
        for change in changes:
            if isinstance(change, dict) and change.get("changed outs"):
                paths.update(change["changed outs"])
                if stage.split(":")[-1] not in stale_stages:
                    stale_stages.append(stage.split(":")[-1])
    return sorted(paths), stale_stages


def workspace_state(root: Path, models: list[str]) -> WorkspaceState:
    """What differs from HEAD in the workspace a release of `models` would be published from."""
    model_dirs = [f"models/{m}/" for m in models]
    tracked, untracked = _git_changes(root, model_dirs)
    # A repository without a DVC pipeline has its outputs in git: the git check covers them.
    has_dvc = (root / "dvc.yaml").is_file()
    stale, stale_stages = _dvc_stale(root, _stages(root, models)) if has_dvc else ([], [])
    changed = sorted(tracked + untracked)
    diff = _diff_sha256(root, untracked) if changed or stale else None
    return WorkspaceState(changed=changed, stale=stale, stale_stages=stale_stages, diff_sha256=diff)
