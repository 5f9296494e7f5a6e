"""The documentation stays true: in README.md, docs/ and the model cards (models/<name>/README.md),
every relative link, every repository path in backticks and every `modelzoo ...` command (and its
`--flags`) exists; the README stays a short front door with a line per package folder."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_LINES = 150
# A word in backticks with one of these endings (or a `/`) is taken for a path.
PATH_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".json", ".toml", ".lock", ".txt", ".csv", ".j2", ".svg", ".cfg")
# Placeholders and globs (`models/<name>/`, `info_{train,val}.pkl`, `docs/charts/*.svg`) name no one path.
PLACEHOLDER = re.compile(r"[<>{}*$~]|\.\.\.|://")
FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.M)
# `modelzoo` as a command: at a line or span start, after a shell separator, or as .venv/bin/modelzoo.
COMMAND = re.compile(r"(?:^|(?<=[\s(;&|]))(?:\.venv/bin/)?modelzoo[ \t]+([^\n]*)", re.M)
COMMAND_END = re.compile(r"\s#|\||&&|;|\)|\s>|`")


def doc_files() -> list[Path]:
    return [README, *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "models").glob("*/README.md"))]


def split_markdown(text: str) -> tuple[list[str], str]:
    """The fenced code blocks and the text outside them."""
    blocks = [m.group(2) for m in FENCE.finditer(text)]
    return blocks, FENCE.sub("", text)


def code_spans(prose: str) -> list[str]:
    return [m.group(2).strip() for m in SPAN.finditer(prose)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(split_markdown(text)[1]):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


@cache
def dvc_outputs() -> frozenset[str]:
    """DVC's outputs in dvc.lock: a fresh clone has them only after `dvc pull` or `dvc repro`."""
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    return frozenset(out["path"].rstrip("/") for stage in lock["stages"].values() for out in stage.get("outs", []))


