"""`modelzoo ci ...`: one command per workflow step. Results go to stdout and, on a runner, to $GITHUB_OUTPUT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipelines.ci.outputs import write_outputs
from pipelines.errors import UsageError

app = typer.Typer(help="Steps of the GitHub Actions workflows (.github/workflows), tested here.", no_args_is_help=True)


def _root() -> Path:
    from pipelines.workspace import find_root

    return find_root()


@app.command()
def changed(
    base: Annotated[str, typer.Option(help="Git ref the change is compared with (e.g. origin/main).")],
    head: Annotated[str, typer.Option(help="Git ref of the change; must be the checked-out workspace.")] = "HEAD",
) -> None:
    """Models whose DVC pipeline the change reruns, and their matrix (outputs: models, matrix, empty)."""
    from pipelines.ci.changes import changed_models
    from pipelines.ci.matrix import build_matrix, matrix_outputs

    root = _root()
    out = matrix_outputs(build_matrix(root, changed_models(root, base, head)))
    write_outputs(out)
    typer.echo(out["models"])


@app.command()
def matrix(
    models: Annotated[list[str] | None, typer.Argument(help="Models (default: all in params.yaml).")] = None,
) -> None:
    """The model x runner-architecture matrix as JSON (outputs: matrix, models, empty)."""
    from pipelines.ci.matrix import build_matrix, matrix_outputs

    out = matrix_outputs(build_matrix(_root(), models or None))
    write_outputs(out)
    typer.echo(out["matrix"])


@app.command()
def tag(
    name: Annotated[str, typer.Argument(help="The pushed tag (vX.Y.Z or refs/tags/vX.Y.Z).")],
    main_ref: Annotated[str, typer.Option("--main", help="Ref of the main branch.")] = "origin/main",
) -> None:
    """Refuse a tag that is not vX.Y.Z or not on main (outputs: version, commit, alias, alias_of)."""
    from pipelines.ci.tags import check_tag

    release = check_tag(_root(), name, main_ref)
    write_outputs(release.outputs())
    kind = f"alias of {release.alias_of} (Z > 0: no artifacts uploaded)" if release.alias else "full release"
    typer.echo(f"{release.tag}: release {release.version} of {release.commit[:12]}, {kind}")


@app.command()
def verified() -> None:
    """Check the workspace holds the outputs verified for this commit (after `dvc pull`): nothing to rebuild."""
    from pipelines.ci.verified import check_verified

    result = check_verified(_root())
    typer.echo(f"ok: {len(result.models)} model(s) match dvc.lock and passed verification: {', '.join(result.models)}")
    for key, reason in result.skipped.items():
        typer.echo(f"  skipped {key}: {reason}")


@app.command("dvc-remote")
def dvc_remote(
    registry: Annotated[str | None, typer.Option(help="Registry root (default: $MODELZOO_REGISTRY).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="S3 endpoint (default: $MODELZOO_S3_ENDPOINT_URL).")] = None,
) -> None:
    """Point DVC's `registry` remote (in .dvc/config.local) at <registry>/dvc."""
    from pipelines.ci.remote import configure_remote

    typer.echo(f"dvc remote registry: {configure_remote(_root(), registry, endpoint)}")


@app.command()
def comment(
    models: Annotated[str, typer.Option(help="JSON list of the models rebuilt (the `changed` output).")],
    metrics: Annotated[Path, typer.Option(help="Output of `dvc metrics diff main --md`.")],
    release: Annotated[Path, typer.Option(help="Output of `modelzoo release check`.")],
    out: Annotated[Path, typer.Option(help="Where to write the comment (markdown).")],
    release_failed: Annotated[bool, typer.Option(help="`modelzoo release check` exited non-zero.")] = False,
) -> None:
    """Assemble the pull-request comment from the two reports."""
    from pipelines.ci.comment import comment_body
    from pipelines.fileio import atomic_path

    try:
        names = json.loads(models)
    except ValueError:
        raise UsageError(f"--models: not JSON: {models[:60]!r}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError("--models: expected a JSON list of model names")
    texts = []
    for path in (metrics, release):
        try:
            texts.append(path.read_text())
        except OSError as err:
            raise UsageError(f"{path}: cannot read: {err.strerror}") from None
    body = comment_body(names, texts[0], texts[1], release_ok=not release_failed)
    with atomic_path(out) as tmp:
        tmp.write_text(body)
    typer.echo(f"comment: {out}")


@app.command("commit-back")
def commit_back_cmd(
    path: Annotated[str, typer.Argument(help="File to commit, relative to the repository root.")] = "MODELS.md",
    branch: Annotated[str, typer.Option(help="Branch to push to.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote.")] = "origin",
    message: Annotated[str, typer.Option(help="Commit message ([skip ci] is appended).")] = "MODELS.md: regenerate",
) -> None:
    """Commit a regenerated file and push it without re-triggering the workflows; no-op when unchanged."""
    from pipelines.ci.commit import commit_back

    commit = commit_back(_root(), path, message, remote=remote, branch=branch)
    typer.echo(
        f"{path}: pushed {commit[:12]} to {remote}/{branch}" if commit else f"{path}: unchanged, nothing to commit"
    )
