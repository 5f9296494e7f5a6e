"""End to end: `modelzoo repro` / `dvc repro` of the bundled classifier in a temporary clone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, modelzoo, read_yaml, run, write_yaml

pytestmark = pytest.mark.slow

MODEL = "calibration_status"
COPY = "calibration_copy"


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository's committed state, with only the classifier and a copy of it."""
    dest = tmp_path_factory.mktemp("e2e") / "repo"
    run(["git", "clone", "-q", str(REPO), str(dest)], REPO)
    params = read_yaml(dest / "params.yaml")
    params["models"] = {MODEL: params["models"][MODEL]}
    params["reference_models"] = [MODEL]
    # A second model: the same network and checkpoint as the classifier, not a reference model.
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


def test_fresh_clone_runs_the_whole_graph(clone: Path) -> None:
    proc = modelzoo(["repro"], clone)
    stages = ran(proc.stdout)
    for stage in ("data", "train", "export", "build", "verify", "evaluate"):
        assert f"{stage}@{MODEL}" in stages, proc.stdout
    # Where things are, for the person who ran it.
    assert f"{MODEL}: artifacts artifacts/{MODEL}/" in proc.stdout
    assert f"metrics artifacts/{MODEL}/metrics.json" in proc.stdout
    metrics = json.loads((clone / "artifacts" / MODEL / "metrics.json").read_text())
    for backend in ("pytorch-cpu-fp32", "onnxruntime-cpu-fp32"):
        assert metrics["backends"][backend]["accuracy"] >= 0.90, (backend, metrics["backends"][backend])
    assert json.loads((clone / "artifacts" / MODEL / "verify.json").read_text())["status"] == "pass"
    shown = run([str(BIN / "dvc"), "metrics", "show", "--json"], clone).stdout
    assert "accuracy" in shown
    plots = run([str(BIN / "dvc"), "plots", "show", "--json"], clone)
    assert "latency" in plots.stdout


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


def test_descriptor_edit_does_not_retrain_but_code_edit_does(clone: Path) -> None:
    path = clone / "models" / MODEL / "model.yaml"
    desc = read_yaml(path)
    desc["verification"]["scenarios"][0]["default"]["atol"] = 2.0e-4
    write_yaml(path, desc)
    proc = run([str(BIN / "dvc"), "repro", f"evaluate@{MODEL}"], clone)
    stages = ran(proc.stdout)
    assert f"recipe@{MODEL}" in stages and f"verify@{MODEL}" in stages, proc.stdout
    assert not {f"data@{MODEL}", f"train@{MODEL}"} & stages, proc.stdout

    net = clone / "models" / MODEL / "net.py"
    net.write_text(net.read_text() + "\n# an edit of the network code\n")
    proc = run([str(BIN / "dvc"), "repro", f"train@{MODEL}"], clone)
    stages = ran(proc.stdout)
    assert f"train@{MODEL}" in stages and f"data@{MODEL}" in stages, proc.stdout
    recipe = json.loads((clone / "artifacts" / MODEL / "recipe.json").read_text())
    assert set(recipe["files"]) == {"net.py", "reference.py"}
