"""Property-based fuzzing of the CLI's inputs: mutations of a valid descriptor, pin file and manifest.

Whatever the mutation, the command ends with an exit code in the documented set, at most one
`error:` line, no traceback and no unhandled exception (the catch-all's MODELZOO_DEBUG hint), and
writes nothing when it fails. Bounded: few examples, in process (a few cases as subprocesses), so
the file takes well under a minute.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.registry.location import open_store
from pipelines.registry.manifest import manifest_path
from tests.cli_inprocess import Outcome, error_lines, run_cli
from tests.consumer_registry import put_release, standard_files
from tests.helpers import make_repo, modelzoo, tiny_descriptor

# validate/descriptor/usage 2, integrity 6, compatibility 5; 1 for a registry problem (not found...).
DOCUMENTED = {0, 1, 2, 5, 6}
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never fails on a new draw
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "../outside",
            "/etc/hostname",
            "~/x",
            "a" * 300,
            "fp16",
            "int8",
            "cuda:9",
            "9.9.9",
            "v1.0.0",
            "bleedingedge",
            "s3://",
            "http://[::1",
            "file:///etc",
            "\u202e",
            "boxs",
            "*",
            "x:y:z",
            "",
        ]
    ),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every value in a nested structure of dicts and lists."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield node, key
        yield from _slots(value)


def mutate_data(data: Any, draw: Any) -> Any:
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = list(_slots(data))
        if not slots:
            return draw(LEAF)
        parent, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "delete", "add", "retype"]))
        if op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(LEAF)
        elif op == "retype":
            parent[key] = [parent[key]] if not isinstance(parent[key], list) else {"x": parent[key]}
        else:
            parent[key] = draw(LEAF)
    return data


def mutate_bytes(text: bytes, draw: Any) -> bytes:
    pos = draw(st.integers(min_value=0, max_value=len(text)))
    op = draw(st.sampled_from(["truncate", "insert", "flip"]))
    if op == "truncate":
        return text[:pos]
    if op == "insert":
        extra = draw(
            st.one_of(st.binary(max_size=6), st.sampled_from([b"&a ", b"*a", b"\xff\xfe", b": :", b"\t", b"{"]))
        )
        return text[:pos] + extra + text[pos:]
    if not text:
        return text
    i = min(pos, len(text) - 1)
    return text[:i] + bytes([text[i] ^ draw(st.integers(min_value=1, max_value=255))]) + text[i + 1 :]


def mutated(data: Any, draw: Any, dump: Any) -> bytes:
    if draw(st.booleans()):
        return dump(mutate_data(data, draw))
    return mutate_bytes(dump(data), draw)


def yaml_bytes(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


def check(outcome: Outcome) -> None:
    assert outcome.code in DOCUMENTED, (outcome.code, outcome.stderr)
    assert "Traceback" not in outcome.stderr and "MODELZOO_DEBUG" not in outcome.stderr, outcome.stderr
    errors = error_lines(outcome)
    assert len(errors) == (0 if outcome.code == 0 else 1), outcome.stderr


def snapshot(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="modelzoo-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def repo(workdir: Path) -> Path:
    return make_repo(workdir / "repo", {"tiny": tiny_descriptor("tiny")}, git=False)


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_descriptor(repo: Path, data: st.DataObject) -> None:
    path = repo / "models" / "tiny" / "model.yaml"
    path.write_bytes(mutated(tiny_descriptor("tiny"), data.draw, yaml_bytes))
    before = snapshot(repo)
    check(run_cli(["validate"], repo))
    assert snapshot(repo) == before  # validate writes nothing


@pytest.fixture(scope="module")
def consumer(workdir: Path) -> Path:
    """A local registry with release 1.2.0 of two models, and a consumer folder beside it."""
    put_release(
        open_store(str(workdir / "reg")), "1.2.0", {"alpha": standard_files("alpha"), "beta": standard_files("beta")}
    )
    (workdir / "consumer").mkdir()
    return workdir


def good_pin() -> dict[str, Any]:
    return {"registry": "../reg", "version": "1.2.0", "target": "onnx", "models": ["alpha"], "dest": "out"}


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_pin_file(consumer: Path, data: st.DataObject) -> None:
    folder = consumer / "consumer"
    pin = folder / "modelzoo.yaml"
    pin.write_bytes(mutated(good_pin(), data.draw, yaml_bytes))
    shutil.rmtree(folder / "out", ignore_errors=True)
    before = snapshot(consumer)
    outcome = run_cli(["fetch", "--pin", str(pin), "--dest", str(folder / "out"), "--no-progress"], folder)
    check(outcome)
    if outcome.code != 0:
        assert snapshot(consumer) == before, outcome.stderr  # a refused fetch places nothing


@pytest.fixture(scope="module")
def good_manifest(consumer: Path) -> dict[str, Any]:
    return json.loads((consumer / "reg" / manifest_path("1.2.0")).read_bytes())  # type: ignore[no-any-return]


@settings(FUZZ)
@given(data=st.data())
def test_fuzz_manifest(consumer: Path, good_manifest: dict[str, Any], data: st.DataObject) -> None:
    key = consumer / "reg" / manifest_path("1.2.0")
    good = good_manifest
    key.write_bytes(mutated(good, data.draw, json_bytes))
    folder = consumer / "consumer"
    (folder / "modelzoo.yaml").write_bytes(yaml_bytes({**good_pin(), "models": ["alpha", "beta"]}))
    dest = folder / "out"
    shutil.rmtree(dest, ignore_errors=True)
    try:
        outcome = run_cli(
            ["fetch", "--pin", str(folder / "modelzoo.yaml"), "--dest", str(dest), "--no-progress"], folder
        )
    finally:
        key.write_bytes(json_bytes(good))
    check(outcome)
    if outcome.code != 0:
        assert not dest.exists(), outcome.stderr


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00n\x00a\x00m\x00e",  # UTF-16
        b"a: &x [1, 2]\nb: [*x, *x]\n",
        b"name: tiny\nname: other\n",
    ],
)
def test_fuzz_cases_as_subprocess(tmp_path: Path, content: bytes) -> None:
    """The same properties end to end, through the installed `modelzoo` script."""
    repo = make_repo(tmp_path / "repo", {"tiny": tiny_descriptor("tiny")}, git=False)
    (repo / "models" / "tiny" / "model.yaml").write_bytes(content)
    proc = modelzoo(["validate"], repo, check=False)
    check(Outcome(proc.returncode, proc.stdout, proc.stderr))
    assert proc.returncode == 2
