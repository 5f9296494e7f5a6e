"""The few git queries the CI helpers need, with one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipelines.errors import ModelzooError


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise ModelzooError("git: not found on PATH") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise ModelzooError(f"git {' '.join(args)}: {detail}")
    return proc


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
