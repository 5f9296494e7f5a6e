"""Autoware's data folder layout: what a release places in `<data_dir>/<package>/`, and its check.

Autoware's launch files read a package's files flat from `<data_dir>/<package>/<file>` (e.g.
`$(var data_path)/lidar_centerpoint/<model_name>_ml_package.param.yaml`), and its ansible `artifacts`
role fills that folder with `hf download AutowareFoundation/<package> --revision vX.Y --local-dir
<data_dir>/<package>`. The same folder is what `modelzoo fetch --layout autoware` writes and what the
Hugging Face channel commits to the package's repository:

- the portable files (target `onnx`, every precision unless a pin names some) and the ROS parameter
  files of every model of the release whose descriptor names that package, under the names the
  manifest gives them (the names the bundle's parameter files use: no renaming). Those are flat, but
  for the precision variants, which the manifest names `fp16/<file>`, `int8/<file>`: so the variants
  never collide with the fp32 file of the same name, and a consumer that wants one precision folder
  only pins `precisions`;
- two files of our own: `modelzoo-manifest.json` (the release manifest, byte for byte: what a
  signature covers) and `modelzoo-release.json` (which release, package, models and files).

One package folder can hold several models (tensorrt_yolox holds yolox and yolox_dynamic). Two files
with one name must then be the same bytes (a shared label file is fine); a name with two contents is
refused, naming both models (the models of one package must name their files apart).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import ModelzooError
from pipelines.fileio import sha256_file
from pipelines.registry.manifest import FileEntry, Manifest, parse_manifest
from pipelines.registry.signing import SIGNATURE_SUFFIX, Verifier

BUNDLE_RECORD = "modelzoo-release.json"
BUNDLE_MANIFEST = "modelzoo-manifest.json"
# The release manifest's signature, as the registry holds it beside the manifest (where it is signed).
BUNDLE_SIGNATURE = BUNDLE_MANIFEST + SIGNATURE_SUFFIX
# Files that are not artifacts: ours, what git / `hf download` put beside them, and the Hub's model card.
RESERVED = (BUNDLE_RECORD, BUNDLE_MANIFEST, BUNDLE_SIGNATURE, ".gitattributes", "README.md")
PORTABLE, ROS = "onnx", "ros"


class BundleError(ModelzooError):
    exit_code = 6  # integrity, as `modelzoo fetch`


@dataclass(frozen=True)
class BundleFile:
    model: str
    entry: FileEntry


def packages(manifest: Manifest) -> dict[str, list[str]]:
    """Autoware package -> the release's models it holds (models without a package are left out)."""
    out: dict[str, list[str]] = {}
    for name in sorted(manifest.models):
        aw = manifest.models[name].autoware
        if aw is not None:
            out.setdefault(aw.package, []).append(name)
    return out


def repository(manifest: Manifest, package: str) -> str:
    """The Hub repository of a package; every model of the package must name the same one."""
    repos = {m.autoware.repository for m in manifest.models.values() if m.autoware and m.autoware.package == package}
    if len(repos) != 1:
        raise ModelzooError(f"release {manifest.version}: package '{package}' maps to repositories {sorted(repos)}")
    return repos.pop()


def bundle_files(
    manifest: Manifest, package: str, precisions: Sequence[str] | None = None, models: list[str] | None = None
) -> dict[str, BundleFile]:
    """File name -> (model, manifest entry) of one package's folder."""
    names = [m for m in packages(manifest).get(package, []) if models is None or m in models]
    if not names:
        raise ModelzooError(f"release {manifest.version}: no model of Autoware package '{package}'")
    out: dict[str, BundleFile] = {}
    for name in names:
        for f in manifest.models[name].files:
            if f.target not in (PORTABLE, ROS) or (precisions is not None and f.precision not in (None, *precisions)):
                continue
            if f.name in RESERVED or f.name.split("/")[0] in (".git", ".cache"):
                raise ModelzooError(f"release {manifest.version}: model '{name}' file name '{f.name}' is reserved")
            have = out.get(f.name)
            if have is not None and have.entry.sha256 != f.sha256:
                raise ModelzooError(
                    f"release {manifest.version}: package '{package}': file '{f.name}' of models "
                    f"'{have.model}' and '{name}' differs: one folder cannot hold both"
                )
            out.setdefault(f.name, BundleFile(name, f))
    return dict(sorted(out.items()))


def bundle_record(
    manifest: Manifest, package: str, files: dict[str, BundleFile], precisions: Sequence[str] | None = None
) -> str:
    data = {
        "version": manifest.version,
        "interface_version": manifest.interface_version,
        "package": package,
        "repository": repository(manifest, package),
        "models": sorted({b.model for b in files.values()}),
        "precisions": list(precisions) if precisions is not None else None,
        "files": {n: b.entry.sha256 for n, b in files.items()},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def check_manifest_signature(folder: Path, manifest_bytes: bytes, verifier: Verifier | None) -> None:
    """With a pinned public key, the manifest the folder carries must be signed by it (its signature
    travels beside it), before any sha256 in it is trusted; a missing signature is refused too."""
    if verifier is None:
        return
    sig_path = folder / BUNDLE_SIGNATURE
    signature = sig_path.read_bytes() if sig_path.is_file() else None
    verifier.verify(manifest_bytes, signature, str(folder / BUNDLE_MANIFEST))


@dataclass
class BundleCheck:
    version: str
    package: str
    checked: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def check_bundle(folder: Path, verifier: Verifier | None = None) -> BundleCheck:
    """Verify an Autoware package folder (from `hf download` or `modelzoo fetch --layout autoware`) against
    the release manifest it carries: every file the release puts there is present with its sha256."""
    folder = Path(folder)
    mpath, rpath = folder / BUNDLE_MANIFEST, folder / BUNDLE_RECORD
    try:
        data = mpath.read_bytes()
        record = json.loads(rpath.read_text())
        package, precisions = record["package"], record.get("precisions")
    except (OSError, ValueError, KeyError, TypeError) as err:
        why = f"{type(err).__name__} reading {BUNDLE_MANIFEST} + {BUNDLE_RECORD}"
        raise BundleError(f"{folder}: not a modelzoo bundle ({why})") from None
    check_manifest_signature(folder, data, verifier)
    try:
        manifest = parse_manifest(data, str(mpath))
    except ValueError as err:
        raise BundleError(str(err)) from None
    if record.get("version") != manifest.version:
        raise BundleError(f"{rpath}: version {record.get('version')!r} is not the manifest's {manifest.version}")
    expected = bundle_files(manifest, package, precisions, record.get("models"))
    result = BundleCheck(manifest.version, package)
    for name, b in expected.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing (release {manifest.version}, model {b.model})")
        if path.stat().st_size != b.entry.size or sha256_file(path) != b.entry.sha256:
            raise BundleError(f"{path}: sha256 differs from release {manifest.version} (model {b.model})")
        result.checked.append(name)
    present = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    result.extra = sorted(
        n for n in present if n not in expected and n not in RESERVED and n.split("/")[0] not in (".cache", ".git")
    )
    return result
