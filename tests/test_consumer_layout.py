"""`modelzoo fetch --layout autoware`: a pinned release placed as Autoware's launch files read it,
<dest>/<package>/<file>, verified by `modelzoo check-bundle`; and the descriptor's autoware section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.consumer.fetch import fetch
from pipelines.consumer.pin import Pin
from pipelines.descriptor import Autoware, parse_descriptor
from pipelines.errors import DescriptorError, ModelzooError
from pipelines.registry.huggingface import _Git
from pipelines.registry.layout import BUNDLE_MANIFEST, BUNDLE_RECORD, BUNDLE_SIGNATURE, check_bundle
from pipelines.registry.stores import LocalStore
from tests.consumer_registry import Art, standard_files
from tests.hf_hub import put_release

MODELZOO = str(Path(sys.executable).with_name("modelzoo"))


def pin_for(store: LocalStore, models: list[str], **over: object) -> Pin:
    data: dict[str, object] = {"registry": str(store.root), "version": "1.0.0", "models": models, "layout": "autoware"}
    return Pin.model_validate({**data, **over})


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "registry")
    # alpha -> lidar_alpha; beta and gamma share pkg_two, with one identical label file.
    label = Art("label.txt", "ros", b"CAR\nPEDESTRIAN\n")
    put_release(s, "1.0.0", {"alpha": standard_files("alpha"), "beta": [*standard_files("beta"), label],
                             "gamma": [*standard_files("gamma"), label]})  # fmt: skip
    return s


def test_fetch_places_packages_flat(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "autoware_data"
    report = fetch(pin_for(store, ["alpha", "beta", "gamma"]), tmp_path, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["lidar_alpha", "pkg_two"]
    assert sorted(p.name for p in (dest / "pkg_two").iterdir()) == sorted(
        [BUNDLE_MANIFEST, BUNDLE_RECORD, "label.txt"]
        + [f"{m}{s}" for m in ("beta", "gamma") for s in (".onnx", ".fp16.onnx", ".param.yaml")]
    )
    assert (dest / "lidar_alpha" / "alpha.onnx").read_bytes() == standard_files("alpha")[0].data
    assert len(report.fetched) == 3 + 7
    for pkg in ("lidar_alpha", "pkg_two"):
        assert check_bundle(dest / pkg).package == pkg
    done = subprocess.run([MODELZOO, "check-bundle", str(dest / "pkg_two")], capture_output=True, text=True)
    assert done.returncode == 0 and "pkg_two 1.0.0: 7 file(s) match the manifest" in done.stdout
    again = fetch(pin_for(store, ["alpha", "beta", "gamma"]), tmp_path, dest)
    assert again.fetched == [] and again.bytes_downloaded == 0


def test_precisions_and_one_model_of_a_package(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "d"
    fetch(pin_for(store, ["beta"], precisions=["fp16"]), tmp_path, dest)
    names = sorted(p.name for p in (dest / "pkg_two").iterdir())
    assert names == sorted([BUNDLE_MANIFEST, BUNDLE_RECORD, "beta.fp16.onnx", "beta.param.yaml", "label.txt"])
    assert len(check_bundle(dest / "pkg_two").checked) == 3
    (dest / "pkg_two" / "beta.fp16.onnx").unlink()
    with pytest.raises(ModelzooError, match=r"beta.fp16.onnx: missing") as err:
        check_bundle(dest / "pkg_two")
    assert err.value.exit_code == 6


def test_a_name_with_two_contents_in_one_package_is_refused(tmp_path: Path) -> None:
    s = LocalStore(tmp_path / "registry")
    put_release(s, "1.0.0", {"beta": [Art("label.txt", "ros", b"A\n")], "gamma": [Art("label.txt", "ros", b"B\n")]})
    with pytest.raises(
        ModelzooError, match=r"package 'pkg_two': file 'label.txt' of models 'beta' and 'gamma' differs"
    ):
        fetch(pin_for(s, ["beta", "gamma"]), tmp_path, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_layout_refusals(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(ModelzooError, match=r"layout autoware takes target onnx"):
        fetch(pin_for(store, ["alpha"], target="tensorrt-sm86"), tmp_path, tmp_path / "d")
    with pytest.raises(ModelzooError, match=r"no model 'delta'"):
        fetch(pin_for(store, ["delta"]), tmp_path, tmp_path / "d")
    with pytest.raises(ModelzooError, match=r"not a modelzoo bundle"):
        check_bundle(tmp_path)


def test_fetch_cli_layout_option(store: LocalStore, tmp_path: Path) -> None:
    pin = tmp_path / "modelzoo.yaml"
    pin.write_text(yaml.safe_dump({"registry": str(store.root), "version": "1.0.0", "models": ["alpha"]}))
    done = subprocess.run([MODELZOO, "fetch", "--pin", str(pin), "--layout", "autoware", "--dest", str(tmp_path / "d")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d" / "lidar_alpha" / "alpha.onnx").is_file()
    bad = subprocess.run([MODELZOO, "fetch", "--pin", str(pin), "--layout", "flat"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "layout" in bad.stderr


def test_descriptor_autoware_section() -> None:
    assert Autoware(package="lidar_centerpoint").repo_id == "AutowareFoundation/lidar_centerpoint"
    assert Autoware(package="x", repository="me/y").repo_id == "me/y"
    from pipelines.descriptor import load_descriptor
    from tests.conftest import REPO

    packages = {m: load_descriptor(REPO, m).autoware for m in ("centerpoint", "yolox", "yolox_dynamic")}
    assert {m: a.package for m, a in packages.items() if a} == {
        "centerpoint": "lidar_centerpoint", "yolox": "tensorrt_yolox", "yolox_dynamic": "tensorrt_yolox",
    }  # fmt: skip
    data = yaml.safe_load((REPO / "models" / "yolox" / "model.yaml").read_text())
    data["autoware"] = {"package": "tensorrt_yolox", "repository": "no-slash"}
    with pytest.raises(DescriptorError, match=r"model.yaml: autoware.repository: String should match"):
        parse_descriptor(data, "models/yolox/model.yaml")


def test_token_stays_out_of_argv_and_messages(tmp_path: Path) -> None:
    git = _Git(tmp_path, "https://huggingface.co", "hf_secret123")
    git.run("init", "-q")
    header = git.out("config", "--get", "http.https://huggingface.co/.extraheader")
    assert header.startswith("Authorization: Basic ") and "hf_secret123" not in header
    assert git.redact("fatal: https://x:hf_secret123@huggingface.co") == "fatal: https://x:***@huggingface.co"
    with pytest.raises(ModelzooError, match=r"\*\*\*") as err:
        git.run("hf_secret123")  # git: 'hf_secret123' is not a git command
    assert "hf_secret123" not in str(err.value)


def test_precision_folders_as_the_manifest_names_them(tmp_path: Path) -> None:
    s = LocalStore(tmp_path / "registry")
    arts = [Art("alpha.onnx", "onnx", b"32", "fp32"), Art("int8/alpha.onnx", "onnx", b"8", "int8"),
            Art("alpha.param.yaml", "ros", b"a: 1\n")]  # fmt: skip
    put_release(s, "1.0.0", {"alpha": arts})
    dest = tmp_path / "d"
    fetch(pin_for(s, ["alpha"]), tmp_path, dest)
    assert (dest / "lidar_alpha" / "int8" / "alpha.onnx").read_bytes() == b"8"
    assert check_bundle(dest / "lidar_alpha").checked == ["alpha.onnx", "alpha.param.yaml", "int8/alpha.onnx"]
    (dest / "lidar_alpha" / "int8" / "stale.onnx").write_bytes(b"x")
    assert check_bundle(dest / "lidar_alpha").extra == ["int8/stale.onnx"]


def test_moving_a_model_to_another_package_is_a_major_change(tmp_path: Path) -> None:
    from pipelines.registry.manifest import AutowarePackage
    from pipelines.registry.versioning import compare_model
    from tests.consumer_registry import model_entry

    none = model_entry(LocalStore(tmp_path), "alpha", standard_files("alpha"))
    one, two = (
        none.model_copy(update={"autoware": AutowarePackage(package=p, repository=f"AutowareFoundation/{p}")})
        for p in ("lidar_a", "lidar_b")
    )
    assert [(c.level, c.reason) for c in compare_model(none, one)] == [
        ("Y", "Autoware package changed (none -> AutowareFoundation/lidar_a)")
    ]
    assert [c.level for c in compare_model(one, two)] == ["X"]
    assert [c.level for c in compare_model(one, one)] == ["Z"]


def test_signature_travels_with_the_bundle_and_check_bundle_verifies_it(store: LocalStore, tmp_path: Path) -> None:
    """A signed release fetched in the Autoware layout carries its manifest's signature; `check-bundle
    --public-key` verifies it before any sha256, and refuses another key, an edited manifest and a
    folder without the signature (exit 6, one line)."""
    from tests.consumer_registry import sign_release

    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("zoo", "other"):
        done = subprocess.run(
            [MODELZOO, "registry", "keygen", str(keys / f"{name}.pem"), str(keys / f"{name}.pub")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    sign_release(store, "1.0.0", keys / "zoo.pem")
    dest = tmp_path / "autoware_data"
    fetch(pin_for(store, ["alpha"]), tmp_path, dest)
    folder = dest / "lidar_alpha"
    assert (folder / BUNDLE_MANIFEST).read_bytes() == store.root.joinpath("releases/1.0.0/manifest.json").read_bytes()
    assert (folder / BUNDLE_SIGNATURE).read_bytes() == store.root.joinpath(
        "releases/1.0.0/manifest.json.sig"
    ).read_bytes()

    def check(key: str) -> subprocess.CompletedProcess[str]:
        cmd = [MODELZOO, "check-bundle", str(folder), "--public-key", str(keys / key)]
        return subprocess.run(cmd, capture_output=True, text=True)

    ok = check("zoo.pub")
    assert ok.returncode == 0 and "lidar_alpha 1.0.0: 3 file(s) match the manifest" in ok.stdout, ok.stderr
    wrong = check("other.pub")
    assert wrong.returncode == 6 and "signed by another key" in wrong.stderr, wrong.stderr
    manifest = (folder / BUNDLE_MANIFEST).read_bytes()
    (folder / BUNDLE_MANIFEST).write_bytes(manifest.replace(b'"1.0.0"', b'"1.0.0" ', 1))
    edited = check("zoo.pub")
    assert edited.returncode == 6 and "changed after it was signed" in edited.stderr, edited.stderr
    (folder / BUNDLE_MANIFEST).write_bytes(manifest)
    (folder / BUNDLE_SIGNATURE).unlink()
    unsigned = check("zoo.pub")
    assert unsigned.returncode == 6 and "not found: the release is unsigned" in unsigned.stderr, unsigned.stderr
    for proc in (wrong, edited, unsigned):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
