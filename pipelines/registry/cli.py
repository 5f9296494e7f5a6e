"""The registry commands: publish, release check|diff, registry init|gc|audit|put-info|put-auto-label|ls, index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.errors import ModelzooError, UsageError
from pipelines.gitrepo import find_root
from pipelines.registry.location import DEFAULT_REGISTRY, ENDPOINT_ENV, REGISTRY_ENV, RegistryLocation
from pipelines.registry.stores.base import Store

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help=f"s3://bucket/prefix or a local folder (default: ${REGISTRY_ENV}, else {DEFAULT_REGISTRY}/ in the repo).",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint-url", help=f"S3-compatible server (default: ${ENDPOINT_ENV})."),
]

AllowOlderOpt = Annotated[
    bool,
    typer.Option(
        "--allow-older",
        help="Allow a version below the latest of its X.Y line, or a new X.Y line below the latest release.",
    ),
]

release_app = typer.Typer(help="The versioning rules: what a tag must bump, and release notes.", no_args_is_help=True)
registry_app = typer.Typer(help="Registry upkeep and dataset info files.", no_args_is_help=True)


def _writable(output: Path) -> None:
    if output.is_dir():
        raise UsageError(f"--output {output}: is a directory: name the file to write")


def open_registry(registry: str | None, endpoint_url: str | None) -> Store:
    """The store of the --registry/--endpoint-url options (or the environment, or the embedded registry)."""
    return RegistryLocation.resolve(registry, endpoint_url).store()


def publish(
    channel: Annotated[str | None, typer.Option(help="'bleedingedge': overwrite the bleeding-edge release.")] = None,
    version: Annotated[str | None, typer.Option(help="X.Y.Z or vX.Y.Z: an immutable release.")] = None,
    models: Annotated[
        list[str] | None, typer.Option("--model", help="Bleeding edge: update only these models.")
    ] = None,
    dvc_push: Annotated[
        bool, typer.Option("--dvc-push/--no-dvc-push", help="Push the DVC cache to <registry>/dvc.")
    ] = True,
    allow_older: AllowOlderOpt = False,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty", help="Bleeding edge only: publish a workspace that is not HEAD, recorded as dirty."
        ),
    ] = False,
    signing_key: Annotated[
        str | None,
        typer.Option(help="EC private key (PEM file) that signs the manifest (default: $MODELZOO_SIGNING_KEY)."),
    ] = None,
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Publish without a signature when no signing key is configured.")
    ] = False,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Upload the artifacts the registry lacks, `dvc push`, then write the release manifest (last) and its
    signature. Refuses (exit 7) a workspace whose tracked files or published outputs differ from HEAD."""
    from pipelines.registry.manifest import BLEEDING_EDGE
    from pipelines.registry.publish import publish as run_publish
    from pipelines.registry.signing import SIGNING_KEY_ENV, signer_from_env

    if (channel is None) == (version is None):
        raise UsageError("publish: give exactly one of --channel bleedingedge or --version X.Y.Z")
    if channel is not None and channel != BLEEDING_EDGE:
        raise UsageError(f"publish --channel '{channel}': the only channel is '{BLEEDING_EDGE}'")
    signer = signer_from_env(signing_key)
    if signer is None and not unsigned:
        raise UsageError(
            f"publish: no signing key: set ${SIGNING_KEY_ENV} (a PEM file or the PEM itself, see "
            "`modelzoo registry keygen`) or pass --signing-key; --unsigned publishes without a signature"
        )
    location = RegistryLocation.resolve(registry, endpoint_url)
    result = run_publish(
        find_root(),
        location.store(),
        version or BLEEDING_EDGE,
        location=location,
        push_dvc=dvc_push,
        only=models,
        allow_older=allow_older,
        signer=signer,
        allow_dirty=allow_dirty,
    )
    if result.alias_of:
        what = f"alias of {result.alias_of} (no artifacts uploaded)"
    else:
        what = (
            f"{len(result.models)} model(s), uploaded {result.uploaded_files} file(s) "
            f"({result.uploaded_bytes} bytes), reused {result.reused_files}"
        )
    state = "published" if result.written else "already published (identical): nothing to do"
    notes = ("signed" if result.signed else "UNSIGNED") + (", DIRTY workspace" if result.dirty else "")
    typer.echo(f"release {result.version}: {state}: {what} ({notes})")


