"""Run the `modelzoo` CLI in this process (fast: no interpreter start, no re-import), as `main` does."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], root: Path, env: dict[str, str] | None = None) -> Outcome:
    """`modelzoo <args>` with the repository `root`, through `run_app` (one-line errors and exit codes)."""
    from pipelines.cli import app, run_app
    from pipelines.workspace import model_context

    model_context.cache_clear()
    saved = dict(os.environ)
    os.environ.update({"MODELZOO_ROOT": str(root), **(env or {})})
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run_app(lambda: app(args=args, prog_name="modelzoo", standalone_mode=True))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        model_context.cache_clear()
    return Outcome(code, out.getvalue(), err.getvalue())


def error_lines(outcome: Outcome) -> list[str]:
    """The `error: ...` lines of stderr (log lines and library warnings are not errors)."""
    return [ln for ln in outcome.stderr.splitlines() if ln.startswith("error:")]
