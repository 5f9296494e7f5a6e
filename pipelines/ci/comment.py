"""The pull-request comment: what the change does to the metrics, and what release it would need."""

from __future__ import annotations

MARKER = "<!-- modelzoo:pr-report -->"


def _block(text: str, empty: str) -> str:
    text = text.strip()
    return text if text else f"_{empty}_"


def comment_body(models: list[str], metrics_md: str, release_check: str, release_ok: bool = True) -> str:
    """Markdown for the PR comment; MARKER lets the poster find and replace its previous comment."""
    touched = ", ".join(f"`{m}`" for m in models) if models else "none"
    release = release_check.strip()
    verdict = "" if release_ok else "\n\n:warning: `modelzoo release check` failed: see above."
    parts = [
        MARKER,
        "## modelzoo: models on this branch",
        f"Rebuilt and verified here: {touched}.",
        "### Metrics vs main (`dvc metrics diff main --md`)",
        _block(metrics_md, "no metric changed"),
        "### Release (`modelzoo release check`)",
        f"```\n{release}\n```{verdict}" if release else "_no output_",
    ]
    return "\n\n".join(parts) + "\n"
