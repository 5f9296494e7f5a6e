"""Hostile and careless input: bounded YAML, confined paths, one line with the documented exit code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines.errors import DescriptorError, ModelzooError
from pipelines.registry.manifest import Manifest, manifest_path
from pipelines.registry.releases import check_forward
from pipelines.yamlio import load_yaml, parse_yaml
from tests.cli_inprocess import Outcome, error_lines, run_cli
from tests.helpers import make_repo, read_yaml, tiny_descriptor, write_yaml

MODEL_YAML = "models/tiny/model.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"tiny": tiny_descriptor("tiny")}, git=False)


def one_error(outcome: Outcome, code: int, *expected: str) -> str:
    assert outcome.code == code, (outcome.code, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    lines = error_lines(outcome)
    assert len(lines) == 1, outcome.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def edit(repo: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = repo / MODEL_YAML
    data = read_yaml(path)
    change(data)
    write_yaml(path, data)


# --- the bounded YAML loader ----------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BOMB, "f.yaml: line 1: anchor '&a' refused"),
        ("a: 1\nb: *x\n", "f.yaml: line 2: alias '*x' refused"),
        ("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml: line 4: duplicate key 'c'"),
        ("a: [unclosed\n", "f.yaml: line 2: invalid YAML"),
        ("a: \x00\x01\x02\n", "f.yaml: invalid YAML: unacceptable character"),
        ("[" * 5000 + "]" * 5000, "f.yaml: "),
    ],
)
def test_yaml_refusals_name_file_and_line(text: str, expected: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DescriptorError) as err:
        parse_yaml(text, "f.yaml")
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - start < 5


def test_yaml_file_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(DescriptorError, match=r"^shown.yaml: not UTF-8 text \(byte 9\)"):
        load_yaml(path, "shown.yaml")
    monkeypatch.setattr("pipelines.yamlio.MAX_YAML_BYTES", 64)
    path.write_text("k: " + "v" * 100 + "\n")
    with pytest.raises(ModelzooError, match=r"x.yaml: larger than") as err:
        load_yaml(path, error=ModelzooError)
    assert err.value.exit_code == 1
    path.write_text("a: [1, 2]\nb: {c: null}\n")
    assert load_yaml(path) == {"a": [1, 2], "b": {"c": None}}


# --- descriptors and params.yaml through `modelzoo validate` --------------------------------------


def _set(dotted: str, value: object):  # type: ignore[no-untyped-def]
    def change(data: dict) -> None:  # type: ignore[type-arg]
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("source.checkpoint", "../outside/secret.txt", "source.checkpoint: '../outside/secret.txt': resolves outside"),
        ("source.checkpoint", "/etc/hostname", "source.checkpoint: '/etc/hostname': must be a path relative"),
        ("evaluation.dataset", "data/../../x", "evaluation.dataset: 'data/../../x': resolves outside"),
        ("provenance.training_config", "../secret.txt", "provenance.training_config: '../secret.txt': resolves"),
        ("provenance.training_log", "/tmp/log.json", "provenance.training_log: '/tmp/log.json': must be"),
        ("reference.module", "../../../x.py", "reference.module: '../../../x.py': resolves outside"),
        ("source.factory", "../../../net.py:build", "source.factory: '../../../net.py': resolves outside"),
        ("components.0.inputs.0.shape", [1, 5, 0, 16], "components.0.inputs.0.shape: axis 2 has size 0"),
        ("components.0.inputs.0.shape", [1, 5.5, 16, 16], "components.0.inputs.0.shape.1: Input should be a valid int"),
        ("components.0.inputs.0.shape", ["n", 5, 16, 16], "components.0: dynamic input axes ['n'] need dynamic_ranges"),
        (
            "verification.scenarios.0.tolerances",
            {"outptu": {"atol": 1}},
            "verification.scenarios.0.tolerances: 'outptu' names no output (outputs: calibration_classifier.output)",
        ),
        ("verification.scenarios.0.report_only", ["boxes.yaw"], "verification.scenarios.0.report_only: 'boxes.yaw'"),
        ("evaluation.budget", {"fp32": 0.1}, "evaluation.budget.fp32: a budget is a drop vs fp32"),
    ],
)
def test_descriptor_mistakes_one_line_exit_2(repo: Path, dotted: str, value: object, expected: str) -> None:
    edit(repo, _set(dotted, value))
    one_error(run_cli(["validate"], repo), 2, f"{MODEL_YAML}: {expected}")


def test_tolerance_names_that_exist_pass(repo: Path) -> None:
    tol = {"output": {"atol": 1.0}, "calibration_classifier.output": {"atol": 2.0}}
    edit(repo, _set("verification.scenarios.0.tolerances", tol))
    assert run_cli(["validate"], repo).code == 0


def test_symlink_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    (repo / "models" / "tiny" / "docs").symlink_to(tmp_path / "outside")
    edit(repo, _set("provenance.training_config", "models/tiny/docs/secret.txt"))
    one_error(run_cli(["validate"], repo), 2, "provenance.training_config: 'models/tiny/docs/secret.txt': resolves")


def test_budget_of_a_precision_not_built_is_a_warning(repo: Path) -> None:
    """Switching int8 off is one edit of build.precisions: its budget stays, unchecked, and validate says so."""
    edit(repo, _set("evaluation.budget", {"int8": 0.01}))
    out = run_cli(["validate"], repo)
    assert out.code == 0, out.stderr
    assert "warning: models/tiny/model.yaml: evaluation.budget.int8: int8 is not in build.precisions" in out.stderr
    # Built, but no backend evaluates it: the budget would check nothing.
    edit(repo, _set("build.precisions", ["fp32", "int8"]))
    one_error(run_cli(["validate"], repo), 2, "evaluation.budget.int8: no evaluation.backends entry measures int8")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: tiny\ndescription: caf\xe9\n", f"{MODEL_YAML}: not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", f"{MODEL_YAML}: "),
        (b"name: tiny\nname: tiny\n", f"{MODEL_YAML}: line 2: duplicate key 'name'"),
        (b"x: &a [1]\ny: *a\n", f"{MODEL_YAML}: line 1: anchor '&a' refused"),
    ],
)
def test_unreadable_descriptor(repo: Path, content: bytes, expected: str) -> None:
    (repo / MODEL_YAML).write_bytes(content)
    one_error(run_cli(["validate"], repo), 2, expected)


def test_alias_bomb_in_a_free_form_field(repo: Path) -> None:
    path = repo / MODEL_YAML
    path.write_text(path.read_text() + "\n" + BOMB.replace("\n", "\n  ").replace("a: &a", "x_bomb: &a", 1))
    start = time.perf_counter()
    one_error(run_cli(["validate"], repo), 2, f"{MODEL_YAML}: line ", "refused")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("just a string", "params.yaml: models.tiny: expected a mapping (checkpoint, dataset...), got str"),
        (
            {"checkpoint": "/etc/hostname", "dataset": "data/tiny"},
            "params.yaml: models.tiny.checkpoint: '/etc/hostname'",
        ),
        (
            {"checkpoint": "../x.pth", "dataset": "data/tiny"},
            "params.yaml: models.tiny.checkpoint: '../x.pth': resolves",
        ),
    ],
)
def test_params_mistakes(repo: Path, entry: object, expected: str) -> None:
    params = read_yaml(repo / "params.yaml")
    params["models"]["tiny"] = entry
    write_yaml(repo / "params.yaml", params)
    one_error(run_cli(["validate"], repo), 2, expected)


# --- registries, endpoints, outputs -----------------------------------------------------------------


def _registry(tmp_path: Path, versions: list[str]) -> Path:
    root = tmp_path / "registry"
    for v in versions:
        path = root / manifest_path(v)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Manifest(version=v).to_json())
    return root


def test_registry_that_is_a_file(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a registry")
    out = run_cli(["registry", "ls"], repo, {"MODELZOO_REGISTRY": str(tmp_path / "plain")})
    one_error(out, 2, "plain: not a directory")


def test_link_out_of_a_local_registry_is_not_followed(repo: Path, tmp_path: Path) -> None:
    root = _registry(tmp_path, ["1.0.0"])
    outside = tmp_path / "outside.json"
    outside.write_text(Manifest(version="2.0.0").to_json())
    (root / "releases" / "2.0.0").mkdir()
    (root / manifest_path("2.0.0")).symlink_to(outside)
    out = run_cli(["registry", "ls"], repo, {"MODELZOO_REGISTRY": str(root)})
    assert out.code == 0 and "1.0.0" in out.stdout and "2.0.0" not in out.stdout, out
    one_error(run_cli(["release", "diff", "1.0.0", "2.0.0", "--registry", str(root)], repo), 6, "a link out of")


def test_endpoint_that_is_not_a_url(repo: Path) -> None:
    out = run_cli(["registry", "ls", "--registry", "s3://bucket/zoo"], repo, {"MODELZOO_S3_ENDPOINT_URL": "not a url"})
    one_error(out, 2, "endpoint URL 'not a url'", "expected http(s)://host")


def test_release_diff_into_a_directory(repo: Path, tmp_path: Path) -> None:
    root = _registry(tmp_path, ["1.0.0", "1.1.0"])
    out = run_cli(["release", "diff", "1.0.0", "1.1.0", "-o", str(tmp_path), "--registry", str(root)], repo)
    one_error(out, 2, f"--output {tmp_path}: is a directory")


# --- versions go forward ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "version", "refused"),
    [
        (["1.0.0"], "0.9.0", "a new 0.9 line below the latest release 1.0.0"),
        (["1.0.0", "1.1.0"], "1.0.1", None),  # a maintenance release of the 1.0 line
        (["1.0.0", "1.0.3", "1.1.0"], "1.0.2", "below 1.0.3, the latest 1.0.x release"),
        (["1.0.0", "1.2.0"], "1.1.0", "a new 1.1 line below the latest release 1.2.0"),
        (["1.0.0"], "1.0.0", None),  # republishing: checked as identical elsewhere
        ([], "0.1.0", None),
        (["1.0.0"], "2.0.0", None),
    ],
)
def test_versions_go_forward(existing: list[str], version: str, refused: str | None) -> None:
    if refused is None:
        check_forward(existing, version)
        return
    with pytest.raises(ModelzooError, match=refused) as err:
        check_forward(existing, version)
    assert err.value.exit_code == 5
    check_forward(existing, version, allow_older=True)


@pytest.mark.parametrize(
    "command", [["publish", "--version", "0.9.0", "--no-dvc-push", "--unsigned"], ["release", "check", "v0.9.0"]]
)
def test_older_release_refused_by_the_cli(repo: Path, tmp_path: Path, command: list[str]) -> None:
    root = _registry(tmp_path, ["1.0.0"])
    out = run_cli([*command, "--registry", str(root)], repo)
    one_error(out, 5, "version 0.9.0: a new 0.9 line below the latest release 1.0.0", "--allow-older")
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["1.0.0"]
    # Asked for explicitly, the version rule lets it through (to the next check: nothing is built here).
    out = run_cli([*command, "--allow-older", "--registry", str(root)], repo)
    assert out.code != 5 and "below the latest" not in out.stderr, out.stderr


def _tiny_onnx(path: Path, output: str, ort: bool = False) -> None:
    """A real ONNX graph with the tiny classifier's input, whose single output is named `output`."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], [output], axes=[2, 3], keepdims=0)],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 5, 16, 16])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not ort:
        onnx.save(model, str(path))
        return
    import onnxruntime as ort_

    opts = ort_.SessionOptions()
    opts.optimized_model_filepath = str(path)
    opts.add_session_config_entry("session.save_model_format", "ORT")
    ort_.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def test_output_renamed_since_export(repo: Path) -> None:
    """verify and publish name the component and both name lists instead of a KeyError or a wrong manifest."""
    import numpy as np

    from pipelines.descriptor import Endpoint, load_descriptor
    from pipelines.registry.entry import check_onnx_signature
    from pipelines.runtimes.onnxruntime.session import built_model_path
    from pipelines.tasks.base import Model
    from pipelines.workspace import ModelContext

    ctx = ModelContext(repo, load_descriptor(repo, "tiny"))
    _tiny_onnx(ctx.onnx_path("calibration_classifier"), "bboxes")
    with pytest.raises(DescriptorError, match=r"components.0.outputs: \['output'\], but .* has \['bboxes'\]"):
        check_onnx_signature(ctx)
    _tiny_onnx(ctx.onnx_path("calibration_classifier"), "output")
    check_onnx_signature(ctx)

    _tiny_onnx(built_model_path(ctx, "calibration_classifier", "fp32"), "bboxes", ort=True)
    model = Model(ctx, Endpoint(backend="onnxruntime"))
    with pytest.raises(DescriptorError, match=r"outputs \['output'\] not produced .* \(it has \['bboxes'\]\)"):
        model("calibration_classifier", {"input": np.zeros((1, 5, 16, 16), np.float32)})
    model.close()


