"""Commit a generated file (MODELS.md) back to a branch without re-triggering the workflows.

Three things keep the commit from starting another run: pushes made with the workflow's
GITHUB_TOKEN start no workflow, the message carries `[skip ci]`, and the push workflow ignores a
change to MODELS.md alone (`paths-ignore`).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.ci.git import git
from pipelines.errors import ModelzooError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
SKIP = "[skip ci]"


def commit_back(
    root: Path, path: str, message: str, *, remote: str = "origin", branch: str = "main", attempts: int = 3
) -> str | None:
    """Commit `path` if it changed and push it to `remote`/`branch`; the new commit, or None."""
    if not (root / path).is_file():
        raise ModelzooError(f"{path}: not found: generate it before committing it")
    git(root, "add", "--", path)
    if git(root, "diff", "--cached", "--quiet", "--", path, check=False).returncode == 0:
        return None
    subject = message if SKIP in message else f"{message} {SKIP}"
    git(root, "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", "commit", "-q", "-m", subject, "--", path)
    for attempt in range(attempts):
        if git(root, "push", "-q", remote, f"HEAD:refs/heads/{branch}", check=False).returncode == 0:
            return git(root, "rev-parse", "HEAD").stdout.strip()
        if attempt + 1 < attempts:  # someone pushed meanwhile: replay this one commit on top
            git(
                root,
                "-c",
                f"user.name={BOT_NAME}",
                "-c",
                f"user.email={BOT_EMAIL}",
                "pull",
                "-q",
                "--rebase",
                remote,
                branch,
            )
    raise ModelzooError(f"{path}: push to {remote}/{branch} rejected {attempts} times: commit it by hand or rerun")