def publish_hf(
    version: Annotated[str, typer.Option(help="X.Y.Z: its X.Y.0 files are tagged vX.Y (Z>0 adds no tag).")],
    hub_url: Annotated[
        str | None,
        typer.Option(
            help="Where the package repositories are (default: $MODELZOO_HF_URL, else https://huggingface.co)."
        ),
    ] = None,
    packages: Annotated[
        list[str] | None, typer.Option("--package", help="Only these Autoware packages (default: all).")
    ] = None,
    lfs_threshold: Annotated[int, typer.Option(help="Files of this many bytes or more go through git-lfs.")] = 1 << 20,
    skip_if_no_token: Annotated[
        bool, typer.Option("--skip-if-no-token", help="Without $HF_TOKEN for an https hub: say so, exit 0.")
    ] = False,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Publish a release to the Hugging Face channel: per Autoware package, a commit and a tag vX.Y (git + LFS)."""
    from pipelines.registry.huggingface import HUB_URL, TOKEN_ENV, publish_hub

    url = hub_url or os.environ.get("MODELZOO_HF_URL") or HUB_URL
    token = os.environ.get(TOKEN_ENV) or None
    if url.startswith("https://") and not token:
        if skip_if_no_token:
            typer.echo(f"publish-hf: ${TOKEN_ENV} is not configured: the Hugging Face channel ({url}) is skipped")
            return
        raise UsageError(f"publish-hf: ${TOKEN_ENV} is not set: the push to {url} needs a write token")
    result = publish_hub(
        open_registry(registry, endpoint_url),
        version,
        hub_url=url,
        token=token,
        lfs_threshold=lfs_threshold,
        only=packages,
    )
    for r in result.repos:
        typer.echo(
            f"  {r.repository} {r.tag}: {r.state} {r.commit[:12]} ({r.files} file(s), {r.lfs_files} via LFS, "
            f"{r.bytes} bytes new, {r.seconds} s)"
        )
    alias = f" (files of {result.released}: a Z>0 release adds no tag)" if result.released != result.version else ""
    typer.echo(f"release {result.version}{alias}: {len(result.repos)} repository(ies) at {result.tag}")


@release_app.command("check")
def release_check(
    tag: Annotated[str, typer.Argument(help="The tag to check: vX.Y.Z.")],
    against: Annotated[
        str | None, typer.Option(help="Compare with this release (default: the one before TAG).")
    ] = None,
    models: Annotated[list[str] | None, typer.Option("--model", help="Only these models.")] = None,
    allow_older: AllowOlderOpt = False,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """The bump the current build needs against the previous release, model by model; fails when TAG bumps less."""
    from pipelines.registry.entry import local_models
    from pipelines.registry.releases import (
        check_forward,
        check_version,
        previous_release,
        release_versions,
        require_manifest,
    )
    from pipelines.registry.versioning import LEVELS, compare, required_bump, tag_bump

    version = check_version(tag)
    store = open_registry(registry, endpoint_url)
    check_forward(release_versions(store), version, allow_older=allow_older)
    prev = check_version(against) if against else previous_release(store, version)
    if prev is None:
        typer.echo(f"{tag}: no earlier release in {store.url}: any version may be the first")
        return
    previous = require_manifest(store, prev)
    changes = compare(previous, {n: m.entry for n, m in local_models(find_root(), models).items()})
    needed = required_bump(changes)
    for c in changes:
        typer.echo(f"  {c.level}  {c.model}: {c.reason}")
    got = tag_bump(prev, version)
    typer.echo(f"{tag}: bumps {got} from {prev}; the changes need {needed}")
    if LEVELS.index(got) < LEVELS.index(needed):
        raise ModelzooError(f"{tag}: a {needed} bump from {prev} is needed, the tag bumps only {got}", exit_code=5)


@release_app.command("diff")
def release_diff(
    a: Annotated[str, typer.Argument(help="Older release (X.Y.Z or bleedingedge).")],
    b: Annotated[str, typer.Argument(help="Newer release (X.Y.Z or bleedingedge).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here.")] = None,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Release notes in Markdown: per model, changed files, fingerprints, metric and latency deltas."""
    from pipelines.fileio import write_text
    from pipelines.registry.releases import check_version, require_manifest
    from pipelines.registry.versioning import diff_markdown

    store = open_registry(registry, endpoint_url)
    ma, mb = (require_manifest(store, check_version(v, bleeding_edge=True)) for v in (a, b))
    text = diff_markdown(ma, mb)
    if output:
        _writable(output)
        write_text(output, text)
        typer.echo(f"release notes: {output}")
    else:
        typer.echo(text, nl=False)


@release_app.command("verify")
def release_verify(
    version: Annotated[str, typer.Argument(help="X.Y.Z (or vX.Y.Z) or bleedingedge.")],
    public_key: Annotated[str, typer.Option(help="The publisher's EC public key: a PEM file or the PEM itself.")],
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Check a release's signature with the public key, then re-hash every file its manifest names (exit 6)."""
    from pipelines.registry.housekeeping import verify_release
    from pipelines.registry.releases import check_version
    from pipelines.registry.signing import load_verifier

    store = open_registry(registry, endpoint_url)
    v = check_version(version, bleeding_edge=True)
    checked = verify_release(store, v, load_verifier(public_key, Path.cwd(), "--public-key"))
    for line in checked.lines:
        typer.echo(f"  {line}")
    typer.echo(f"release {v}: signature valid ({checked.signer}); {checked.files} file(s) match their sha256")


def index(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: MODELS.md at the repo root.")] = None,
    template: Annotated[Path | None, typer.Option(help="Default: MODELS.md.j2 at the repo root.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Prefix of download links (e.g. https://bucket.s3...).")] = None,
    charts: Annotated[
        str, typer.Option(help="Folder of the trend charts (SVG), relative to the output's folder.")
    ] = "docs/charts",
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Render MODELS.md and a trend chart per model from the registry's manifests (deterministic)."""
    from pipelines.fileio import write_text
    from pipelines.registry.charts import write_charts
    from pipelines.registry.history import read_history
    from pipelines.registry.index import TEMPLATE, render_markdown
    from pipelines.registry.stores.base import safe_relpath

    try:
        safe_relpath(charts.rstrip("/"))
    except ValueError as err:
        raise UsageError(f"--charts: {err}") from None
    root = find_root()
    dest = output or root / "MODELS.md"
    _writable(dest)
    history = read_history(open_registry(registry, endpoint_url))
    written = write_charts(history, dest.parent / charts)
    text = render_markdown(history, template or root / TEMPLATE, base_url, charts)
    typer.echo(f"{dest.parent / charts}: {len(written)} chart(s)")
    if dest.is_file() and dest.read_text() == text:
        typer.echo(f"{dest.name}: unchanged")
        return
    write_text(dest, text)
    typer.echo(f"{dest.name}: written")


@registry_app.command("init")
def registry_init(registry: RegistryOpt = None, endpoint_url: EndpointOpt = None) -> None:
    """Create a local registry, or apply the S3 lifecycle rule that aborts incomplete multipart uploads."""
    from pipelines.registry.housekeeping import init_registry

    typer.echo(init_registry(open_registry(registry, endpoint_url)))


@registry_app.command("gc")
def registry_gc(
    keep: Annotated[list[str], typer.Option("--keep", help="A release to keep (repeatable); bleeding edge is kept.")],
    delete: Annotated[bool, typer.Option("--delete", help="Delete (default: dry run, list only).")] = False,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Delete artifacts no kept release (nor the bleeding edge) names. Dry run unless --delete."""
    from pipelines.registry.housekeeping import plan_gc, run_gc

    store = open_registry(registry, endpoint_url)
    plan = plan_gc(store, keep)
    for obj in plan.delete:
        typer.echo(f"  {'delete' if delete else 'would delete'} {obj.key} ({obj.size} bytes)")
    for version in plan.dropped_releases:
        typer.echo(f"  {'drop' if delete else 'would drop'} release {version} (its files go)")
    if delete:
        run_gc(store, plan)
    verb = "deleted" if delete else "dry run: would delete"
    typer.echo(
        f"gc: kept {', '.join(plan.kept)}; {verb} {len(plan.delete)} object(s), {plan.bytes} bytes, "
        f"{len(plan.dropped_releases)} release(s)"
    )


@registry_app.command("audit")
def registry_audit(
    public_key: Annotated[
        str | None, typer.Option(help="Also verify each release's signature with this EC public key (PEM).")
    ] = None,
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Re-hash every object a manifest names and list unsigned releases; exit 6 naming each missing or
    corrupted object (and, with --public-key, each unsigned or badly signed release)."""
    from pipelines.registry.housekeeping import audit, audit_signatures
    from pipelines.registry.signing import load_verifier

    store = open_registry(registry, endpoint_url)
    checked, problems = audit(store)
    verifier = load_verifier(public_key, Path.cwd(), "--public-key") if public_key else None
    signatures = audit_signatures(store, verifier)
    for p in problems:
        typer.echo(f"  {p.key}: {p.problem} (in {', '.join(p.releases)})")
    for version, problem in signatures.items():
        typer.echo(f"  release {version}: {problem}")
    bad_signatures = len(signatures) if verifier is not None else 0
    if problems or bad_signatures:
        raise ModelzooError(
            f"audit of {store.url}: {len(problems)} of {checked} object(s) missing or corrupted, "
            f"{bad_signatures} release(s) unsigned or badly signed",
            6,
        )
    unsigned = f"; {len(signatures)} release(s) unsigned" if signatures else ""
    typer.echo(f"audit of {store.url}: {checked} object(s) intact{unsigned}")


@registry_app.command("keygen")
def registry_keygen(
    private: Annotated[Path, typer.Argument(help="Where the private key goes (a CI secret; never commit it).")],
    public: Annotated[Path, typer.Argument(help="Where the public key goes (consumers pin it).")],
) -> None:
    """A new EC P-256 key pair for signing releases (written once: an existing file is not overwritten)."""
    from pipelines.registry.signing import generate_keypair

    generate_keypair(private, public)
    typer.echo(f"private key: {private} (mode 0600); public key: {public}")


@registry_app.command("put-info")
def registry_put_info(
    version: Annotated[str, typer.Argument(help="Version of the info files (vX.Y.Z).")],
    info_set: Annotated[str, typer.Argument(metavar="SET", help="pretrain, base, product, or a project set.")],
    files: Annotated[list[Path], typer.Argument(help="info_train.pkl, info_val.pkl, info_test.pkl")],
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Upload dataset info files to info/{version}/{set}/ (written once)."""
    from pipelines.registry.housekeeping import put_info

    for key, state in put_info(open_registry(registry, endpoint_url), version, info_set, files):
        typer.echo(f"  {state}: {key}")


@registry_app.command("put-auto-label")
def registry_put_auto_label(
    day: Annotated[str, typer.Argument(help="YYYYMMDD.")],
    dataset: Annotated[str, typer.Argument(help="Dataset name, e.g. xx1.")],
    files: Annotated[list[Path], typer.Argument(help="Pseudo-label info files, logs.")],
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Upload auto-labelling files to auto_label/{day}_{dataset}/ (written once)."""
    from pipelines.registry.housekeeping import put_auto_label

    for key, state in put_auto_label(open_registry(registry, endpoint_url), day, dataset, files):
        typer.echo(f"  {state}: {key}")


@registry_app.command("ls")
def registry_ls(
    prefix: Annotated[str, typer.Argument(help="models/, releases/, info/, auto_label/, or a deeper prefix.")] = "",
    registry: RegistryOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """List objects under a prefix (key and size); with no prefix, the releases."""
    from pipelines.registry.releases import read_manifest, release_versions

    store = open_registry(registry, endpoint_url)
    if not prefix:
        from pipelines.registry.manifest import BLEEDING_EDGE

        for v in [*release_versions(store), BLEEDING_EDGE]:
            m = read_manifest(store, v)
            if m is not None:
                alias = f" -> {m.alias_of}" if m.alias_of else ""
                typer.echo(f"{v}{alias}  {len(m.models)} model(s)  {m.git_commit[:12]}")
        return
    count = 0
    for obj in store.list(prefix):
        typer.echo(f"{obj.size:>12}  {obj.key}")
        count += 1
    if not count:
        typer.echo(f"(nothing under {store.url}/{prefix})")


def register(app: typer.Typer) -> None:
    """Add the registry commands to the `modelzoo` app."""
    app.command("publish")(publish)
    app.command("publish-hf")(publish_hf)
    app.command("index")(index)
    app.add_typer(release_app, name="release")
    app.add_typer(registry_app, name="registry")
