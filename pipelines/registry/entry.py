"""A model's release entry, built from its local artifacts (export, build, verify, evaluate outputs).

Files and their registry paths (`artifact_version` = `{model_version}-{fingerprint[:12]}`):
    onnx/{component}.onnx, onnx/{precision}/{component}.onnx    portable ONNX (target "onnx")
    {env key}/{precision}/{file}                                 built artifacts (target = environment key)
    ros/{stem}.param.yaml                                        ROS parameter files (target "ros")
    provenance/...                                               checkpoint, model folder, training config/log
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.buildenv import BUILD_ENVIRONMENT
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.fileio import sha256_stream
from pipelines.registry.fingerprint import fingerprint, onnx_io_names
from pipelines.registry.manifest import (
    AutowarePackage,
    ComponentSig,
    FileEntry,
    ModelEntry,
    TensorSig,
    artifact_prefix,
)
from pipelines.workspace import ModelContext, load_params, model_context
from pipelines.yamlio import load_yaml

ONNX_TARGET, ROS_TARGET, PROVENANCE_TARGET = "onnx", "ros", "provenance"


@dataclass
class LocalFile:
    """One file to publish: where it is here, and the entry it gets (sha256/size filled by hashing)."""

    local: Path
    relpath: str  # below models/{algorithm}/{model}/{artifact_version}/
    name: str
    target: str
    precision: str | None = None


@dataclass
class LocalModel:
    """A model as built here: its entry (files hashed, paths under its artifact version) and local files."""

    entry: ModelEntry
    local: dict[str, Path] = field(default_factory=dict)  # registry path -> local file

    @property
    def size(self) -> int:
        return sum(f.size for f in self.entry.files)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelzooError(f"{path}: missing: run `dvc repro` ({what}) before publishing") from None
    except (OSError, ValueError) as err:
        raise ModelzooError(f"{path}: cannot read {what}: {err}".splitlines()[0]) from None


def _flatten(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [k for key, v in value.items() for k in _flatten(f"{prefix}.{key}" if prefix else str(key), v)]
    return [prefix]


def ros_param_keys(path: Path) -> list[str]:
    """The parameter keys of a ROS 2 parameter file (`<node>: ros__parameters: {...}`), dotted, sorted."""
    data = load_yaml(path, error=ModelzooError)
    if not isinstance(data, dict):
        raise ModelzooError(f"{path}: expected '<node>: ros__parameters: ...'")
    keys: set[str] = set()
    for node, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), dict):
            raise ModelzooError(f"{path}: {node}: expected a ros__parameters mapping")
        keys.update(_flatten("", body["ros__parameters"]))
    return sorted(keys)


def io_signature(ctx: ModelContext) -> dict[str, ComponentSig]:
    def sig(specs: Any) -> list[TensorSig]:
        return [TensorSig(name=t.name, dtype=t.dtype, shape=list(t.shape)) for t in specs]

    return {c.name: ComponentSig(inputs=sig(c.inputs), outputs=sig(c.outputs)) for c in ctx.descriptor.components}


def _provenance_files(ctx: ModelContext) -> list[LocalFile]:
    desc = ctx.descriptor
    seen: set[Path] = set()
    out: list[LocalFile] = []

    def add(path: Path, rel: str) -> None:
        path = path.resolve()
        if path in seen:
            return
        if not path.is_relative_to(ctx.root.resolve()):
            raise DescriptorError(
                f"{ctx.rel(path)}: outside the repository: provenance files are not published from there"
            )
        if not path.is_file():
            raise ModelzooError(f"models/{ctx.name}/model.yaml: provenance file {path} does not exist")
        seen.add(path)
        out.append(LocalFile(path, f"{PROVENANCE_TARGET}/{rel}", f"{PROVENANCE_TARGET}/{rel}", PROVENANCE_TARGET))

    add(ctx.checkpoint, f"checkpoint/{ctx.checkpoint.name}")
    for path in sorted(ctx.dir.rglob("*")):
        rel = path.relative_to(ctx.dir)
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            add(path, f"model/{rel.as_posix()}")
    for extra in (desc.provenance.training_config, desc.provenance.training_log):
        if extra:
            add(ctx.root / extra, f"training/{Path(extra).name}")
    if (environment := ctx.build_dir / BUILD_ENVIRONMENT).is_file():  # builds before it existed have none
        add(environment, "build/environment.json")
    return out


def _artifact_files(ctx: ModelContext, build: dict[str, Any]) -> tuple[list[LocalFile], dict[str, Any]]:
    """ONNX, precision variants, built files, ROS params; and per built target its environment."""
    files: list[LocalFile] = []
    if not ctx.onnx_dir.is_dir():
        raise ModelzooError(f"{ctx.onnx_dir}: missing: run `dvc repro export@{ctx.name}` before publishing")
    for comp in ctx.descriptor.components:
        path = ctx.onnx_path(comp.name)
        if not path.is_file():
            raise ModelzooError(f"{path}: missing: run `dvc repro export@{ctx.name}` before publishing")
    for path in sorted(ctx.onnx_dir.iterdir()):
        if path.name.endswith(".param.yaml"):
            files.append(LocalFile(path, f"{ROS_TARGET}/{path.name}", path.name, ROS_TARGET))
        elif path.is_file() and path.name != "export.json" and not path.name.startswith("."):
            # The ONNX files and any external-data files beside them.
            files.append(LocalFile(path, f"{ONNX_TARGET}/{path.name}", path.name, ONNX_TARGET, "fp32"))
    for precision in sorted(build.get("precisions", {})):
        if precision == "fp32":
            continue
        for comp in ctx.descriptor.components:
            path = ctx.onnx_path(comp.name, precision)
            if not path.is_file():
                raise ModelzooError(f"{path}: missing, though {ctx.build_dir}/build.json lists {precision}")
            rel = f"{precision}/{path.name}"
            files.append(LocalFile(path, f"{ONNX_TARGET}/{rel}", rel, ONNX_TARGET, precision))
    environments: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    for target, info in sorted(build.get("targets", {}).items()):
        env = info.get("environment") or {}
        if info.get("skipped") is not None or not env.get("available"):
            skipped[target] = str(info.get("skipped") or env.get("reason") or "unavailable")
            continue
        # A target builds one folder per environment (TensorRT-RTX: one per compute capability).
        folders = info.get("environments") or {env["key"]: env.get("details") or {}}
        for key, details in folders.items():
            environments[key] = {k: str(v) for k, v in sorted(details.items())}
        for variant, built in sorted(info.get("built", {}).items()):
            key = built.get("environment_key", env["key"])
            precision = built.get("precision") or variant.split("/", 1)[0]
            path = ctx.build_dir / built["file"]
            if not path.is_file():
                raise ModelzooError(f"{path}: missing, though {ctx.build_dir}/build.json lists it")
            name = path.name if precision == "fp32" else f"{precision}/{path.name}"
            files.append(LocalFile(path, f"{key}/{precision}/{path.name}", name, key, precision))
    return files, {"environments": environments, "skipped": skipped}


@dataclass(frozen=True)
class Measured:
    headline: str
    metrics: dict[str, float]  # headline per endpoint
    latency_ms: dict[str, float]  # mean end-to-end latency per endpoint
    details: dict[str, dict[str, float]]  # every scalar metric per endpoint


def _metrics(ctx: ModelContext) -> Measured:
    data = _read_json(ctx.metrics, "evaluate")
    headline = str(data.get("headline") or ctx.descriptor.evaluation.headline)
    metrics: dict[str, float] = {}
    latency: dict[str, float] = {}
    details: dict[str, dict[str, float]] = {}
    for key, m in sorted((data.get("backends") or {}).items()):
        if isinstance(m.get(headline), int | float):
            metrics[key] = float(m[headline])
        total = (m.get("latency_ms") or {}).get("total") or {}
        if isinstance(total.get("mean"), int | float):
            latency[key] = float(total["mean"])
        scalars = {k: float(v) for k, v in sorted(m.items()) if isinstance(v, int | float) and not isinstance(v, bool)}
        if scalars:
            details[key] = scalars
    return Measured(headline, metrics, latency, details)


def check_verified(ctx: ModelContext) -> None:
    report = _read_json(ctx.verify_report, "verify")
    if report.get("status") != "pass":
        failed = [k for k, s in (report.get("scenarios") or {}).items() if s.get("status") == "fail"]
        raise ModelzooError(
            f"{ctx.verify_report}: status '{report.get('status')}'"
            + (f" ({', '.join(failed)} failed)" if failed else "")
            + f": model '{ctx.name}' cannot be published"
        )


def check_onnx_signature(ctx: ModelContext) -> None:
    """The exported ONNX files have the inputs and outputs the descriptor names (the manifest's I/O
    signature comes from the descriptor): a rename since the last export is refused, not published."""
    for i, comp in enumerate(ctx.descriptor.components):
        path = ctx.onnx_path(comp.name)
        ins, outs = onnx_io_names(path)
        for side, want, got in (
            ("inputs", [t.name for t in comp.inputs], ins),
            ("outputs", [t.name for t in comp.outputs], outs),
        ):
            if sorted(want) != sorted(got):
                raise DescriptorError(
                    f"models/{ctx.name}/model.yaml: components.{i}.{side}: {sorted(want)}, but {ctx.rel(path)} has "
                    f"{sorted(got)}: run `modelzoo repro {ctx.name}` before publishing"
                )


def build_options(ctx: ModelContext, environments: dict[str, Any]) -> dict[str, Any]:
    """What the build did besides the ONNX graphs: the descriptor's build section and the environments built in."""
    return {**ctx.descriptor.build.model_dump(mode="json"), "target_environments": sorted(environments)}


