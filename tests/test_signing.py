"""Signed release manifests: fetch, `release verify` and `registry audit` against moto's S3 server.

Real keys (`modelzoo registry keygen`), real OpenSSF model-signing bundles; the attacker here has
write access to the bucket but not the private key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.consumer.fetch import fetch
from pipelines.consumer.pin import Pin
from pipelines.registry.manifest import Manifest, manifest_path
from pipelines.registry.signing import SignatureError, signature_path
from pipelines.registry.stores import S3Store
from tests.conftest import S3Server
from tests.consumer_registry import put_release, sign_release, standard_files
from tests.test_consumer_fetch import run_cli, write_pin


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    for name in ("zoo", "other"):
        proc = run_cli("registry", "keygen", str(d / f"{name}.pem"), str(d / f"{name}.pub"), cwd=d)
        assert proc.returncode == 0, proc.stderr
    assert (d / "zoo.pem").stat().st_mode & 0o777 == 0o600
    return {"key": d / "zoo.pem", "pub": d / "zoo.pub", "other": d / "other.pub", "other_key": d / "other.pem"}


@pytest.fixture
def registry(s3_server: S3Server, s3_bucket: str) -> S3Store:
    return S3Store(f"s3://{s3_bucket}/registry", endpoint_url=s3_server.endpoint)


def pin_for(store: S3Store, pub: Path | None, **over: object) -> Pin:
    data: dict[str, object] = {
        "registry": store.url,
        "endpoint_url": store.endpoint_url,
        "version": "1.2.0",
        "models": ["alpha"],
        "public_key": str(pub) if pub else None,
    }
    return Pin.model_validate({**data, **over})


def signed_release(store: S3Store, keys: dict[str, Path]) -> Manifest:
    manifest = put_release(store, "1.2.0", {"alpha": standard_files("alpha")})
    sign_release(store, "1.2.0", keys["key"])
    return manifest


def one_line_refusal(proc, *parts: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 6, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_signed_release_fetches_and_verifies(registry: S3Store, keys: dict[str, Path], tmp_path: Path) -> None:
    manifest = signed_release(registry, keys)
    report = fetch(pin_for(registry, keys["pub"]), tmp_path, tmp_path / "dest")
    assert report.fetched and not any("signature not checked" in w for w in report.warnings)
    onnx = next(f for f in manifest.models["alpha"].files if f.name == "alpha.onnx")
    assert hashlib.sha256((tmp_path / "dest/alpha/alpha.onnx").read_bytes()).hexdigest() == onnx.sha256

    args = ("--registry", registry.url, "--endpoint-url", registry.endpoint_url or "")
    ok = run_cli("release", "verify", "1.2.0", "--public-key", str(keys["pub"]), *args, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "release 1.2.0: signature valid" in ok.stdout and "7 file(s) match their sha256" in ok.stdout

    # An auditor also catches an object replaced without touching the manifest (exit 6).
    registry.put_bytes(onnx.path, b"replaced")
    bad = run_cli("release", "verify", "1.2.0", "--public-key", str(keys["pub"]), *args, cwd=tmp_path)
    one_line_refusal(bad, onnx.path, "signed manifest")


def test_consistent_rewrite_is_refused_by_its_signature(
    registry: S3Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    """Write access to the bucket: replace an object AND its sha256/size in the manifest, keep the signature."""
    manifest = signed_release(registry, keys)
    evil = b"onnx:" + b"malicious weights" * 40
    files = manifest.models["alpha"].files
    i = next(i for i, f in enumerate(files) if f.name == "alpha.onnx")
    registry.put_bytes(files[i].path, evil)
    files[i] = files[i].model_copy(update={"sha256": hashlib.sha256(evil).hexdigest(), "size": len(evil)})
    registry.put_bytes(manifest_path("1.2.0"), manifest.to_json().encode())

    # Without a pinned key, sha256 alone is satisfied: this is what the signature adds.
    unsigned_pin = pin_for(registry, None)
    got = fetch(unsigned_pin, tmp_path, tmp_path / "trusting")
    assert (tmp_path / "trusting/alpha/alpha.onnx").read_bytes() == evil
    assert any("signature not checked" in w for w in got.warnings)

    pin = write_pin(tmp_path / "modelzoo.yaml", pin_for(registry, keys["pub"]))
    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(tmp_path / "dest"), cwd=tmp_path)
    one_line_refusal(proc, signature_path("1.2.0"), "changed after it was signed")
    assert not (tmp_path / "dest").exists()
    listed = run_cli("fetch", "--pin", str(pin), "--print-checksums", cwd=tmp_path)
    one_line_refusal(listed, "changed after it was signed")
    audit = run_cli(
        "release", "verify", "1.2.0", "--public-key", str(keys["pub"]),
        "--registry", registry.url, "--endpoint-url", registry.endpoint_url or "", cwd=tmp_path,
    )  # fmt: skip
    one_line_refusal(audit, "changed after it was signed")


def test_wrong_key_and_unsigned_are_refused(registry: S3Store, keys: dict[str, Path], tmp_path: Path) -> None:
    signed_release(registry, keys)
    with pytest.raises(SignatureError, match=r"manifest.json.sig: signed by another key than public key .*other.pub"):
        fetch(pin_for(registry, keys["other"]), tmp_path, tmp_path / "wrong")

    # Re-signed by the attacker's own key: still not the pinned one.
    sign_release(registry, "1.2.0", keys["other_key"])
    with pytest.raises(SignatureError, match=r"signed by another key"):
        fetch(pin_for(registry, keys["pub"]), tmp_path, tmp_path / "resigned")

    put_release(registry, "1.3.0", {"alpha": standard_files("alpha")})
    pin = write_pin(tmp_path / "modelzoo.yaml", pin_for(registry, keys["pub"], version="1.3.0"))
    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(tmp_path / "dest"), cwd=tmp_path)
    one_line_refusal(proc, f"{signature_path('1.3.0')}: not found: the release is unsigned")

    registry.put_bytes(signature_path("1.3.0"), b"not a bundle")
    proc = run_cli("fetch", "--pin", str(pin), "--dest", str(tmp_path / "dest"), cwd=tmp_path)
    one_line_refusal(proc, "invalid signature")
    assert not (tmp_path / "dest").exists() and not any(tmp_path.glob("wrong")) and not any(tmp_path.glob("resigned"))


def test_alias_and_its_target_are_both_verified(registry: S3Store, keys: dict[str, Path], tmp_path: Path) -> None:
    signed_release(registry, keys)
    put_release(registry, "1.2.1", {}, alias_of="1.2.0")
    with pytest.raises(SignatureError, match=r"1.2.1/manifest.json.sig: not found"):
        fetch(pin_for(registry, keys["pub"], version="1.2.1"), tmp_path, tmp_path / "a")
    sign_release(registry, "1.2.1", keys["key"])
    report = fetch(pin_for(registry, keys["pub"], version="1.2.1"), tmp_path, tmp_path / "b")
    assert report.release.resolved == "1.2.0" and report.fetched

    registry.delete(signature_path("1.2.0"))  # the alias is signed, what it points at is not
    with pytest.raises(SignatureError, match=r"1.2.0/manifest.json.sig: not found"):
        fetch(pin_for(registry, keys["pub"], version="1.2.1"), tmp_path, tmp_path / "c")


def test_audit_reports_unsigned_releases(registry: S3Store, keys: dict[str, Path], tmp_path: Path) -> None:
    signed_release(registry, keys)
    put_release(registry, "1.3.0", {"alpha": standard_files("alpha")})
    args = ("--registry", registry.url, "--endpoint-url", registry.endpoint_url or "")
    plain = run_cli("registry", "audit", *args, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "release 1.3.0: unsigned" in plain.stdout and "release 1.2.0" not in plain.stdout
    assert "1 release(s) unsigned" in plain.stdout

    strict = run_cli("registry", "audit", "--public-key", str(keys["pub"]), *args, cwd=tmp_path)
    assert strict.returncode == 6 and "1 release(s) unsigned or badly signed" in strict.stderr
    assert "release 1.3.0:" in strict.stdout and "release 1.2.0" not in strict.stdout


def test_pin_public_key_checked_when_pinning(registry: S3Store, keys: dict[str, Path], tmp_path: Path) -> None:
    signed_release(registry, keys)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/zoo.pub").write_bytes(keys["pub"].read_bytes())
    args = ("--registry", registry.url, "--endpoint-url", registry.endpoint_url or "", "--version", "1.2.0")
    made = run_cli("pin", *args, "--models", "alpha", "--public-key", "keys/zoo.pub", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "public_key: keys/zoo.pub" in (tmp_path / "modelzoo.yaml").read_text()
    assert run_cli("fetch", "--no-progress", cwd=tmp_path).returncode == 0

    (tmp_path / "keys/zoo.pub").write_text("not a key\n")
    bad = run_cli("fetch", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "public_key keys/zoo.pub: not a PEM public key" in bad.stderr


def test_print_checksums_lists_every_file_fetch_writes(
    registry: S3Store, keys: dict[str, Path], tmp_path: Path
) -> None:
    signed_release(registry, keys)
    pin = write_pin(tmp_path / "modelzoo.yaml", pin_for(registry, keys["pub"], dest="dest"))
    listed = run_cli("fetch", "--print-checksums", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "alpha/modelzoo-release.json" in listed.stdout
    assert run_cli("fetch", "--pin", str(pin), "--no-progress", cwd=tmp_path).returncode == 0
    written = sorted(p.relative_to(tmp_path / "dest").as_posix() for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert sorted(line.split("  ", 1)[1] for line in listed.stdout.splitlines()) == written
    (tmp_path / "SUMS").write_text(listed.stdout)
    import subprocess

    check = subprocess.run(["sha256sum", "-c", str(tmp_path / "SUMS")], cwd=tmp_path / "dest", capture_output=True)
    assert check.returncode == 0, check.stdout
