"""Step outputs for GitHub Actions ($GITHUB_OUTPUT), also readable by the local rehearsal."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

OUTPUT_ENV = "GITHUB_OUTPUT"


def format_outputs(values: Mapping[str, str]) -> str:
    """`name=value` lines; a multi-line value uses the heredoc form with a delimiter it cannot contain."""
    lines = []
    for name, value in values.items():
        if "\n" in value:
            delim = f"EOF_{uuid.uuid4().hex}"
            lines.append(f"{name}<<{delim}\n{value}\n{delim}")
        else:
            lines.append(f"{name}={value}")
    return "".join(line + "\n" for line in lines)


def write_outputs(values: Mapping[str, str]) -> None:
    """Append to $GITHUB_OUTPUT when a runner (or the rehearsal) set it; otherwise do nothing."""
    path = os.environ.get(OUTPUT_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(format_outputs(values))


def parse_outputs(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file back (both forms), as the runner does."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1  # the delimiter
            out[name] = "\n".join(body)
        else:
            name, _, value = line.partition("=")
            out[name] = value
    return out