def local_model(ctx: ModelContext) -> LocalModel:
    """The release entry of one model from its local artifacts; refuses a model whose verification did not pass."""
    check_verified(ctx)
    desc = ctx.descriptor
    build = _read_json(ctx.build_dir / "build.json", "build")
    files, envs = _artifact_files(ctx, build)
    check_onnx_signature(ctx)
    options = build_options(ctx, envs["environments"])
    onnx_files = [(f.relpath, f.local) for f in files if f.target == ONNX_TARGET and f.local.suffix == ".onnx"]
    fp = fingerprint(onnx_files, options)
    version = f"{desc.version}-{fp[:12]}"
    files += _provenance_files(ctx)
    measured = _metrics(ctx)
    ros_keys = {f.local.name.removesuffix(".param.yaml"): ros_param_keys(f.local) for f in files if f.target == "ros"}

    top = ctx.root.resolve()
    for f in files:
        if not f.local.resolve().is_relative_to(top):
            raise DescriptorError(
                f"{ctx.rel(f.local)}: resolves to {f.local.resolve()}, outside the repository: not published"
            )
    entries: list[FileEntry] = []
    local: dict[str, Path] = {}
    base = artifact_prefix(desc.algorithm, desc.name, version, "").rstrip("/")
    for f in files:
        with open(f.local, "rb") as stream:
            sha, size = sha256_stream(stream)
        path = f"{base}/{f.relpath}"
        entries.append(FileEntry(path=path, name=f.name, target=f.target, precision=f.precision, size=size, sha256=sha))  # type: ignore[arg-type]
        local[path] = f.local
    entry = ModelEntry(
        name=desc.name,
        algorithm=desc.algorithm,
        task=desc.task,
        model_version=desc.version,
        artifact_version=version,
        fingerprint=fp,
        build_options=options,
        io_signature=io_signature(ctx),
        ros_param_keys=ros_keys,
        environments=envs["environments"],
        skipped_targets=envs["skipped"],
        files=sorted(entries, key=lambda e: e.path),
        headline=measured.headline,
        metrics=measured.metrics,
        latency_ms=measured.latency_ms,
        metric_details=measured.details,
        autoware=AutowarePackage(package=desc.autoware.package, repository=desc.autoware.repo_id)
        if desc.autoware
        else None,
    )
    return LocalModel(entry, local)


def published_models(root: Path, only: list[str] | None = None) -> list[str]:
    """The models a release holds: every model wired in params.yaml (or the named ones)."""
    names = sorted(load_params(root)["models"])
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ModelzooError(
                f"params.yaml: models: no model {', '.join(map(repr, unknown))} (has: {', '.join(names)})"
            )
        names = sorted(set(only))
    return names


def local_models(root: Path, only: list[str] | None = None) -> dict[str, LocalModel]:
    return {name: local_model(model_context(root, name)) for name in published_models(root, only)}