def test_box_checks_are_what_compare_boxes_returns() -> None:
    """detection3d declares the result keys of compare_boxes (what tolerances may name): the same list."""
    import numpy as np

    from pipelines.descriptor import Tolerance
    from pipelines.tasks.detection3d.decode import Boxes3D
    from pipelines.tasks.detection3d.match import BOX_CHECKS, compare_boxes

    empty = Boxes3D(
        np.zeros((0, 7), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    )
    assert tuple(compare_boxes(empty, empty, lambda _: Tolerance(), 0.1)) == BOX_CHECKS


def test_detection_checks_are_what_compare_detections_returns() -> None:
    """detection2d declares the result keys of compare_detections the same way."""
    import numpy as np

    from pipelines.tasks.detection2d.boxes import DETECTION_CHECKS, Detections, compare_detections

    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    assert tuple(compare_detections(empty, empty, 0.1, 0.0, 0.35)) == DETECTION_CHECKS


def test_publish_takes_no_file_from_outside(repo: Path, tmp_path: Path) -> None:
    """A link in the model folder to a file elsewhere: publish refuses it instead of uploading it."""
    from pipelines.descriptor import load_descriptor
    from pipelines.registry.entry import _provenance_files
    from pipelines.workspace import ModelContext

    edit(repo, _set("provenance", {}))
    ctx = ModelContext(repo, load_descriptor(repo, "tiny"))
    ctx.checkpoint.parent.mkdir(parents=True)
    ctx.checkpoint.write_bytes(b"weights")
    assert {f.relpath for f in _provenance_files(ctx)} >= {"provenance/checkpoint/checkpoint.pth"}
    (tmp_path / "secret.txt").write_text("secret")
    (ctx.dir / "notes.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(DescriptorError, match=r"secret.txt: outside the repository"):
        _provenance_files(ctx)


def test_local_registry_writes_nothing_through_a_link(tmp_path: Path) -> None:
    from pipelines.registry.stores import LocalStore, RegistryError

    root = _registry(tmp_path, ["1.0.0"])
    (tmp_path / "elsewhere").mkdir()
    (root / "models").symlink_to(tmp_path / "elsewhere")
    store = LocalStore(root)
    with pytest.raises(RegistryError, match="a link out of the registry") as err:
        store.put_bytes("models/a/b.onnx", b"x")
    assert err.value.exit_code == 6
    assert not any((tmp_path / "elsewhere").iterdir())
