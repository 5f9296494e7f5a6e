"""End to end: `modelzoo repro` / `dvc repro` of the bundled classifier in a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPRO_LOG
from tests.helpers import BIN, modelzoo, read_yaml, run, write_yaml

pytestmark = pytest.mark.slow

MODEL = "calibration_status"
COPY = "calibration_copy"


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def clone(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's freshly reproduced repository (the classifier alone) copied, plus a second model:
    the same network and checkpoint as the classifier, not a reference model, not yet built."""
    dest = Path(shutil.copytree(pipeline_repo, tmp_path_factory.mktemp("e2e") / "repo", symlinks=True))
    params = read_yaml(dest / "params.yaml")
    desc = read_yaml(dest / "models" / MODEL / "model.yaml")
    desc["name"] = COPY
    desc.pop("reference")
    desc["evaluation"]["samples"] = 40
    (dest / "models" / COPY).mkdir()
    (dest / "models" / COPY / "net.py").write_text((dest / "models" / MODEL / "net.py").read_text())
    write_yaml(dest / "models" / COPY / "model.yaml", desc)
    params["models"][COPY] = dict(params["models"][MODEL])
    write_yaml(dest / "params.yaml", params)
    return dest


def test_fresh_clone_runs_the_whole_graph(pipeline_repo: Path) -> None:
    """`modelzoo repro` on a fresh copy of the repository (the session fixture's build, tests/conftest.py)."""
    out = (pipeline_repo / REPRO_LOG).read_text()
    stages = ran(out)
    for stage in ("recipe", "data", "train", "export", "build", "verify", "evaluate"):
        assert f"{stage}@{MODEL}" in stages, out
    # Where things are, for the person who ran it.
    assert f"{MODEL}: artifacts artifacts/{MODEL}/" in out
    assert f"metrics artifacts/{MODEL}/metrics.json" in out
    metrics = json.loads((pipeline_repo / "artifacts" / MODEL / "metrics.json").read_text())
    for backend in ("pytorch-cpu-fp32", "onnxruntime-cpu-fp32"):
        assert metrics["backends"][backend]["accuracy"] >= 0.90, (backend, metrics["backends"][backend])
    assert json.loads((pipeline_repo / "artifacts" / MODEL / "verify.json").read_text())["status"] == "pass"
    shown = run([str(BIN / "dvc"), "metrics", "show", "--json"], pipeline_repo).stdout
    assert "accuracy" in shown
    plots = run([str(BIN / "dvc"), "plots", "show", "--json"], pipeline_repo)
    assert "latency" in plots.stdout


def test_a_new_model_runs_only_its_own_stages(clone: Path) -> None:
    proc = modelzoo(["repro"], clone)
    stages = {s for s in ran(proc.stdout) if not s.startswith("env@")}
    assert {f"{s}@{COPY}" for s in ("export", "build", "verify", "evaluate")} <= stages, proc.stdout
    assert all(s.endswith(f"@{COPY}") for s in stages), stages
    assert json.loads((clone / "artifacts" / COPY / "verify.json").read_text())["status"] == "pass"


def test_second_repro_does_nothing(clone: Path) -> None:
    proc = run([str(BIN / "dvc"), "repro"], clone)
    # The environment probes always run (cheaply); nothing else may.
    assert {s for s in ran(proc.stdout) if not s.startswith("env@")} == set(), proc.stdout
    front = modelzoo(["repro"], clone)
    assert "up to date: 2 model(s), nothing handed to DVC" in front.stdout


def test_editing_one_model_reruns_only_that_model(clone: Path) -> None:
    path = clone / "models" / COPY / "model.yaml"
    desc = read_yaml(path)
    desc["evaluation"]["samples"] = 30
    write_yaml(path, desc)
    proc = modelzoo(["repro"], clone)
    assert f"asking DVC about 1 of 2 model(s): {COPY}" in proc.stdout
    stages = {s for s in ran(proc.stdout) if not s.startswith("env@")}
    assert stages and all(s.endswith(f"@{COPY}") for s in stages), stages
    assert json.loads((clone / "artifacts" / COPY / "metrics.json").read_text())["samples"] == 30
    again = run([str(BIN / "dvc"), "repro"], clone)
    assert {s for s in ran(again.stdout) if not s.startswith("env@")} == set()


def test_descriptor_edit_does_not_retrain_but_code_edit_makes_training_stale(clone: Path) -> None:
    path = clone / "models" / MODEL / "model.yaml"
    desc = read_yaml(path)
    desc["verification"]["scenarios"][0]["default"]["atol"] = 2.0e-4
    write_yaml(path, desc)
    proc = run([str(BIN / "dvc"), "repro", f"evaluate@{MODEL}"], clone)
    stages = ran(proc.stdout)
    assert f"recipe@{MODEL}" in stages and f"verify@{MODEL}" in stages, proc.stdout
    assert not {f"data@{MODEL}", f"train@{MODEL}"} & stages, proc.stdout

    # The code edit is only asked about, not rerun (retraining is the suite's most expensive step):
    # the recipe reruns for real, then DVC's own status must call data and training stale.
    net = clone / "models" / MODEL / "net.py"
    net.write_text(net.read_text() + "\n# an edit of the network code\n")
    proc = run([str(BIN / "dvc"), "repro", f"recipe@{MODEL}"], clone)
    assert f"recipe@{MODEL}" in ran(proc.stdout), proc.stdout
    recipe = json.loads((clone / "artifacts" / MODEL / "recipe.json").read_text())
    assert set(recipe["files"]) == {"net.py", "reference.py"}
    status = json.loads(run([str(BIN / "dvc"), "status", "--json", "--with-deps", f"train@{MODEL}"], clone).stdout)
    assert {f"data@{MODEL}", f"train@{MODEL}"} <= set(status), status
