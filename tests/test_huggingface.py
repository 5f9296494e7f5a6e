"""The Hugging Face channel against a local hub: olah serving the bare repositories the channel pushes to,
read back with the real `hf download` and `snapshot_download`, checked file by file against the manifest.

What this cannot test: the HTTPS push to huggingface.co itself (token, LFS batch API of the Hub);
olah is read-only, so the push goes to the bare repositories over file:// with the same git + git-lfs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.registry.huggingface import HubPublish, TagConflict, publish_hub
from pipelines.registry.layout import BUNDLE_MANIFEST, BUNDLE_RECORD, BUNDLE_SIGNATURE, bundle_files
from pipelines.registry.manifest import (
    Manifest,
    manifest_path,
)
from pipelines.registry.signing import generate_keypair
from pipelines.registry.stores import LocalStore
from scripts.local_hub import LocalHub, missing_tools, start_hub
from tests.consumer_registry import Art, sign_release, standard_files
from tests.hf_hub import PACKAGES, put_release

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

MODELZOO = str(Path(sys.executable).with_name("modelzoo"))
LFS_THRESHOLD = 2000  # the synthetic ONNX files (2.5 KB and up) go through LFS, the param files do not


def sha256_tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of what `hf download` placed (not its .cache/ nor .gitattributes)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".gitattributes" and ".cache" not in p.relative_to(folder).parts
    }


def alpha(salt: bytes) -> list[Art]:
    """standard_files, plus an int8 variant in its precision folder as the real manifests name them."""
    return [*standard_files("alpha", salt), Art("int8/alpha.onnx", "onnx", b"int8:" + salt * 900, "int8")]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "MODELZOO_LOG": "WARNING"}
    base.pop("MODELZOO_DEBUG", None)
    return subprocess.run([MODELZOO, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=120)


@dataclass
class Published:
    hub: LocalHub
    store: LocalStore
    r100: Manifest
    r110: Manifest
    p100: HubPublish
    p110: HubPublish
    refs_after: dict[str, dict[str, str]]
    public_key: Path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    hub = start_hub(tmp_path_factory.mktemp("hub"))
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def published(hub: LocalHub, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Releases 1.0.0 and 1.1.0 (alpha retrained; beta and gamma, one package, unchanged) published to the hub."""
    store = LocalStore(tmp_path_factory.mktemp("registry"))
    for repo in sorted(set(PACKAGES.values())):
        hub.bare(f"AutowareFoundation/{repo}")
    # lidar_alpha starts as the Hub makes a repository: one commit with a model card (which stays).
    card = tmp_path_factory.mktemp("card")
    (card / "README.md").write_text("# lidar_alpha\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "initial commit"],
        ["push", "-q", f"{hub.push_url}/AutowareFoundation/lidar_alpha", "main"],
    ):
        subprocess.run(["git", *args], cwd=card, check=True, capture_output=True)
    same = {"beta": standard_files("beta"), "gamma": standard_files("gamma")}
    r100 = put_release(store, "1.0.0", {"alpha": alpha(b"v1"), **same})
    p100 = publish_hub(store, "1.0.0", hub_url=hub.push_url, lfs_threshold=LFS_THRESHOLD)
    r110 = put_release(store, "1.1.0", {"alpha": alpha(b"v2"), **same})
    # 1.1.0 is signed: its signature travels in the package repositories beside the manifest.
    keys = tmp_path_factory.mktemp("keys")
    generate_keypair(keys / "zoo.pem", keys / "zoo.pub")
    sign_release(store, "1.1.0", keys / "zoo.pem")
    p110 = publish_hub(store, "1.1.0", hub_url=hub.push_url, lfs_threshold=LFS_THRESHOLD)
    after = {p: hub.refs(f"AutowareFoundation/{p}") for p in sorted(set(PACKAGES.values()))}
    return Published(hub, store, r100, r110, p100, p110, after, keys / "zoo.pub")


