"""The habits CI enforces: ruff (lint and format) and mypy clean over the tree, as the pull-request
workflow asks; here they run in every CI run of the suite, not only on pull requests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_lint_is_clean() -> None:
    done = _run(str(BIN / "ruff"), "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean() -> None:
    # The product, and the workflow player and local hub that the rehearsal and the tests drive.
    done = _run(
        str(BIN / "mypy"), "pipelines", "scripts/actions_player", "scripts/local_hub.py", "scripts/rehearse-release"
    )
    assert done.returncode == 0, done.stdout + done.stderr
