"""mypy over the TensorRT modules against tensorrt-stubs: TensorRT never runs on CPU-only machines,
so a misspelled or misused TensorRT API call has to fail here, in CI, before a GPU runner sees it.

tensorrt-stubs (10.13) cannot be used as installed: it puts `tensorrt/__init__.pyi` into
site-packages without a py.typed marker, so mypy ignores it, and its generated stub has parameters
named `in` (a keyword) and one non-default parameter after defaults, so mypy cannot parse it. The
fixture copies it into a stub folder with those lines fixed and hands that folder to mypy (MYPYPATH).

The TensorRT-RTX wheel (tensorrt-rtx-cu13-bindings 1.7.1) ships no type information at all (no .pyi,
no py.typed): its stubs are generated here from the installed extension module (mypy's stubgen,
inspect mode), with the same syntax repair, and the RTX modules are checked against them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

RTX_MODULES = [
    "pipelines/runtimes/tensorrt_rtx/build.py",
    "pipelines/runtimes/tensorrt_rtx/session.py",
    "pipelines/runtimes/tensorrt_rtx/probe.py",
]
MODULES = [
    "pipelines/runtimes/tensorrt/build.py",
    "pipelines/runtimes/tensorrt/session.py",
    "pipelines/runtimes/tensorrt/probe.py",
]


# (pattern, replacement) applied to tensorrt_bindings/tensorrt.pyi: syntax errors of the stub.
STUB_FIXES = [
    (r"(\(|, )in: ", r"\1in_: "),
    (r"power: Weights = None, channel_axis: int\)", "power: Weights = None, channel_axis: int = ...)"),
]
# The same syntax errors in the stub stubgen writes for tensorrt_rtx_bindings.
RTX_STUB_FIXES = [
    (r"(\(|, )in: ", r"\1in_: "),
    (
        r"power: Weights = \.\.\., channel_axis: typing\.SupportsInt\)",
        "power: Weights = ..., channel_axis: typing.SupportsInt = ...)",
    ),
]


def prepare_stubs(dest: Path) -> Path:
    """A stub folder mypy can read: tensorrt-stubs' files with their syntax errors fixed."""
    importlib.metadata.version("tensorrt-stubs")  # not installed: fail, never pass against `Any`
    for pkg in ("tensorrt", "tensorrt_bindings"):
        spec = importlib.util.find_spec(pkg)
        assert spec and spec.submodule_search_locations, f"{pkg}: stubs not found"
        src = next(Path(p) for p in spec.submodule_search_locations if (Path(p) / "__init__.pyi").is_file())
        shutil.copytree(src, dest / pkg, ignore=shutil.ignore_patterns("*.py", "*.so", "__pycache__"))
    bindings = dest / "tensorrt_bindings" / "tensorrt.pyi"
    text = bindings.read_text()
    for pattern, replacement in STUB_FIXES:
        text = re.sub(pattern, replacement, text)
    bindings.write_text(text)
    (dest / "tensorrt_libs").mkdir()  # imported by the stub, holds only shared libraries
    (dest / "tensorrt_libs" / "__init__.pyi").write_text("")
    return dest


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_stubs(tmp_path_factory.mktemp("trt-stubs"))


@pytest.fixture(scope="module")
def rtx_stubs(stubs: Path) -> Path:
    """tensorrt-stubs plus stubs generated from the installed tensorrt_rtx_bindings."""
    importlib.metadata.version("tensorrt-rtx-cu13-bindings")  # not installed: fail, never pass against `Any`
    # `python -m mypy.stubgen` fails on a mypyc-compiled mypy ("No code object"): call its main.
    stubgen = "import sys; from mypy.stubgen import main; main(sys.argv[1:])"
    gen = [sys.executable, "-c", stubgen, "-p", "tensorrt_rtx_bindings", "--inspect-mode", "-o", str(stubs)]
    subprocess.run(gen, check=True, capture_output=True)
    generated = stubs / "tensorrt_rtx_bindings" / "tensorrt_rtx.pyi"
    text = generated.read_text()
    for pattern, replacement in RTX_STUB_FIXES:
        text = re.sub(pattern, replacement, text)
    generated.write_text(text)
    return stubs


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(paths: list[str], stubs: Path, cache: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *paths]
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(stubs), str(REPO)])}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, env=env)


def test_tensorrt_modules_type_check_against_the_stubs(stubs: Path, cache: Path) -> None:
    proc = mypy(MODULES, stubs, cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 3 source files" in proc.stdout


# (file, correct call, misused call, what mypy must name): one mypy run checks them all.
MISUSES = [
    (
        "pipelines/runtimes/tensorrt/session.py",
        "self.context.execute_async_v3(",
        "self.context.execute_async_v2(",
        "execute_async_v2",
    ),
    (
        "pipelines/runtimes/tensorrt/build.py",
        "trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED",
        "trt.NetworkDefinitionCreationFlag.STRONGLY_TYPE",
        '"STRONGLY_TYPE"',
    ),
    (
        "pipelines/runtimes/tensorrt/build.py",
        "profile.set_shape(name, trt.Dims(lo),",
        "profile.set_shape(name, lo,",
        '"set_shape"',
    ),
]


def test_misused_tensorrt_calls_fail_the_check(stubs: Path, cache: Path, tmp_path: Path) -> None:
    files = []
    for i, (target, original, broken, _) in enumerate(MISUSES):
        source = (REPO / target).read_text()
        assert original in source
        bad = tmp_path / f"broken_{i}.py"
        bad.write_text(source.replace(original, broken))
        files.append(str(bad))
    proc = mypy(files, stubs, cache)
    assert proc.returncode == 1, proc.stdout
    for i, (_, _, _, complaint) in enumerate(MISUSES):
        assert any(line.startswith(files[i]) and complaint in line for line in proc.stdout.splitlines()), proc.stdout


def test_rtx_modules_type_check_against_stubs_of_the_wheel(rtx_stubs: Path, cache: Path, tmp_path: Path) -> None:
    proc = mypy(RTX_MODULES, rtx_stubs, cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 3 source files" in proc.stdout
    # ... and the stubs are what it checked against: a misspelled RTX-only call fails.
    source = (REPO / RTX_MODULES[0]).read_text()
    assert "config.set_compute_capability(" in source
    bad = tmp_path / "broken_rtx.py"
    bad.write_text(source.replace("config.set_compute_capability(", "config.set_compute_capabilities("))
    proc = mypy([str(bad)], rtx_stubs, cache)
    assert proc.returncode == 1 and '"set_compute_capabilities"' in proc.stdout, proc.stdout
