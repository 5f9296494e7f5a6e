"""`modelzoo site build|publish`: the registry's static site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.registry.cli import EndpointOpt, RegistryOpt, open_registry

app = typer.Typer(help="The registry's static site (HTML + SVG, relative links, no scripts).", no_args_is_help=True)

FilesUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--files-url",
        help="Link files to <URL>/<registry path>; a relative URL is taken from the site's root "
        "('..' when the site lives in <registry>/site/). Default for build: no download links.",
    ),
]


@app.command("build")
def build(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (replaced whole).")],
    files_url: FilesUrlOpt = None,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Render the site from the registry's manifests into a folder (deterministic)."""
    from pipelines.registry.history import read_history
    from pipelines.site.build import build_site

    store = open_registry(registry, endpoint_url)
    result = build_site(read_history(store), store, output, files_url)
    typer.echo(f"site {output}: {len(result.pages)} page(s), {result.charts} chart(s)")


@app.command("publish")
def publish(
    files_url: Annotated[
        str, typer.Option("--files-url", help="Download links; relative to <registry>/site/ by default.")
    ] = "..",
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Render the site and upload it to <registry>/site/ (index.html last; pages no longer rendered deleted)."""
    from pipelines.registry.history import read_history
    from pipelines.site.build import render_site
    from pipelines.site.upload import SITE_PREFIX, publish_site

    store = open_registry(registry, endpoint_url)
    files = render_site(read_history(store), store, files_url)
    done = publish_site(store, files)
    typer.echo(f"site: {done.uploaded} file(s) to {store.url}/{SITE_PREFIX}/, {len(done.deleted)} stale deleted")