def test_two_releases_two_tags_with_the_manifest_bytes(published: Published, tmp_path: Path) -> None:
    hub = published.hub
    assert [(r.package, r.state, r.tag) for r in published.p100.repos] == [
        ("lidar_alpha", "committed", "v1.0"),
        ("pkg_two", "committed", "v1.0"),
    ]
    got = {}
    for revision, manifest in (("v1.0", published.r100), ("v1.1", published.r110)):
        dest = tmp_path / revision / "lidar_alpha"
        done = hub.download("AutowareFoundation/lidar_alpha", revision, dest, tmp_path / "hf-home")
        assert done.returncode == 0, done.stderr[-500:]
        want = {n: b.entry.sha256 for n, b in bundle_files(manifest, "lidar_alpha").items()}
        tree = sha256_tree(dest)
        assert {n: tree[n] for n in want} == want  # every file of the package, byte-identical
        # Nothing else (no engine, no provenance); the model card kept; the signature of a signed release.
        signed = manifest.version == "1.1.0"
        assert set(tree) == {*want, BUNDLE_MANIFEST, BUNDLE_RECORD, "README.md"} | (
            {BUNDLE_SIGNATURE} if signed else set()
        )
        assert (dest / BUNDLE_MANIFEST).read_bytes() == published.store.open_read(
            manifest_path(manifest.version)
        ).read()
        key = ["--public-key", str(published.public_key)] if signed else []
        checked = run_cli("check-bundle", str(dest), *key)
        assert checked.returncode == 0, checked.stderr
        assert f"lidar_alpha {manifest.version}: {len(want)} file(s) match" in checked.stdout
        got[revision] = tree
    assert got["v1.0"]["alpha.onnx"] != got["v1.1"]["alpha.onnx"]
    assert got["v1.0"]["int8/alpha.onnx"] != got["v1.1"]["int8/alpha.onnx"]


