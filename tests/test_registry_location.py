"""RegistryLocation: the registry URL and endpoint, resolved once from flag, environment or pin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import UsageError
from pipelines.registry.location import ENDPOINT_ENV, REGISTRY_ENV, RegistryLocation
from pipelines.registry.stores import LocalStore, S3Store


def test_flag_beats_environment(monkeypatch: pytest.MonkeyPatch, s3_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = s3_server.new_bucket()
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "from-env"))
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:9")  # nothing listens there
    flagged = RegistryLocation.resolve(f"s3://{bucket}/zoo", s3_server.endpoint)
    assert flagged == RegistryLocation(f"s3://{bucket}/zoo", s3_server.endpoint)
    store = flagged.store()
    assert isinstance(store, S3Store) and store.put_bytes("a/b.txt", b"x") and store.exists("a/b.txt")
    assert flagged.dvc_remote_url() == f"s3://{bucket}/zoo/dvc"

    from_env = RegistryLocation.resolve()
    assert from_env == RegistryLocation(str(tmp_path / "from-env"), "http://127.0.0.1:9")
    assert isinstance(from_env.store(), LocalStore)
    assert from_env.dvc_remote_url() == str(tmp_path / "from-env" / "dvc")


def test_endpoint_comes_from_the_location_only(monkeypatch: pytest.MonkeyPatch, s3_server) -> None:  # type: ignore[no-untyped-def]
    """The store uses the endpoint it is given: the environment is read by RegistryLocation.resolve alone."""
    bucket = s3_server.new_bucket()
    monkeypatch.setenv(ENDPOINT_ENV, s3_server.endpoint)
    assert RegistryLocation.parse(f"s3://{bucket}").endpoint_url is None
    assert S3Store(f"s3://{bucket}").endpoint_url is None
    resolved = RegistryLocation.resolve(f"s3://{bucket}")
    assert resolved.endpoint_url == s3_server.endpoint
    assert list(resolved.store().list("")) == []  # reaches the moto server through the resolved endpoint


def test_relative_paths_and_empty_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    assert RegistryLocation.parse("reg", base=tmp_path).url == str(tmp_path / "reg")
    assert RegistryLocation.parse("reg", "not a url", base=tmp_path).store()  # only S3 uses an endpoint
    assert RegistryLocation.parse(f"file://{tmp_path}/reg").url == str(tmp_path / "reg")
    with pytest.raises(UsageError, match="registry URL is empty"):
        RegistryLocation.resolve(embedded=False)
    monkeypatch.setenv("MODELZOO_ROOT", str(tmp_path))
    assert RegistryLocation.resolve().url == str(tmp_path / "registry")  # the embedded registry


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--registry", "ftp://host/zoo"], "ftp://host/zoo: unsupported registry URL"),
        (["--registry", "s3://zoo", "--endpoint-url", "not a url"], "endpoint URL 'not a url'"),
    ],
)
def test_bad_location_is_one_line_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    cmd = [sys.executable, "-m", "pipelines.cli", "registry", "ls", *args]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and expected in done.stderr and "Traceback" not in done.stderr


def test_dvc_remote_is_one_name_and_the_old_one_goes(tmp_path: Path) -> None:
    """publish and `modelzoo ci dvc-remote` configure the one remote `registry`; the second name publish
    once wrote (`modelzoo-registry`) is removed from .dvc/config.local."""
    from pipelines.registry.dvcremote import OLD_REMOTE, REMOTE, configure_remote

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q", "--no-scm"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "--local", OLD_REMOTE, str(tmp_path / "old")], cwd=tmp_path, check=True)
    url = configure_remote(tmp_path, RegistryLocation.parse("reg", base=tmp_path))
    assert url == str(tmp_path / "reg" / "dvc")
    listed = subprocess.run([*dvc, "remote", "list"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert listed.stdout.split() == [REMOTE, url, "(default)"]
    local = (tmp_path / ".dvc" / "config.local").read_text()
    assert OLD_REMOTE not in local and "verify = true" in local and f"remote = {REMOTE}" in local
