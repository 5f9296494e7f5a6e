"""Release tags: `vX.Y.Z` (plain semver, no pre-release or build part), on a commit of main."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import semver

from pipelines.errors import UsageError
from pipelines.gitrepo import is_ancestor, rev_parse
from pipelines.registry.releases import VersionError, check_version


@dataclass(frozen=True)
class ReleaseTag:
    tag: str
    version: str
    commit: str

    @property
    def alias(self) -> bool:
        """Z > 0: a convenience release, published as an alias of X.Y.0 (no artifacts uploaded)."""
        return semver.Version.parse(self.version).patch > 0

    @property
    def alias_of(self) -> str:
        v = semver.Version.parse(self.version)
        return f"{v.major}.{v.minor}.0"

    def outputs(self) -> dict[str, str]:
        return {
            "version": self.version,
            "commit": self.commit,
            "alias": "true" if self.alias else "false",
            "alias_of": self.alias_of if self.alias else "",
        }


def parse_tag(tag: str) -> str:
    """The X.Y.Z of a release tag; refuses anything else with a one-line reason."""
    ref = tag.removeprefix("refs/tags/")
    try:
        if ref.startswith("v"):  # a release's version rule, and the tag's `v`
            return check_version(ref)
    except VersionError:
        pass
    raise UsageError(f"tag '{ref}': not a release tag vX.Y.Z (semver, no pre-release/build part, no leading zeros)")


def check_tag(root: Path, tag: str, main_ref: str = "origin/main") -> ReleaseTag:
    """A tag may be released when it is vX.Y.Z and its commit is on main."""
    version = parse_tag(tag)
    ref = tag.removeprefix("refs/tags/")
    commit = rev_parse(root, f"refs/tags/{ref}")
    main = rev_parse(root, main_ref)
    if not is_ancestor(root, commit, main):
        raise UsageError(f"tag '{ref}': commit {commit[:12]} is not on {main_ref}: releases are cut from main only")
    return ReleaseTag(tag=ref, version=version, commit=commit)
