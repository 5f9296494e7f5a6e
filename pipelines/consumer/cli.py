"""`modelzoo pin` and `modelzoo fetch`: the consumer's commands (registered in pipelines/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PinOpt = Annotated[Path, typer.Option("--pin", help="The pin file.")]


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def pin_cmd(
    version: Annotated[str | None, typer.Option(help="Release: X.Y.Z or bleedingedge.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model names.")] = None,
    registry: Annotated[str | None, typer.Option(help="s3://bucket/prefix, https://..., or a local path.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="S3-compatible endpoint URL.")] = None,
    target: Annotated[str | None, typer.Option(help="onnx, tensorrt-sm86, onnxruntime-cpu, or a full key.")] = None,
    precisions: Annotated[str | None, typer.Option(help="Comma-separated precisions to fetch (default: all).")] = None,
    interface: Annotated[
        str | None, typer.Option(help="Accepted interface versions (default: >=X.Y.0,<X+1.0.0 of the release).")
    ] = None,
    dest: Annotated[str | None, typer.Option(help="Where fetch writes <dest>/<model>/<file>.")] = None,
    public_key: Annotated[
        str | None, typer.Option(help="The publisher's EC public key (PEM file, relative to the pin file).")
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="model: <dest>/<model>/<file>; autoware: <dest>/<package>/<file>.")
    ] = None,
    autoware: Annotated[
        bool, typer.Option("--autoware", help="Print the release's entries for Autoware's ansible artifacts role.")
    ] = False,
    pin: PinOpt = Path("modelzoo.yaml"),
) -> None:
    """Write or update the pin file, after checking the release, models and target exist in the registry."""
    from pipelines.consumer.compat import check_interface
    from pipelines.consumer.fetch import plan, resolve_release
    from pipelines.consumer.pin import load_pin, save_pin, updated_pin
    from pipelines.errors import UsageError

    current = load_pin(pin) if pin.exists() else None
    if current is None and (registry is None or version is None or models is None):
        raise UsageError(f"{pin}: does not exist yet: pass --registry, --version and --models")
    changes = dict(
        version=version, models=_csv(models), registry=registry, endpoint_url=endpoint_url,
        target=target, precisions=_csv(precisions), interface=interface, dest=dest, public_key=public_key,
        layout=layout,
    )  # fmt: skip
    new = updated_pin(current, **changes)
    base = pin.resolve().parent
    release = resolve_release(new.location(base).store(), new.version, new.verifier(base))
    if autoware:
        from pipelines.registry.huggingface import ansible_entries

        typer.echo("\n".join(ansible_entries(release.manifest, new.version, new.models)))
        return
    if interface is None and current is None:
        # A new pin accepts the release's interface and its later minors (ModelZoo rule X).
        major, minor = (int(x) for x in release.manifest.interface_version.split(".")[:2])
        new = updated_pin(new, interface=f">={major}.{minor}.0,<{major + 1}.0.0")
    if warning := check_interface(release.manifest.interface_version, new.interface, release=f"release {new.version}"):
        typer.echo(f"warning: {warning}", err=True)
    planned = plan(release, new, new.dest_dir(base))
    save_pin(pin, new)
    alias = f" (alias of {release.resolved})" if release.resolved != release.requested else ""
    size = sum(p.entry.size for p in planned)
    typer.echo(
        f"{pin}: {new.version}{alias}, {len(new.models)} model(s), target {new.target}: "
        f"{len(planned)} file(s), {size} bytes"
    )


def fetch_cmd(
    pin: PinOpt = Path("modelzoo.yaml"),
    dest: Annotated[Path | None, typer.Option(help="Destination folder (default: the pin file's dest).")] = None,
    print_checksums: Annotated[
        bool,
        typer.Option("--print-checksums", help="Only print a sha256sum list of what fetch places; download nothing."),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Progress bars (stderr) for files of 16 MiB or more.")] = True,
    layout: Annotated[
        str | None, typer.Option(help="Override the pin's layout: model or autoware (<dest>/<package>/<file>).")
    ] = None,
) -> None:
    """Download the pinned models' files for the pinned target, verified (size + sha256), into <dest>/<model>/."""
    from pipelines.consumer.fetch import checksum_lines, fetch, prepare
    from pipelines.consumer.pin import load_pin, updated_pin

    spec = load_pin(pin)
    if layout is not None:
        spec = updated_pin(spec, layout=layout)
    base = pin.resolve().parent
    if print_checksums:
        _, release, planned, warnings = prepare(spec, base, dest)
        for w in warnings:
            typer.echo(f"warning: {w}", err=True)
        typer.echo("\n".join(checksum_lines(planned, release, spec)))
        return
    report = fetch(spec, base, dest, progress=progress)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    release = report.release
    alias = f" (alias of {release.resolved})" if release.resolved != release.requested else ""
    where = dest or spec.dest_dir(base)
    typer.echo(
        f"release {release.requested}{alias}: {len(report.fetched)} file(s) fetched "
        f"({report.bytes_downloaded} bytes), {len(report.up_to_date)} up to date -> {where}"
    )


def check_bundle_cmd(
    folder: Annotated[Path, typer.Argument(help="An Autoware package folder (<data_dir>/<package>).")],
    public_key: Annotated[
        str | None,
        typer.Option(help="The publisher's EC public key (PEM file): the carried manifest must be signed by it."),
    ] = None,
) -> None:
    """Verify a package folder that `hf download` or `modelzoo fetch --layout autoware` wrote: with
    --public-key the manifest it carries is signed by that key; every file of that manifest is there
    with its sha256 (exit 6 naming the first that is not)."""
    from pipelines.registry.layout import check_bundle
    from pipelines.registry.signing import load_verifier

    verifier = load_verifier(public_key, Path.cwd(), "--public-key") if public_key else None
    result = check_bundle(folder, verifier)
    for name in result.extra:
        typer.echo(f"warning: {folder / name}: not a file of release {result.version} (left from another?)", err=True)
    typer.echo(f"{folder}: {result.package} {result.version}: {len(result.checked)} file(s) match the manifest")