@cache
def known_paths() -> frozenset[str]:
    """Files git tracks (or would: untracked, not ignored), DVC's outputs, and the folders of both."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    paths = {p for p in listed.split("\0") if p and (REPO / p).exists()} | dvc_outputs()
    folders = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    return frozenset(paths | folders)


def path_exists(path: str) -> bool:
    """Known, or inside a DVC output folder (artifacts/yolox/reference/checkpoint.pth)."""
    parts = path.split("/")
    return path in known_paths() or any("/".join(parts[:i]) in dvc_outputs() for i in range(1, len(parts)))


def repo_paths(span: str) -> Iterator[str]:
    """Words of a code span that name a path of this repository (they start with one of its top folders)."""
    top = {p.split("/")[0] for p in known_paths()}
    for word in span.split():
        word = word.strip("()[],;'\"").rstrip(".:")
        word = re.sub(r"(\.[a-z0-9]+):\w+$", r"\1", word)  # net.py:build, module.py:function
        if not word or PLACEHOLDER.search(word) or not ("/" in word or word.endswith(PATH_SUFFIXES)):
            continue
        if word.split("/")[0] in top:
            yield word.rstrip("/")


@cache
def cli() -> Any:
    """The `modelzoo` command tree as Typer builds it (a group has `.commands`, every command `.params`)."""
    from pipelines.cli import app

    return typer.main.get_command(app)


def check_command(line: str) -> str | None:
    """None if `modelzoo <line>` names a real (sub)command and only its options, else what is wrong."""
    words = COMMAND_END.split(line, maxsplit=1)[0].split()
    command = cli()
    name = "modelzoo"
    rest: list[str] = []
    for i, word in enumerate(words):
        if hasattr(command, "commands") and not word.startswith("-"):
            if word in command.commands:
                command, name = command.commands[word], f"{name} {word}"
                continue
            if word[0] in "<[." or word.isupper():  # modelzoo <stage> <model>: a placeholder
                return None
            return f"`{name} {word}`: no such command (known: {', '.join(sorted(command.commands))})"
        rest = words[i:]
        break
    options = {"--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for word in rest:
        flag = word.strip("[],").split("=")[0]
        if re.match(r"--?[a-z]", flag) and flag not in options:
            return f"`{name}` has no option {flag} (options: {', '.join(sorted(options))})"
    return None


def problems(text: str, where: Path) -> list[str]:
    """Everything a markdown file at `where` names that does not exist."""
    found: list[str] = []
    blocks, prose = split_markdown(text)
    rel = where.relative_to(REPO) if where.is_relative_to(REPO) else where
    for target in LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (where.parent / file_part).resolve() if file_part else where
        if not dest.is_relative_to(REPO) or not path_exists(dest.relative_to(REPO).as_posix()):
            found.append(f"{rel}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            found.append(f"{rel}: link to {target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    spans = code_spans(prose)
    for span in spans:
        found += [f"{rel}: `{p}`: no such path in the repository" for p in repo_paths(span) if not path_exists(p)]
    code = [re.sub(r"\\\n\s*", " ", block) for block in blocks] + spans
    for chunk in code:
        for line in COMMAND.findall(chunk):
            if (wrong := check_command(line)) is not None:
                found.append(f"{rel}: {wrong}")
    return found


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_paths_and_commands_exist(doc: Path) -> None:
    assert problems(doc.read_text(), doc) == []


def test_readme_is_a_short_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail into docs/"


def test_readme_maps_every_package_folder() -> None:
    text = README.read_text()
    folders = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/__init__.py"))
    assert folders, "no package folders found under pipelines/"
    missing = [f"pipelines/{f}/" for f in folders if f"`pipelines/{f}/`" not in text]
    assert missing == [], f"README.md's code map has no line for {missing}"
    assert "`pipelines/cli.py`" in text


def test_every_model_has_a_card_linked_from_readme() -> None:
    models = yaml.safe_load((REPO / "params.yaml").read_text())["models"]
    text = README.read_text()
    for name in models:
        assert (REPO / "models" / name / "README.md").is_file(), f"models/{name}/README.md: no model card"
        assert f"(models/{name}/README.md)" in text, f"README.md does not link models/{name}/README.md"


def test_readme_commands_are_what_ci_runs() -> None:
    """The two set-up commands of the README are the ones CI runs (.ci/run) and the ones it promises."""
    text = README.read_text()
    assert "scripts/setup && .venv/bin/modelzoo repro" in text
    assert "scripts/setup && .venv/bin/python -m pytest" in text
    assert "scripts/setup && .venv/bin/python -m pytest" in (REPO / ".ci" / "run").read_text()


def test_the_checks_can_fail(tmp_path: Path) -> None:
    where = REPO / "docs" / "synthetic.md"
    bad = """# Title

See [the guide](guide-that-is-not-here.md), [a heading](../README.md#no-such-heading),
`pipelines/no_such_module.py` and `tests/data/nowhere/`.

```sh
modelzoo publish --channel bleedingedge --no-such-flag
modelzoo registry lss
modelzoo frobnicate yolox
modelzoo release diff 1.2.0 1.3.0 -x notes.md
```
"""
    found = problems(bad, where)
    assert any("guide-that-is-not-here.md: no such file" in p for p in found), found
    assert any("no heading #no-such-heading" in p for p in found), found
    assert any("`pipelines/no_such_module.py`: no such path" in p for p in found), found
    assert any("`tests/data/nowhere`: no such path" in p for p in found), found
    assert any("`modelzoo publish` has no option --no-such-flag" in p for p in found), found
    assert any("`modelzoo registry lss`: no such command" in p for p in found), found
    assert any("`modelzoo frobnicate`: no such command" in p for p in found), found
    assert any("`modelzoo release diff` has no option -x" in p for p in found), found
    assert len(found) == 8, found
    good = """# Title

[README](../README.md), `pipelines/cli.py`, `models/<name>/model.yaml`, `s3://bucket/prefix`, `net.py:build`,
`artifacts/yolox/reference/checkpoint.pth` (a DVC output), producer `modelzoo`.

```sh
modelzoo fetch --pin modelzoo.yaml \\
    --dest DIR   # a comment --not-a-flag
modelzoo registry ls releases/
modelzoo release diff 1.2.0 1.3.0 -o notes.md
.venv/bin/modelzoo repro
modelzoo <stage> <model>
```
"""
    assert problems(good, where) == []
