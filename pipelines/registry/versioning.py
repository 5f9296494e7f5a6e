"""The ModelZoo versioning rules, model by model, and release notes between two releases.

X (API): a model removed or renamed, an I/O signature or ROS parameter key set changed, the
    descriptor/manifest interface changed.
Y (behaviour): a fingerprint (ONNX graph + weights + build options) changed, a build option or the
    set of built targets changed, a model added.
Z (convenience): nothing a consumer sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import semver

from pipelines.errors import ModelzooError
from pipelines.registry.manifest import Manifest, ModelEntry
from pipelines.version import DESCRIPTOR_INTERFACE_VERSION

LEVELS = ("Z", "Y", "X")
WHOLE_RELEASE = "(release)"


@dataclass(frozen=True)
class Change:
    model: str
    level: str  # "X", "Y" or "Z"
    reason: str


def _major(version: str) -> int:
    return semver.Version.parse(version).major if semver.Version.is_valid(version) else -1


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def compare_model(old: ModelEntry, new: ModelEntry) -> list[Change]:
    name = new.name
    changes: list[Change] = []
    if old.io_signature != new.io_signature:
        comps = _changed_keys(old.io_signature, new.io_signature)
        changes.append(Change(name, "X", f"I/O signature changed ({', '.join(comps)})"))
    if old.ros_param_keys != new.ros_param_keys:
        diffs = []
        for stem in sorted(set(old.ros_param_keys) | set(new.ros_param_keys)):
            a, b = set(old.ros_param_keys.get(stem, [])), set(new.ros_param_keys.get(stem, []))
            added, removed = sorted(b - a), sorted(a - b)
            if stem not in old.ros_param_keys or stem not in new.ros_param_keys:
                diffs.append(f"{stem}.param.yaml {'added' if stem in new.ros_param_keys else 'removed'}")
            elif added or removed:
                diffs.append(f"{stem}: " + ", ".join([*(f"+{k}" for k in added), *(f"-{k}" for k in removed)]))
        changes.append(Change(name, "X", f"ROS parameter keys changed ({'; '.join(diffs)})"))
    if old.build_options != new.build_options:
        keys = _changed_keys(old.build_options, new.build_options)
        changes.append(Change(name, "Y", f"build options changed ({', '.join(keys)})"))
    if old.fingerprint != new.fingerprint:
        changes.append(
            Change(
                name, "Y", f"fingerprint changed ({old.fingerprint[:12]} -> {new.fingerprint[:12]}): artifacts differ"
            )
        )
    if old.autoware != new.autoware:
        # Where Autoware reads the files (and which Hub repository): a new package adds, a moved one breaks.
        was, now = (x.repository if x else "none" for x in (old.autoware, new.autoware))
        level = "Y" if old.autoware is None else "X"
        changes.append(Change(name, level, f"Autoware package changed ({was} -> {now})"))
    if old.targets != new.targets:
        changes.append(Change(name, "Y", f"targets changed ({', '.join(old.targets)} -> {', '.join(new.targets)})"))
    if not changes:
        changes.append(Change(name, "Z", "unchanged"))
    return changes


def compare(
    previous: Manifest, current: dict[str, ModelEntry], interface_version: str = DESCRIPTOR_INTERFACE_VERSION
) -> list[Change]:
    """Every change from `previous` to `current`, with the bump it needs."""
    changes: list[Change] = []
    if _major(previous.interface_version) != _major(interface_version):
        changes.append(
            Change(
                WHOLE_RELEASE,
                "X",
                f"descriptor interface {previous.interface_version} -> {interface_version}",
            )
        )
    for name in sorted(set(previous.models) | set(current)):
        if name not in current:
            changes.append(Change(name, "X", "model removed or renamed"))
        elif name not in previous.models:
            changes.append(Change(name, "Y", "model added"))
        else:
            changes.extend(compare_model(previous.models[name], current[name]))
    return changes


def required_bump(changes: list[Change]) -> str:
    return max((c.level for c in changes), key=LEVELS.index, default="Z")


def tag_bump(previous: str, tag: str) -> str:
    """The bump from release `previous` to `tag` (both X.Y.Z); a tag not above it is an error."""
    a, b = semver.Version.parse(previous), semver.Version.parse(tag)
    if b <= a:
        raise ModelzooError(f"version {tag}: not above the previous release {previous}", exit_code=2)
    if b.major != a.major:
        if b.minor or b.patch:
            raise ModelzooError(f"version {tag}: a major bump from {previous} must be {b.major}.0.0", exit_code=2)
        return "X"
    if b.minor != a.minor:
        if b.patch:
            raise ModelzooError(
                f"version {tag}: a minor bump from {previous} must be {b.major}.{b.minor}.0", exit_code=2
            )
        return "Y"
    return "Z"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    return f" ({'+' if d >= 0 else ''}{d:.4g})"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.2f} MiB"


@dataclass(frozen=True)
class FileChange:
    target: str
    name: str
    state: str  # "added", "removed" or "changed"
    sha256_before: str | None
    sha256_after: str | None
    size_after: int | None


@dataclass(frozen=True)
class EndpointDelta:
    endpoint: str
    metric_before: float | None
    metric_after: float | None
    latency_before: float | None
    latency_after: float | None


@dataclass(frozen=True)
class ModelDiff:
    name: str
    changes: list[Change]
    artifact_before: str | None
    artifact_after: str | None
    files: list[FileChange]  # files whose bytes differ (unchanged ones are left out)
    headline: str
    endpoints: list[EndpointDelta]


@dataclass(frozen=True)
class ReleaseDiff:
    before: str
    after: str
    bump: str
    release_changes: list[Change]  # changes of the release as a whole (interface)
    models: list[ModelDiff]


def diff_releases(a: Manifest, b: Manifest) -> ReleaseDiff:
    """What changed from release `a` to `b`, model by model: bump, files, fingerprints, metrics, latency."""
    changes = compare(a, b.models, b.interface_version)
    models = []
    for name in sorted(set(a.models) | set(b.models)):
        old, new = a.models.get(name), b.models.get(name)
        old_files = {f.name + "@" + f.target: f for f in (old.files if old else [])}
        new_files = {f.name + "@" + f.target: f for f in (new.files if new else [])}
        files = []
        for key in sorted(set(old_files) | set(new_files)):
            fo, fn = old_files.get(key), new_files.get(key)
            if fo and fn and fo.sha256 == fn.sha256:
                continue
            f = fn or fo
            assert f is not None
            state = "added" if fo is None else "removed" if fn is None else "changed"
            files.append(
                FileChange(
                    f.target,
                    f.name,
                    state,
                    fo.sha256 if fo else None,
                    fn.sha256 if fn else None,
                    fn.size if fn else None,
                )
            )
        endpoints = sorted(
            set(old.metrics if old else {})
            | set(new.metrics if new else {})
            | set(old.latency_ms if old else {})
            | set(new.latency_ms if new else {})
        )
        models.append(
            ModelDiff(
                name=name,
                changes=[c for c in changes if c.model == name],
                artifact_before=old.artifact_version if old else None,
                artifact_after=new.artifact_version if new else None,
                files=files,
                headline=(new.headline if new else old.headline if old else "") or "headline",
                endpoints=[
                    EndpointDelta(
                        ep,
                        old.metrics.get(ep) if old else None,
                        new.metrics.get(ep) if new else None,
                        old.latency_ms.get(ep) if old else None,
                        new.latency_ms.get(ep) if new else None,
                    )
                    for ep in endpoints
                ],
            )
        )
    return ReleaseDiff(
        a.version, b.version, required_bump(changes), [c for c in changes if c.model == WHOLE_RELEASE], models
    )


def diff_markdown(a: Manifest, b: Manifest) -> str:
    """Release notes from `a` to `b`, model by model: bump, files, fingerprints, metrics, latency."""
    diff = diff_releases(a, b)
    lines = [f"# Changes from {diff.before} to {diff.after}", ""]
    lines.append(f"Required bump: **{diff.bump}**.")
    lines.append("")
    for c in diff.release_changes:
        lines.append(f"- {c.level}: {c.reason}")
    for m in diff.models:
        lines.append(f"## {m.name}")
        lines.append("")
        for c in m.changes:
            lines.append(f"- **{c.level}**: {c.reason}")
        lines.append(f"- artifact version: {m.artifact_before or '-'} -> {m.artifact_after or '-'}")
        if m.files:
            lines += [
                "",
                "| target | file | change | sha256 before | sha256 after | size |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {f.target} | {f.name} | {f.state} | {f.sha256_before[:12] if f.sha256_before else '-'} | "
                f"{f.sha256_after[:12] if f.sha256_after else '-'} | "
                f"{_mib(f.size_after) if f.size_after is not None else '-'} |"
                for f in m.files
            ]
        if m.endpoints:
            lines += [
                "",
                f"| endpoint | {m.headline} before | after | latency ms before | after |",
                "|---|---|---|---|---|",
            ]
            for e in m.endpoints:
                ma, mb, la, lb = e.metric_before, e.metric_after, e.latency_before, e.latency_after
                metric = f"{_fmt(ma)} | {_fmt(mb)}{_delta(ma, mb)}"
                lines.append(f"| {e.endpoint} | {metric} | {_fmt(la)} | {_fmt(lb)}{_delta(la, lb)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
