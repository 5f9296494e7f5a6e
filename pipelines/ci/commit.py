"""Commit what a workflow produced (dvc.lock, results, MODELS.md) back to main without re-triggering it.

Three things keep the commit from starting another run: pushes made with the workflow's
GITHUB_TOKEN start no workflow, the message carries `[skip ci]`, and the push workflow ignores a
change to MODELS.md alone (`paths-ignore`).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.errors import ModelzooError
from pipelines.gitrepo import git

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
SKIP = "[skip ci]"


def commit_back(
    root: Path,
    paths: list[str],
    message: str,
    *,
    remote: str = "origin",
    branch: str = "main",
    attempts: int = 3,
    exclude: list[str] | None = None,
) -> str | None:
    """Commit the paths that changed (files, or folders' files) and push; the new commit, or None.

    `exclude` (e.g. the DVC-cached outputs, which belong in the DVC remote) is never staged.
    """
    for path in paths:
        if not (root / path).exists():
            raise ModelzooError(f"{path}: not found: generate it before committing it")
    # Naming an ignored path, even to exclude it, makes `git add` fail: exclude the unignored only.
    unignored = [p for p in exclude or [] if git(root, "check-ignore", "-q", p, check=False).returncode != 0]
    git(root, "add", "--", *paths, *(f":(exclude){p}" for p in unignored))
    if git(root, "diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
        return None
    subject = message if SKIP in message else f"{message} {SKIP}"
    as_bot = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    git(root, *as_bot, "commit", "-q", "-m", subject, "--", *paths)
    for attempt in range(attempts):
        if git(root, "push", "-q", remote, f"HEAD:refs/heads/{branch}", check=False).returncode == 0:
            return git(root, "rev-parse", "HEAD").stdout.strip()
        if attempt + 1 < attempts:  # someone pushed meanwhile: replay this one commit on top
            git(root, *as_bot, "pull", "-q", "--rebase", remote, branch)
    raise ModelzooError(
        f"{' '.join(paths)}: push to {remote}/{branch} rejected {attempts} times: commit it by hand or rerun"
    )
