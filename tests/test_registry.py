"""The registry: publishing, immutability, aliases, concurrency, interrupted uploads, gc, audit, index, info files.

Runs against moto's S3 server over HTTP and against the local back end, on artifacts made by a real
`dvc repro` of calibration_status (the session fixture `pipeline_repo`, ~80 s once).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from test_registry_helpers import (
    ALGORITHM,
    MODEL,
    CutProxy,
    Registry,
    change_weights,
    clone_built,
    commit_workspace,
    modelzoo,
    restamp,
)

from pipelines.errors import ModelzooError
from pipelines.fileio import sha256_stream
from pipelines.registry.location import open_store
from pipelines.registry.manifest import artifact_record_path, manifest_path
from pipelines.registry.publish import publish
from pipelines.registry.releases import read_manifest
from pipelines.registry.stores import RegistryError

pytestmark = pytest.mark.slow


@pytest.fixture(params=["local", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry(str(tmp_path / "registry"), None)
    server = request.getfixturevalue("s3_server")
    return Registry(f"s3://{server.new_bucket()}/zoo", server.endpoint)


@pytest.fixture
def repo(pipeline_repo: Path, tmp_path: Path) -> Path:
    return clone_built(pipeline_repo, tmp_path / "repo")


def _publish(repo: Path, reg: Registry, version: str, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("push_dvc", False)
    return publish(repo, reg.store(), version, location=reg.location(), **kw)


def _check_objects(store, manifest) -> None:  # type: ignore[no-untyped-def]
    for entry in manifest.models.values():
        for f in entry.files:
            with store.open_read(f.path) as stream:
                assert sha256_stream(stream) == (f.sha256, f.size), f.path


def test_publish_bleedingedge_then_release(repo: Path, registry: Registry) -> None:
    store = registry.store()
    first = publish(repo, store, "bleedingedge", location=registry.location())
    edge = read_manifest(store, "bleedingedge")
    assert edge is not None and set(edge.models) == {MODEL}
    entry = edge.models[MODEL]
    assert entry.artifact_version == f"1.0.0-{entry.fingerprint[:12]}"
    base = f"models/{ALGORITHM}/{MODEL}/{entry.artifact_version}"
    paths = {f.path for f in entry.files}
    assert f"{base}/onnx/calibration_classifier.onnx" in paths
    env_key = next(iter(entry.environments))
    assert env_key.startswith("onnxruntime-") and f"{base}/{env_key}/fp32/calibration_classifier.ort" in paths
    assert {f.target for f in entry.files} >= {"onnx", "provenance"}
    assert any(f.path.endswith("provenance/checkpoint/checkpoint.pth") for f in entry.files)
    assert entry.skipped_targets.get("tensorrt")  # no TensorRT here: recorded, not silently dropped
    assert entry.metrics and entry.latency_ms and entry.headline == "accuracy"
    assert entry.io_signature["calibration_classifier"].inputs[0].shape == [1, 5, 64, 64]
    assert first.uploaded_files == len(entry.files) and first.uploaded_bytes == sum(f.size for f in entry.files)
    _check_objects(store, edge)
    # dvc push put the pipeline cache under <registry>/dvc.
    assert any(True for _ in store.list("dvc/files/md5/"))

    # The X.Y.0 release references the same artifacts: nothing uploaded again.
    release = _publish(repo, registry, "v1.0.0")
    assert release.written and release.uploaded_bytes == 0
    manifest = read_manifest(store, "1.0.0")
    assert manifest is not None and manifest.models[MODEL].files == entry.files

    # Re-publishing identical content is a no-op success.
    again = _publish(repo, registry, "1.0.0")
    assert not again.written and again.uploaded_bytes == 0

    # A re-export at another commit (metadata only) keeps the fingerprint: still the same release.
    restamp(repo, "0" * 40)
    assert not _publish(repo, registry, "1.0.0").written

    # The bleeding edge is overwritten by a changed model.
    change_weights(repo)
    changed = _publish(repo, registry, "bleedingedge")
    new_edge = read_manifest(store, "bleedingedge")
    assert new_edge is not None and new_edge.models[MODEL].fingerprint != entry.fingerprint
    # A new artifact version: the model's files go to a new folder, the old one stays as it was.
    assert changed.uploaded_bytes == sum(f.size for f in new_edge.models[MODEL].files)
    _check_objects(store, edge)


def test_release_is_never_overwritten(repo: Path, registry: Registry) -> None:
    store = registry.store()
    _publish(repo, registry, "1.0.0")
    before = store.open_read(manifest_path("1.0.0")).read()
    change_weights(repo)
    with pytest.raises(RegistryError, match=r"release 1\.0\.0 already exists and models calibration_status differ"):
        _publish(repo, registry, "1.0.0")
    assert store.open_read(manifest_path("1.0.0")).read() == before
    # Nothing of the refused content was uploaded.
    assert len({o.key.split("/")[3] for o in store.list(f"models/{ALGORITHM}/{MODEL}/")}) == 1

    done = modelzoo(repo, "publish", "--version", "v1.0.0", "--no-dvc-push", "--unsigned", *registry.cli_args())
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "never overwritten" in done.stderr and "Traceback" not in done.stderr


def test_patch_release_is_an_alias(repo: Path, registry: Registry) -> None:
    store = registry.store()
    _publish(repo, registry, "1.0.0")
    objects = sorted(o.key for o in store.list("models/"))
    restamp(repo, "1" * 40)  # a convenience change: nothing a consumer sees
    patch = _publish(repo, registry, "v1.0.1")
    assert patch.alias_of == "1.0.0" and patch.uploaded_bytes == 0
    alias = read_manifest(store, "1.0.1")
    assert alias is not None and alias.alias_of == "1.0.0"
    assert alias.models == read_manifest(store, "1.0.0").models  # type: ignore[union-attr]
    assert sorted(o.key for o in store.list("models/")) == objects

    change_weights(repo)
    with pytest.raises(ModelzooError, match=r"release 1\.0\.2: artifacts changed since 1\.0\.0 .*a Y bump"):
        _publish(repo, registry, "1.0.2")
    assert read_manifest(store, "1.0.2") is None
    with pytest.raises(RegistryError, match=r"release 1\.1\.1 aliases 1\.1\.0, publish it first"):
        _publish(repo, registry, "1.1.1")


def test_concurrent_publishers_exactly_one_wins(pipeline_repo: Path, tmp_path: Path, registry: Registry) -> None:
    repos = [clone_built(pipeline_repo, tmp_path / f"r{i}") for i in range(2)]
    change_weights(repos[1])
    barrier = threading.Barrier(2)
    outcome: dict[int, object] = {}

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcome[i] = _publish(repos[i], registry, "2.0.0")
        except RegistryError as err:
            outcome[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, o in outcome.items() if not isinstance(o, Exception)]
    assert len(winners) == 1, outcome
    loser = outcome[1 - winners[0]]
    assert isinstance(loser, RegistryError) and "never overwritten" in str(loser)
    from pipelines.registry.entry import local_models

    manifest = read_manifest(registry.store(), "2.0.0")
    assert manifest is not None
    want = local_models(repos[winners[0]])[MODEL].entry.fingerprint
    assert manifest.models[MODEL].fingerprint == want
    _check_objects(registry.store(), manifest)


def test_interrupted_upload_leaves_no_release_and_resumes(repo: Path, s3_server, s3_bucket: str) -> None:  # type: ignore[no-untyped-def]
    # A 40 MiB checkpoint: a multipart upload that the cut lands in the middle of.
    ckpt = repo / "artifacts" / MODEL / "reference" / "checkpoint.pth"
    with open(ckpt, "ab") as f:
        f.write(bytes(range(256)) * (40 << 12))
    commit_workspace(repo)  # publish refuses outputs that differ from dvc.lock
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = CutProxy(port, budget=24 << 20)
    url = f"s3://{s3_bucket}/zoo"
    try:
        with pytest.raises(RegistryError) as err:
            publish(repo, open_store(url, proxy.endpoint), "1.0.0", push_dvc=False)
        assert len(str(err.value).splitlines()) == 1 and "s3://" in str(err.value)
        assert proxy.cut.is_set()
    finally:
        proxy.close()
    direct = open_store(url, s3_server.endpoint)
    assert read_manifest(direct, "1.0.0") is None  # no visible release
    assert not any(o.key.endswith("checkpoint.pth") for o in direct.list("models/"))

    result = publish(repo, direct, "1.0.0", push_dvc=False)  # the same command again completes it
    assert result.written and result.uploaded_files >= 1
    manifest = read_manifest(direct, "1.0.0")
    assert manifest is not None
    _check_objects(direct, manifest)
    from pipelines.registry.housekeeping import audit

    assert audit(direct)[1] == []


def test_unreachable_registry_is_one_line(repo: Path) -> None:
    from conftest import free_port

    done = modelzoo(
        repo, "publish", "--channel", "bleedingedge", "--no-dvc-push", "--unsigned",
        "--registry", "s3://nowhere/zoo", "--endpoint-url", f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: s3://nowhere/zoo") and len(done.stderr.strip().splitlines()) == 1
    assert "Could not connect" in done.stderr


def test_unverified_model_is_refused(repo: Path, tmp_path: Path) -> None:
    report = repo / "artifacts" / MODEL / "verify.json"
    data = json.loads(report.read_text())
    data["status"] = "fail"
    report.write_text(json.dumps(data))
    commit_workspace(repo)
    with pytest.raises(ModelzooError, match=r"verify.json: status 'fail'.*cannot be published"):
        _publish(repo, Registry(str(tmp_path / "reg"), None), "bleedingedge")
    assert not (tmp_path / "reg" / "models").exists()


def test_gc_keeps_everything_referenced(repo: Path, registry: Registry) -> None:
    from pipelines.registry.housekeeping import audit, plan_gc, run_gc

    store = registry.store()
    _publish(repo, registry, "1.0.0")
    old = read_manifest(store, "1.0.0")
    change_weights(repo, 1e-3)
    _publish(repo, registry, "1.1.0")
    _publish(repo, registry, "1.1.1")  # alias of 1.1.0
    change_weights(repo, 1e-3)
    _publish(repo, registry, "bleedingedge")
    before = {o.key for o in store.list("")}

    dry = modelzoo(repo, "registry", "gc", "--keep", "1.1.1", *registry.cli_args(), check=True)
    assert "dry run" in dry.stdout and {o.key for o in store.list("")} == before

    plan = plan_gc(store, ["1.1.1"])
    assert plan.kept == ["1.1.0", "1.1.1", "bleedingedge"]
    assert plan.dropped_releases == ["1.0.0"]
    assert old is not None
    assert {o.key for o in plan.delete} == {f.path for f in old.models[MODEL].files} | {
        artifact_record_path(ALGORITHM, MODEL, old.models[MODEL].artifact_version)
    }
    run_gc(store, plan)
    assert read_manifest(store, "1.0.0") is None
    for version in ("1.1.0", "1.1.1", "bleedingedge"):
        m = read_manifest(store, version)
        assert m is not None
        _check_objects(store, m)
    assert audit(store)[1] == []
    assert plan_gc(store, ["1.1.1"]).delete == []  # nothing left to collect


def test_audit_finds_replaced_bytes(repo: Path, registry: Registry) -> None:
    from pipelines.registry.housekeeping import audit

    store = registry.store()
    _publish(repo, registry, "1.0.0")
    ok = modelzoo(repo, "registry", "audit", *registry.cli_args(), check=True)
    assert "intact" in ok.stdout
    manifest = read_manifest(store, "1.0.0")
    assert manifest is not None
    victim = next(f for f in manifest.models[MODEL].files if f.name == "calibration_classifier.onnx")
    with store.open_read(victim.path) as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    store.delete(victim.path)
    store.put_bytes(victim.path, bytes(data))
    gone = next(f for f in manifest.models[MODEL].files if f.target == "provenance")
    store.delete(gone.path)

    checked, problems = audit(store)
    assert checked == len(manifest.models[MODEL].files)
    assert {p.key: p.problem.split(":")[0] for p in problems} == {victim.path: "corrupted", gone.path: "missing"}
    done = modelzoo(repo, "registry", "audit", *registry.cli_args())
    assert done.returncode == 6 and victim.path in done.stdout and "2 of" in done.stderr


def test_index_is_deterministic(repo: Path, tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "reg"), None)
    _publish(repo, reg, "1.0.0")
    _publish(repo, reg, "1.0.1")
    out = tmp_path / "MODELS.md"
    first = modelzoo(repo, "index", "-o", str(out), *reg.cli_args(), check=True)
    text = out.read_text()
    assert "written" in first.stdout
    second = modelzoo(repo, "index", "-o", str(out), *reg.cli_args(), check=True)
    assert "unchanged" in second.stdout and out.read_text() == text
    manifest = read_manifest(reg.store(), "1.0.0")
    assert manifest is not None
    entry = manifest.models[MODEL]
    onnx = next(f for f in entry.files if f.name == "calibration_classifier.onnx")
    row = next(line for line in text.splitlines() if line.startswith(f"| {MODEL} |"))
    assert "| classification |" in row and "| 1.0.1 |" in row and entry.artifact_version in row
    assert onnx.sha256[:12] in text and onnx.path in text
    assert "| 1.0.1 | 1.0.0 |" in text  # the releases list shows the alias


def test_info_and_auto_label_files(repo: Path, registry: Registry, tmp_path: Path) -> None:
    store = registry.store()
    for name in ("info_train.pkl", "info_val.pkl"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    files = [str(tmp_path / "info_train.pkl"), str(tmp_path / "info_val.pkl")]
    done = modelzoo(repo, "registry", "put-info", "v0.3.0", "base", *files, *registry.cli_args(), check=True)
    assert "uploaded: info/v0.3.0/base/info_train.pkl" in done.stdout
    again = modelzoo(repo, "registry", "put-info", "0.3.0", "base", *files, *registry.cli_args(), check=True)
    assert again.stdout.count("unchanged") == 2
    (tmp_path / "info_val.pkl").write_bytes(b"other")
    refused = modelzoo(repo, "registry", "put-info", "v0.3.0", "base", *files, *registry.cli_args())
    assert refused.returncode == 1 and "already exists with other content" in refused.stderr
    bad = modelzoo(repo, "registry", "put-info", "v0.3.0", "base", str(tmp_path / "x.pkl"), *registry.cli_args())
    assert bad.returncode == 2 and "info_train.pkl" in bad.stderr

    log = tmp_path / "log.log"
    log.write_text("pseudo labels\n")
    modelzoo(repo, "registry", "put-auto-label", "20241101", "xx1", str(log), *registry.cli_args(), check=True)
    listing = modelzoo(repo, "registry", "ls", "auto_label/", *registry.cli_args(), check=True)
    assert "auto_label/20241101_xx1/log.log" in listing.stdout
    assert [o.key for o in store.list("info/")] == ["info/v0.3.0/base/info_train.pkl", "info/v0.3.0/base/info_val.pkl"]


def test_registry_init_adds_abort_rule(s3_server, s3_bucket: str, repo: Path) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(f"s3://{s3_bucket}/zoo", s3_server.endpoint)
    modelzoo(repo, "registry", "init", *reg.cli_args(), check=True)
    rules = reg.store().lifecycle_rules()
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in rules] == [1]
    assert rules[0]["Filter"]["Prefix"] == "zoo/"


def test_dvc_remote_verifies_pulled_objects(repo: Path, tmp_path: Path) -> None:
    """publish pushes the pipeline cache to <registry>/dvc with verify = true: a corrupted object is refused."""
    import shutil
    import subprocess
    import sys

    from pipelines.registry.dvcremote import REMOTE

    reg = Registry(str(tmp_path / "registry"), None)
    publish(repo, reg.store(), "bleedingedge", location=reg.location())
    config = (repo / ".dvc" / "config.local").read_text()
    assert f"url = {tmp_path / 'registry' / 'dvc'}" in config and "verify = true" in config
    lock = (repo / "dvc.lock").read_text()
    ckpt_md5 = lock.split("path: artifacts/calibration_status/reference/checkpoint.pth")[1].split("md5: ")[1][:32]
    obj = tmp_path / "registry" / "dvc" / "files" / "md5" / ckpt_md5[:2] / ckpt_md5[2:]
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[0] ^= 0xFF
    obj.write_bytes(bytes(data))

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "artifacts" / MODEL / "reference")
    dvc = [sys.executable, "-m", "dvc", "pull", "--remote", REMOTE, f"train@{MODEL}"]
    done = subprocess.run(dvc, cwd=repo, capture_output=True, text=True)
    assert done.returncode != 0 and "reference" in done.stdout + done.stderr
    assert not (repo / "artifacts" / MODEL / "reference" / "checkpoint.pth").exists()
