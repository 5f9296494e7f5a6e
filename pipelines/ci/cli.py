"""`modelzoo ci ...`: one command per workflow step. Results go to stdout and, on a runner, to $GITHUB_OUTPUT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipelines.ci.outputs import write_outputs
from pipelines.errors import UsageError
from pipelines.gitrepo import find_root
from pipelines.registry.location import ENDPOINT_ENV, REGISTRY_ENV, RegistryLocation

app = typer.Typer(help="Steps of the GitHub Actions workflows (.github/workflows), tested here.", no_args_is_help=True)


@app.command()
def changed(
    base: Annotated[str, typer.Option(help="Git ref the change is compared with (e.g. origin/main).")],
    head: Annotated[str, typer.Option(help="Git ref of the change; must be the checked-out workspace.")] = "HEAD",
) -> None:
    """Models whose DVC pipeline the change reruns, and their matrix (outputs: models, matrix, empty)."""
    from pipelines.ci.changes import changed_models
    from pipelines.ci.matrix import build_matrix, matrix_outputs

    root = find_root()
    out = matrix_outputs(build_matrix(root, changed_models(root, base, head)))
    write_outputs(out)
    typer.echo(out["models"])


@app.command()
def matrix(
    models: Annotated[list[str] | None, typer.Argument(help="Models (default: all in params.yaml).")] = None,
) -> None:
    """The model x runner-architecture matrix as JSON (outputs: matrix, models, empty)."""
    from pipelines.ci.matrix import build_matrix, matrix_outputs

    out = matrix_outputs(build_matrix(find_root(), models or None))
    write_outputs(out)
    typer.echo(out["matrix"])


@app.command()
def tag(
    name: Annotated[str, typer.Argument(help="The pushed tag (vX.Y.Z or refs/tags/vX.Y.Z).")],
    main_ref: Annotated[str, typer.Option("--main", help="Ref of the main branch.")] = "origin/main",
) -> None:
    """Refuse a tag that is not vX.Y.Z or not on main (outputs: version, commit, alias, alias_of)."""
    from pipelines.ci.tags import check_tag

    release = check_tag(find_root(), name, main_ref)
    write_outputs(release.outputs())
    kind = f"alias of {release.alias_of} (Z > 0: no artifacts uploaded)" if release.alias else "full release"
    typer.echo(f"{release.tag}: release {release.version} of {release.commit[:12]}, {kind}")


@app.command()
def verified() -> None:
    """Check the workspace holds the outputs verified for this commit (after `dvc pull`): nothing to rebuild."""
    from pipelines.ci.verified import check_verified

    result = check_verified(find_root())
    typer.echo(f"ok: {len(result.models)} model(s) match dvc.lock and passed verification: {', '.join(result.models)}")
    for key, reason in result.skipped.items():
        typer.echo(f"  skipped {key}: {reason}")


@app.command("dvc-remote")
def dvc_remote(
    registry: Annotated[str | None, typer.Option(help=f"Registry root (default: ${REGISTRY_ENV}).")] = None,
    endpoint: Annotated[str | None, typer.Option(help=f"S3 endpoint (default: ${ENDPOINT_ENV}).")] = None,
) -> None:
    """Point DVC's `registry` remote (in .dvc/config.local) at <registry>/dvc."""
    from pipelines.registry.dvcremote import REMOTE, configure_remote

    url = configure_remote(find_root(), RegistryLocation.resolve(registry, endpoint, embedded=False))
    typer.echo(f"dvc remote {REMOTE}: {url}")


@app.command()
def comment(
    models: Annotated[str, typer.Option(help="JSON list of the models rebuilt (the `changed` output).")],
    metrics: Annotated[Path, typer.Option(help="Output of `dvc metrics diff main --md`.")],
    release: Annotated[Path, typer.Option(help="Output of `modelzoo release check`.")],
    out: Annotated[Path, typer.Option(help="Where to write the comment (markdown).")],
    release_outcome: Annotated[
        str, typer.Option(help="Outcome of the `modelzoo release check` step: success or failure.")
    ] = "success",
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
    if release_outcome not in ("success", "failure"):
        raise UsageError(f"--release-outcome: '{release_outcome}' is not success or failure")
    body = comment_body(names, texts[0], texts[1], release_ok=release_outcome == "success")
    with atomic_path(out) as tmp:
        tmp.write_text(body)
    typer.echo(f"comment: {out}")


@app.command("commit-back")
def commit_back_cmd(
    paths: Annotated[list[str] | None, typer.Argument(help="Files/folders to commit (default: MODELS.md).")] = None,
    branch: Annotated[str, typer.Option(help="Branch to push to.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote.")] = "origin",
    message: Annotated[
        str, typer.Option(help="Commit message ([skip ci] is appended).")
    ] = "CI: results of the pipeline run",
) -> None:
    """Commit what the run produced and push it without re-triggering the workflows (never DVC-cached outputs)."""
    from pipelines.ci.bundle import cached_outputs
    from pipelines.ci.commit import commit_back

    root = find_root()
    paths = paths or ["MODELS.md"]
    commit = commit_back(root, paths, message, remote=remote, branch=branch, exclude=cached_outputs(root))
    path = " ".join(paths)
    typer.echo(
        f"{path}: pushed {commit[:12]} to {remote}/{branch}" if commit else f"{path}: unchanged, nothing to commit"
    )


@app.command()
def bundle(
    model: Annotated[str, typer.Argument(help="The model this matrix leg ran.")],
    arch: Annotated[str, typer.Option(help="The leg's runner architecture.")] = "x86_64",
    out: Annotated[Path, typer.Option(help="Bundle folder to (re)write.")] = Path("bundle"),
    with_outputs: Annotated[
        bool, typer.Option("--with-outputs", help="Also the DVC-cached outputs (a leg that cannot `dvc push`).")
    ] = False,
) -> None:
    """Pack a leg's dvc.lock and `cache: false` outputs for the publish job (after `dvc repro` and `dvc push`)."""
    from pipelines.ci.bundle import make_bundle

    files = make_bundle(find_root(), model, arch, out, with_outputs=with_outputs)
    typer.echo(f"bundle {out}: {model} ({arch}), dvc.lock + {len(files)} output(s)")


@app.command()
def merge(
    bundles: Annotated[list[Path], typer.Argument(help="Bundle folders written by `modelzoo ci bundle`.")],
) -> None:
    """Merge the legs' bundles into dvc.lock and the workspace (the x86_64 legs; device legs only gate)."""
    from pipelines.ci.bundle import merge_bundles

    models = merge_bundles(find_root(), bundles)
    typer.echo(f"dvc.lock: merged {len(models)} model(s): {', '.join(models) or 'none'}")


@app.command("next-tag")
def next_tag_cmd(
    registry: Annotated[
        str | None, typer.Option(help=f"Registry root (default: ${REGISTRY_ENV}, else registry/ in the repo).")
    ] = None,
    endpoint_url: Annotated[str | None, typer.Option(help=f"S3 endpoint (default: ${ENDPOINT_ENV}).")] = None,
) -> None:
    """The tag a release of this build would need (latest release bumped as the changes demand; output: tag)."""
    from pipelines.ci.bump import next_tag

    bump = next_tag(find_root(), RegistryLocation.resolve(registry, endpoint_url))
    write_outputs({"tag": bump.tag, "level": bump.level})
    since = f"{bump.level} bump from {bump.latest}" if bump.latest else "no release yet"
    typer.echo(f"{bump.tag} ({since})")
