"""The repository modelzoo runs in: its root, and the git queries on it, with one-line errors.

Imports nothing from pipelines but errors, so that every layer (stages, registry, ci, the CLIs) may use it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipelines.errors import ModelzooError, UsageError

PARAMS_FILE = "params.yaml"
ROOT_ENV = "MODELZOO_ROOT"


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder upwards holding params.yaml (or $MODELZOO_ROOT)."""
    if env := os.environ.get(ROOT_ENV):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / PARAMS_FILE).is_file():
            return p
    raise UsageError(f"{PARAMS_FILE}: not found in {here} or any parent: run modelzoo inside the repository")


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise ModelzooError("git: not found on PATH") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise ModelzooError(f"git {' '.join(args)}: {detail}")
    return proc


def head_commit(root: Path) -> str:
    """HEAD's commit, stamped into artifacts and manifests; "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def rev_parse(root: Path, ref: str) -> str:
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise ModelzooError(f"git ref '{ref}': not found (fetch it first, e.g. fetch-depth: 0)")
    return proc.stdout.strip()


def is_ancestor(root: Path, commit: str, of: str) -> bool:
    return git(root, "merge-base", "--is-ancestor", commit, of, check=False).returncode == 0


def show(root: Path, ref: str, path: str) -> str | None:
    """A file's text at a ref, or None where it did not exist."""
    proc = git(root, "show", f"{ref}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def changed_files(root: Path, base: str, head: str = "HEAD") -> list[str]:
    """Files changed on head since it forked from base (what a pull request shows)."""
    rev_parse(root, base)
    rev_parse(root, head)
    out = git(root, "diff", "--name-only", "--no-renames", f"{base}...{head}").stdout
    return sorted(line for line in out.splitlines() if line)