def test_lfs_files_are_pointers_in_git_and_arrive_whole(
    published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = published.hub.bare("AutowareFoundation/lidar_alpha")
    pointer = subprocess.run(
        ["git", "cat-file", "-p", "v1.0:alpha.onnx"], cwd=bare, capture_output=True, text=True, check=True
    ).stdout
    entry = bundle_files(published.r100, "lidar_alpha")["alpha.onnx"].entry
    assert pointer.startswith("version https://git-lfs") and f"oid sha256:{entry.sha256}" in pointer
    assert (bare / "lfs" / "objects" / entry.sha256[:2] / entry.sha256[2:4] / entry.sha256).stat().st_size == entry.size
    param = subprocess.run(["git", "cat-file", "-p", "v1.0:alpha.param.yaml"], cwd=bare, capture_output=True)
    assert param.stdout.startswith(b"/**:")  # below the threshold: a plain git blob

    for key, value in published.hub.env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    from huggingface_hub import snapshot_download

    path = snapshot_download(
        "AutowareFoundation/lidar_alpha", revision="v1.0", local_dir=tmp_path / "snap",
        endpoint=published.hub.endpoint, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    data = (Path(path) / "alpha.onnx").read_bytes()
    assert len(data) == entry.size and hashlib.sha256(data).hexdigest() == entry.sha256


def test_unchanged_package_gets_its_tag_on_the_same_commit(published: Published, tmp_path: Path) -> None:
    states = {r.package: r.state for r in published.p110.repos}
    assert states == {"lidar_alpha": "committed", "pkg_two": "tagged"}
    two = published.refs_after["pkg_two"]
    assert two["refs/tags/v1.1"] == two["refs/tags/v1.0"] == two["refs/heads/main"]
    alpha = published.refs_after["lidar_alpha"]
    assert alpha["refs/tags/v1.1"] != alpha["refs/tags/v1.0"]
    # Both models of the package, and the bytes of 1.0.0 under v1.1.
    dest = tmp_path / "pkg_two"
    done = published.hub.download("AutowareFoundation/pkg_two", "v1.1", dest, tmp_path / "home")
    assert done.returncode == 0, done.stderr[-500:]
    want = {n: b.entry.sha256 for n, b in bundle_files(published.r110, "pkg_two").items()}
    assert {"beta.onnx", "gamma.onnx", "beta.param.yaml", "gamma.param.yaml"} <= set(want)
    assert {n: sha256_tree(dest)[n] for n in want} == want
    assert json.loads((dest / BUNDLE_RECORD).read_text())["version"] == "1.0.0"  # the release that last changed it
    assert run_cli("check-bundle", str(dest)).returncode == 0


def test_republish_and_patch_release_move_nothing(published: Published) -> None:
    hub = published.hub
    again = publish_hub(published.store, "1.0.0", hub_url=hub.push_url, lfs_threshold=LFS_THRESHOLD)
    assert {r.state for r in again.repos} == {"unchanged"}
    put_release(published.store, "1.1.1", {}, alias_of="1.1.0")
    patch = run_cli("publish-hf", "--version", "1.1.1", "--hub-url", hub.push_url, "--registry",
                    str(published.store.root), "--lfs-threshold", str(LFS_THRESHOLD))  # fmt: skip
    assert patch.returncode == 0, patch.stderr
    assert "files of 1.1.0: a Z>0 release adds no tag" in patch.stdout and "unchanged" in patch.stdout
    for pkg, before in published.refs_after.items():
        assert hub.refs(f"AutowareFoundation/{pkg}") == before


def test_a_tag_is_never_moved(published: Published, tmp_path: Path) -> None:
    """Another registry's 1.0.0 (other alpha bytes) is refused before any repository is written."""
    other = LocalStore(tmp_path / "other")
    same = {"beta": standard_files("beta"), "gamma": standard_files("gamma")}
    put_release(other, "1.0.0", {"alpha": standard_files("alpha", b"other"), **same})
    with pytest.raises(TagConflict, match=r"lidar_alpha: tag v1.0 already exists .* a tag is never moved"):
        publish_hub(other, "1.0.0", hub_url=published.hub.push_url, lfs_threshold=LFS_THRESHOLD)
    done = run_cli("publish-hf", "--version", "1.0.0", "--hub-url", published.hub.push_url,
                   "--registry", str(other.root))  # fmt: skip
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "tag v1.0 already exists" in done.stderr
    for pkg, before in published.refs_after.items():
        assert published.hub.refs(f"AutowareFoundation/{pkg}") == before


def test_check_bundle_refuses_a_changed_file(published: Published, tmp_path: Path) -> None:
    dest = tmp_path / "lidar_alpha"
    assert published.hub.download("AutowareFoundation/lidar_alpha", "v1.1", dest, tmp_path / "h").returncode == 0
    (dest / "alpha.fp16.onnx").write_bytes(b"tampered")
    done = run_cli("check-bundle", str(dest))
    assert done.returncode == 6 and "alpha.fp16.onnx: sha256 differs from release 1.1.0" in done.stderr
    # An unknown tag is not served.
    missing = published.hub.download("AutowareFoundation/lidar_alpha", "v9.9", tmp_path / "x", tmp_path / "h")
    assert missing.returncode != 0


def test_pin_autoware_prints_the_role_entries(published: Published, tmp_path: Path) -> None:
    done = subprocess.run(
        [MODELZOO, "pin", "--autoware", "--registry", str(published.store.root), "--version", "1.1.0",
         "--models", "alpha,beta,gamma", "--pin", str(tmp_path / "modelzoo.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "- { repo: lidar_alpha, revision: v1.1 }",
        "- { repo: pkg_two, revision: v1.1 }",
    ]
    assert not (tmp_path / "modelzoo.yaml").exists()


def test_https_push_needs_a_token(tmp_path: Path) -> None:
    env = {k: "" for k in ("HF_TOKEN",)}
    done = run_cli("publish-hf", "--version", "1.0.0", "--registry", str(tmp_path), env=env)
    assert done.returncode == 2 and "$HF_TOKEN is not set" in done.stderr
    skipped = run_cli("publish-hf", "--version", "1.0.0", "--registry", str(tmp_path), "--skip-if-no-token", env=env)
    assert skipped.returncode == 0 and "the Hugging Face channel (https://huggingface.co) is skipped" in skipped.stdout


def test_models_md_lists_the_hf_download_line(published: Published) -> None:
    from pipelines.registry.history import read_history
    from pipelines.registry.index import render_markdown
    from tests.conftest import REPO

    text = render_markdown(read_history(published.store), REPO / "MODELS.md.j2")
    for pkg in ("lidar_alpha", "pkg_two"):
        assert f"hf download AutowareFoundation/{pkg} --revision v1.1 --local-dir ~/autoware_data/{pkg}\n" in text
