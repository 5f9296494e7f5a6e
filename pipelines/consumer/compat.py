"""Interface compatibility of a release with a consumer (ModelZoo versioning, the consumer's side).

A consumer accepts a range of descriptor interface versions, e.g. ">=1.2.0,<2.0.0". Its lower bound
is the interface the consumer was written against:
- a release outside the range is a known unsupported version: an error;
- a release inside the range with a newer major.minor than the lower bound is an unknown version:
  a warning (it should work, since only X breaks the API, but nobody has checked yet).

Consumer code can call `check_interface` directly, or `check_fetched` on a folder that
`modelzoo fetch` wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import semver

from pipelines.errors import ModelzooError

# Written by `modelzoo fetch` beside each model's files: what was fetched, from which release.
RELEASE_RECORD = "modelzoo-release.json"
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


class IncompatibleRelease(ModelzooError):
    exit_code = 5  # as `modelzoo release check` on a version that does not fit


@dataclass(frozen=True)
class InterfaceRange:
    """A comma-separated list of semver comparisons, all of which must hold."""

    clauses: tuple[tuple[str, semver.Version], ...]

    @classmethod
    def parse(cls, text: str) -> InterfaceRange:
        clauses = []
        for part in text.split(","):
            m = _CLAUSE.match(part)
            if not m:
                raise ValueError(f"{part.strip()!r} is not <op>X.Y.Z (op one of >=, >, <=, <, ==, !=)")
            try:
                clauses.append((m.group(1), semver.Version.parse(m.group(2))))
            except ValueError:
                raise ValueError(f"{m.group(2)!r} is not a semantic version X.Y.Z") from None
        return cls(tuple(clauses))

    def __str__(self) -> str:
        return ",".join(f"{op}{v}" for op, v in self.clauses)

    def contains(self, version: semver.Version) -> bool:
        return all(version.match(f"{op}{v}") for op, v in self.clauses)

    @property
    def known(self) -> semver.Version | None:
        """The newest version named as a lower bound (or exactly): what the consumer was written against."""
        lows = [v for op, v in self.clauses if op in (">=", ">", "==")]
        return max(lows) if lows else None


def check_interface(interface_version: str, accepted: str, *, release: str = "the release") -> str | None:
    """Raise IncompatibleRelease if `interface_version` is outside `accepted`; return a warning if it is
    newer (major.minor) than the range's lower bound, else None."""
    try:
        version = semver.Version.parse(interface_version)
    except (ValueError, TypeError):
        raise IncompatibleRelease(f"{release}: interface version {interface_version!r} is not X.Y.Z") from None
    try:
        wanted = InterfaceRange.parse(accepted)
    except ValueError as err:
        raise ModelzooError(f"interface range {accepted!r}: {err}", exit_code=2) from None
    if not wanted.contains(version):
        raise IncompatibleRelease(
            f"{release}: interface {version} is not accepted ({wanted}): a known unsupported version"
        )
    known = wanted.known
    if known is not None and (version.major, version.minor) > (known.major, known.minor):
        return (
            f"{release}: interface {version} is newer than the {known.major}.{known.minor} this consumer "
            f"was written against ({wanted}): an unknown version, check its release notes"
        )
    return None


def check_fetched(model_dir: Path, accepted: str) -> str | None:
    """`check_interface` for a model folder written by `modelzoo fetch` (reads its release record)."""
    record_path = Path(model_dir) / RELEASE_RECORD
    try:
        record = json.loads(record_path.read_text())
        interface, version = record["interface_version"], record["version"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelzooError(f"{record_path}: not a modelzoo release record ({type(err).__name__})") from None
    return check_interface(interface, accepted, release=f"{record_path.parent.name} {version}")
