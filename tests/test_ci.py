"""`modelzoo ci ...`: the helpers each workflow step calls, on real git repositories and a real DVC graph."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.ci.changes import changed_models
from pipelines.ci.comment import MARKER, comment_body
from pipelines.ci.commit import SKIP, commit_back
from pipelines.ci.matrix import RUNNERS, build_matrix
from pipelines.ci.outputs import format_outputs, parse_outputs
from pipelines.ci.tags import check_tag, parse_tag
from pipelines.errors import ModelzooError, UsageError

REPO = Path(__file__).resolve().parents[1]
MODELZOO = str(Path(os.sys.executable).with_name("modelzoo"))


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def git_init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.email", "t@example.com")
    sh(path, "git", "config", "user.name", "t")
    return path


def commit_all(repo: Path, msg: str) -> str:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", msg)
    return sh(repo, "git", "rev-parse", "HEAD")


def modelzoo(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELZOO, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})


# --- outputs ---------------------------------------------------------------------------------------


def test_outputs_roundtrip_single_and_multiline() -> None:
    values = {"a": "1", "matrix": '{"include":[]}', "body": "line one\nline two=x\n<<not a delimiter"}
    assert parse_outputs(format_outputs(values)) == values


# --- tags ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["v1.2.3", "refs/tags/v1.2.3"])
def test_parse_tag_accepts_release_tags(tag: str) -> None:
    assert parse_tag(tag) == "1.2.3"


@pytest.mark.parametrize("tag", ["1.2.3", "v1.2", "v1.2.3-rc1", "v1.2.3+build", "v01.2.3", "vx.y.z", "release-1"])
def test_parse_tag_refuses_anything_else(tag: str) -> None:
    with pytest.raises(UsageError, match=r"not a release tag vX\.Y\.Z"):
        parse_tag(tag)


@pytest.fixture
def tagged_repo(tmp_path: Path) -> Path:
    repo = git_init(tmp_path / "repo")
    (repo / "params.yaml").write_text("models: {}\n")
    (repo / "f").write_text("1")
    commit_all(repo, "one")
    sh(repo, "git", "tag", "v1.0.0")
    (repo / "f").write_text("2")
    commit_all(repo, "two")
    sh(repo, "git", "tag", "v1.0.1")
    sh(repo, "git", "checkout", "-q", "-b", "side")
    (repo / "f").write_text("side")
    commit_all(repo, "side")
    sh(repo, "git", "tag", "v1.1.0")
    sh(repo, "git", "tag", "v2.0.0-rc1")
    sh(repo, "git", "checkout", "-q", "main")
    return repo


def test_check_tag_on_main(tagged_repo: Path) -> None:
    full = check_tag(tagged_repo, "v1.0.0", "main")
    assert (full.version, full.alias) == ("1.0.0", False)
    assert full.commit == sh(tagged_repo, "git", "rev-parse", "v1.0.0^{commit}")
    alias = check_tag(tagged_repo, "refs/tags/v1.0.1", "main")
    assert alias.outputs() == {"version": "1.0.1", "commit": alias.commit, "alias": "true", "alias_of": "1.0.0"}


def test_check_tag_refuses_a_tag_off_main(tagged_repo: Path) -> None:
    with pytest.raises(UsageError, match=r"tag 'v1.1.0': commit [0-9a-f]{12} is not on main"):
        check_tag(tagged_repo, "v1.1.0", "main")


def test_tag_command_writes_outputs_and_refuses_with_one_line(tagged_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "gh_output"
    ok = modelzoo(tagged_repo, "ci", "tag", "v1.0.1", "--main", "main", env={"GITHUB_OUTPUT": str(out)})
    assert ok.returncode == 0, ok.stderr
    assert "alias of 1.0.0" in ok.stdout
    assert parse_outputs(out.read_text())["alias_of"] == "1.0.0"
    for tag, why in [("v2.0.0-rc1", "not a release tag"), ("v1.1.0", "not on main"), ("v9.9.9", "not found")]:
        bad = modelzoo(tagged_repo, "ci", "tag", tag, "--main", "main")
        assert bad.returncode != 0
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ") and why in bad.stderr, bad.stderr


# --- changed models (the real DVC graph of a clone with a second model) ----------------------------


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this repository with calibration_status and a copy of it, `twin`, on main."""
    repo = tmp_path_factory.mktemp("changes") / "repo"
    sh(REPO, "git", "clone", "-q", str(REPO), str(repo))
    sh(repo, "git", "config", "user.email", "t@example.com")
    sh(repo, "git", "config", "user.name", "t")
    sh(repo, "git", "checkout", "-q", "-B", "main")
    src = repo / "models" / "calibration_status"
    twin = repo / "models" / "twin"
    shutil.copytree(src, twin)
    text = (twin / "model.yaml").read_text().replace("calibration_status", "twin")
    (twin / "model.yaml").write_text(text)
    for other in (repo / "models").iterdir():  # just the two: the answers below name every model
        if other.name not in ("calibration_status", "twin"):
            shutil.rmtree(other)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"] = {
        name: {"checkpoint": f"artifacts/{name}/reference/checkpoint.pth", "dataset": f"data/{name}"}
        for name in ("calibration_status", "twin")
    }
    params["reference_models"] = ["calibration_status", "twin"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(repo, "twin model")
    return repo


def change(repo: Path, branch: str, edits: dict[str, str | None]) -> None:
    sh(repo, "git", "checkout", "-q", "-B", branch, "main")
    for rel, text in edits.items():
        path = repo / rel
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
    commit_all(repo, branch)


def read(repo: Path, rel: str) -> str:
    return (repo / rel).read_text()


def test_changed_models_follow_the_dvc_graph(two_models: Path) -> None:
    repo = two_models
    cases = {
        "docs": ({"README.md": "docs only\n"}, []),
        "twin-weights": (
            {"models/twin/model.yaml": read(repo, "models/twin/model.yaml").replace("seed: 0", "seed: 1")},
            ["twin"],
        ),
        "twin-params": (
            {"params.yaml": read(repo, "params.yaml").replace("data/twin", "data/twin2")},
            ["twin"],
        ),
        "twin-net": ({"models/twin/net.py": read(repo, "models/twin/net.py") + "\n# touched\n"}, ["twin"]),
        # env stage -> every model's build
        "env-code": (
            {
                "pipelines/runtimes/onnxruntime/probe.py": read(repo, "pipelines/runtimes/onnxruntime/probe.py")
                + "\n# touched\n"
            },
            ["calibration_status", "twin"],
        ),
        "export-code": (
            {"pipelines/stages/export.py": read(repo, "pipelines/stages/export.py") + "\n# touched\n"},
            ["calibration_status", "twin"],
        ),
        # a params.yaml key DVC does not track for any stage reruns nothing
        "params-untracked": ({"params.yaml": read(repo, "params.yaml") + "runner_archs: {twin: [x86_64]}\n"}, []),
    }
    params = yaml.safe_load(read(repo, "params.yaml"))  # same values, another layout: nothing tracked changed
    cases["params-same-values"] = ({"params.yaml": "# reformatted\n" + yaml.safe_dump(params, indent=4)}, [])
    for branch, (edits, want) in cases.items():
        change(repo, branch, edits)
        assert changed_models(repo, "main") == want, branch


def test_changed_command_outputs_a_matrix(two_models: Path, tmp_path: Path) -> None:
    repo = two_models
    change(repo, "cmd", {"models/twin/net.py": read(repo, "models/twin/net.py") + "\n# touched\n"})
    out = tmp_path / "gh_output"
    proc = modelzoo(repo, "ci", "changed", "--base", "main", env={"GITHUB_OUTPUT": str(out)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["twin"]
    got = parse_outputs(out.read_text())
    assert got["empty"] == "false"
    assert json.loads(got["matrix"]) == {"include": [{"model": "twin", "arch": "x86_64", "runs_on": RUNNERS["x86_64"]}]}
    bad = modelzoo(repo, "ci", "changed", "--base", "no-such-branch")
    assert bad.returncode != 0 and "git ref 'no-such-branch': not found" in bad.stderr


# --- matrix ----------------------------------------------------------------------------------------


def test_matrix_default_and_jetson_legs(two_models: Path) -> None:
    repo = two_models
    sh(repo, "git", "checkout", "-q", "main")
    legs = build_matrix(repo)["include"]
    assert [(leg["model"], leg["arch"]) for leg in legs] == [("calibration_status", "x86_64"), ("twin", "x86_64")]
    params_path = repo / "params.yaml"
    original = params_path.read_text()
    try:
        params_path.write_text(original + "runner_archs:\n  twin: [x86_64, aarch64]\n")
        legs = build_matrix(repo, ["twin"])["include"]
        assert [(leg["arch"], leg["runs_on"]) for leg in legs] == [
            ("x86_64", ["self-hosted", "linux", "x64", "gpu"]),
            ("aarch64", ["self-hosted", "linux", "ARM64", "jetson"]),
        ]
        params_path.write_text(original + "runner_archs:\n  twin: [riscv]\n")
        with pytest.raises(UsageError, match=r"params.yaml: runner_archs.twin: unknown architecture 'riscv'"):
            build_matrix(repo)
        params_path.write_text(original + "runner_archs:\n  ghost: [x86_64]\n")
        with pytest.raises(UsageError, match=r"params.yaml: runner_archs: ghost is not a model"):
            build_matrix(repo)
        params_path.write_text(original)
        with pytest.raises(UsageError, match=r"params.yaml: models.ghost: unknown model"):
            build_matrix(repo, ["ghost"])
    finally:
        params_path.write_text(original)


# --- PR comment ------------------------------------------------------------------------------------


def test_comment_body_holds_both_reports(tmp_path: Path) -> None:
    body = comment_body(["twin"], "| Path | Metric |\n|---|---|\n", "needs a Y bump: 1.1.0", release_ok=False)
    assert body.startswith(MARKER)
    assert "`twin`" in body and "| Path | Metric |" in body and "needs a Y bump: 1.1.0" in body and "failed" in body
    assert "no metric changed" in comment_body([], "", "ok")

    metrics, release, out = tmp_path / "m.md", tmp_path / "r.txt", tmp_path / "c.md"
    metrics.write_text("| a |\n")
    release.write_text("Z bump is enough\n")
    files = ["--metrics", str(metrics), "--release", str(release), "--out", str(out)]
    proc = modelzoo(REPO, "ci", "comment", "--models", '["twin"]', "--release-outcome", "failure", *files)
    assert proc.returncode == 0, proc.stderr
    assert "Z bump is enough" in out.read_text() and "`modelzoo release check` failed" in out.read_text()
    bad = modelzoo(REPO, "ci", "comment", "--models", "twin", *files)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --models: not JSON")
    bad = modelzoo(REPO, "ci", "comment", "--models", "[]", "--release-outcome", "cancelled", *files)
    assert bad.returncode == 2 and "--release-outcome: 'cancelled'" in bad.stderr
    files[1] = str(tmp_path / "nope.md")
    gone = modelzoo(REPO, "ci", "comment", "--models", "[]", *files)
    assert gone.returncode == 2 and "nope.md: cannot read" in gone.stderr


# --- commit-back -----------------------------------------------------------------------------------


def test_commit_back_pushes_once_and_rebases_over_a_concurrent_push(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    sh(tmp_path, "git", "init", "-q", "--bare", "-b", "main", str(origin))
    seed = git_init(tmp_path / "seed")
    (seed / "README.md").write_text("x\n")
    commit_all(seed, "init")
    sh(seed, "git", "push", "-q", str(origin), "main")

    runner = tmp_path / "runner"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(runner))
    (runner / "MODELS.md").write_text("# Models\n1.0.0\n")
    pushed = commit_back(runner, ["MODELS.md"], "MODELS.md: regenerate")
    assert pushed and sh(origin, "git", "rev-parse", "main") == pushed
    log = sh(origin, "git", "log", "-1", "--format=%an|%s", "main")
    assert log == f"github-actions[bot]|MODELS.md: regenerate {SKIP}"
    assert commit_back(runner, ["MODELS.md"], "again") is None  # unchanged: nothing committed

    # a maintainer pushes meanwhile: the commit is replayed on top, not forced over theirs
    (seed / "README.md").write_text("y\n")
    sh(seed, "git", "pull", "-q", str(origin), "main")
    (seed / "other.txt").write_text("z\n")
    theirs = commit_all(seed, "theirs")
    sh(seed, "git", "push", "-q", str(origin), "main")
    (runner / "MODELS.md").write_text("# Models\n1.0.0\n1.1.0\n")
    pushed = commit_back(runner, ["MODELS.md"], "MODELS.md: regenerate")
    assert sh(origin, "git", "rev-parse", "main") == pushed
    assert sh(origin, "git", "rev-parse", "main~1") == theirs

    with pytest.raises(ModelzooError, match=r"NOPE\.md: not found"):
        commit_back(runner, ["NOPE.md"], "x")


# --- next tag --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "want"), [("X", "2.0.0"), ("Y", "1.3.0"), ("Z", "1.2.4")])
def test_bumped_follows_the_modelzoo_rules(level: str, want: str) -> None:
    from pipelines.ci.bump import bumped

    assert bumped("1.2.3", level) == want


def test_next_tag_of_an_empty_registry_is_the_first_release(tmp_path: Path) -> None:
    proc = modelzoo(REPO, "ci", "next-tag", "--registry", str(tmp_path / "empty-registry"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "v1.0.0 (no release yet)"
