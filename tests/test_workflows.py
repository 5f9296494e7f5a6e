"""The GitHub Actions workflows: actionlint and zizmor clean, and the team's rules for thin, safe YAML."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
# What a `run:` step may call: one command, no shell plumbing beyond one output redirection.
ALLOWED = ("modelzoo ", "scripts/", "dvc ", "ruff ", "mypy ", "python -m pytest", "gh ")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(p.name, name, job) for p in WORKFLOWS for name, job in load(p)["jobs"].items()]


def test_the_three_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "main.yml", "release.yml"}


def test_actionlint_is_clean() -> None:
    proc = subprocess.run(
        [tool("actionlint"), "-config-file", ".github/actionlint.yaml", *map(str, WORKFLOWS)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_an_unknown_runner_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text((REPO / ".github/workflows/main.yml").read_text().replace("x64, gpu]", "x64, gpux]", 1))
    proc = subprocess.run(
        [tool("actionlint"), "-config-file", str(REPO / ".github/actionlint.yaml"), str(bad)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0 and "gpux" in proc.stdout


def test_zizmor_is_clean() -> None:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--persona", "pedantic", *map(str, WORKFLOWS)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_catches_an_unpinned_action(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    text = (REPO / ".github/workflows/main.yml").read_text()
    bad.write_text(re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text))
    proc = subprocess.run([tool("zizmor"), "--offline", "--no-progress", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "unpinned-uses" in proc.stdout


@pytest.mark.parametrize(("workflow", "job", "spec"), jobs(), ids=[f"{w}:{j}" for w, j, _ in jobs()])
def test_every_job_is_bounded_and_least_privileged(workflow: str, job: str, spec: dict[str, Any]) -> None:
    assert isinstance(spec.get("timeout-minutes"), int), f"{workflow}:{job}: no timeout-minutes"
    perms = spec.get("permissions")
    assert isinstance(perms, dict), f"{workflow}:{job}: no job-level permissions"
    assert "write-all" not in str(perms) and set(perms.values()) <= {"read", "write", "none"}
    steps = spec.get("steps", [])
    if any("configure-aws-credentials" in s.get("uses", "") for s in steps):
        assert perms.get("id-token") == "write", f"{workflow}:{job}: OIDC needs id-token: write"
        aws = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
        assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]
    elif perms.get("id-token"):
        pytest.fail(f"{workflow}:{job}: id-token without an AWS role")
    if perms.get("contents") == "write":
        assert any("modelzoo ci commit-back" in s.get("run", "") for s in steps), f"{workflow}:{job}: needless write"


@pytest.mark.parametrize(("workflow", "job", "spec"), jobs(), ids=[f"{w}:{j}" for w, j, _ in jobs()])
def test_steps_are_pinned_and_thin(workflow: str, job: str, spec: dict[str, Any]) -> None:
    for step in spec.get("steps", []):
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), f"{workflow}:{job}: {step['uses']} is not pinned to a commit SHA"
            continue
        run = " ".join(str(step["run"]).split())
        assert run.startswith(ALLOWED), f"{workflow}:{job}: `{run}` is not one modelzoo/scripts/dvc command"
        assert not re.search(r"&&|\|\||;|\|(?!\|)|`|\$\(", run), f"{workflow}:{job}: `{run}` has shell logic"


def test_publishing_jobs_never_overlap() -> None:
    groups = {}
    for workflow, job, spec in jobs():
        if any("modelzoo publish" in s.get("run", "") for s in spec.get("steps", [])):
            conc = spec.get("concurrency") or {}
            assert conc.get("cancel-in-progress") is False, f"{workflow}:{job}: a publish must not be cancelled midway"
            groups[f"{workflow}:{job}"] = conc.get("group")
    assert groups == {"main.yml:publish": "publish-bleedingedge", "release.yml:release": "publish-release"}
    # and runs of main keep push order, so an older run never commits back over a newer one
    assert load(REPO / ".github/workflows/main.yml")["concurrency"] == {"group": "main", "cancel-in-progress": False}


def test_gpu_work_runs_on_the_self_hosted_runners() -> None:
    for _workflow, job, spec in jobs():
        runs = " ".join(str(s.get("run", "")) for s in spec.get("steps", []))
        if "dvc repro" in runs or "modelzoo publish" in runs:
            assert spec["runs-on"] in (["self-hosted", "linux", "x64", "gpu"], "${{ matrix.runs_on }}"), job


def test_main_push_of_models_md_alone_starts_nothing() -> None:
    on = load(REPO / ".github/workflows/main.yml")["on"]
    assert on["push"]["branches"] == ["main"] and "MODELS.md" in on["push"]["paths-ignore"]
    assert load(REPO / ".github/workflows/release.yml")["on"]["push"]["tags"] == ["v*"]
