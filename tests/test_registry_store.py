"""The storage layer (moto's S3 server over HTTP, and a local folder) and the behavioural fingerprint."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import ModelzooError
from pipelines.fileio import sha256_stream
from pipelines.registry.fingerprint import fingerprint, onnx_digest
from pipelines.registry.location import open_store
from pipelines.registry.stores import LocalStore, RegistryError, S3Store
from pipelines.registry.stores.s3 import PART_SIZE


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return open_store(f"file://{tmp_path / 'reg'}")
    server = request.getfixturevalue("s3_server")
    return open_store(f"s3://{server.new_bucket()}/some/prefix", server.endpoint)


def test_conditional_writes(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert store.put_bytes("releases/1.0.0/manifest.json", b"first", if_absent=True)
    assert not store.put_bytes("releases/1.0.0/manifest.json", b"second", if_absent=True)
    assert store.open_read("releases/1.0.0/manifest.json").read() == b"first"
    store.put_bytes("releases/bleedingedge/manifest.json", b"a")
    store.put_bytes("releases/bleedingedge/manifest.json", b"b")  # unconditional: overwritten
    assert store.open_read("releases/bleedingedge/manifest.json").read() == b"b"

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(PART_SIZE + (1 << 20)))  # two parts on S3
    assert store.put_file("models/a/b/1-x/onnx/big.onnx", big, if_absent=True)
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    assert not store.put_file("models/a/b/1-x/onnx/big.onnx", other, if_absent=True)
    assert not store.put_file("models/a/b/1-x/onnx/big.onnx", big, if_absent=True)
    info = store.stat("models/a/b/1-x/onnx/big.onnx")
    assert info is not None and info.size == big.stat().st_size
    with store.open_read("models/a/b/1-x/onnx/big.onnx") as f:
        assert sha256_stream(f)[0] == hashlib.sha256(big.read_bytes()).hexdigest()
    if isinstance(store, S3Store):
        assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads") is None


def test_listing_and_missing_objects(store) -> None:  # type: ignore[no-untyped-def]
    for key in ("models/a/1/x.onnx", "models/a/2/y.onnx", "models/ab/z.onnx", "info/v1/base/info_val.pkl"):
        store.put_bytes(key, key.encode())
    assert [o.key for o in store.list("models/a/")] == ["models/a/1/x.onnx", "models/a/2/y.onnx"]
    assert [o.key for o in store.list("models/a")] == ["models/a/1/x.onnx", "models/a/2/y.onnx", "models/ab/z.onnx"]
    assert [(o.key, o.size) for o in store.list("info/")] == [("info/v1/base/info_val.pkl", 25)]
    assert list(store.list("nothing/")) == []
    assert store.stat("models/a") is None and not store.exists("models/a/3/w.onnx")
    with pytest.raises(RegistryError, match=r"models/a/3/w\.onnx: not found$"):
        store.open_read("models/a/3/w.onnx")
    store.delete("models/a/1/x.onnx")
    assert [o.key for o in store.list("models/a/")] == ["models/a/2/y.onnx"]
    for bad in ("../escape", "/abs", "a/../../b", "a//b"):
        with pytest.raises(RegistryError, match="registry key"):
            store.put_bytes(bad, b"x")


def test_unreachable_endpoint_is_one_line() -> None:
    from conftest import free_port

    store = open_store("s3://zoo/prefix", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError) as err:
        store.stat("releases/1.0.0/manifest.json")
    msg = str(err.value)
    assert msg.startswith("s3://zoo/prefix/releases/1.0.0/manifest.json: Could not connect") and "\n" not in msg


def test_missing_bucket_is_named(s3_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError, match="bucket 'no-such-bucket' does not exist"):
        open_store("s3://no-such-bucket/x", s3_server.endpoint).put_bytes("a", b"x")


def test_urls_pick_the_back_end(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert type(open_store("https://user:secret@example.com/zoo")).__name__ == "HttpStore"
    with pytest.raises(RegistryError, match="unsupported registry URL"):
        open_store("ftp://host/zoo")


def _onnx(path: Path, weights: np.ndarray, commit: str, doc: str = "") -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], doc_string=doc)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weights.shape[1]])],
        [numpy_helper.from_array(weights, "w")],
        doc_string=doc,
    )
    model = helper.make_model(graph, producer_name="modelzoo", producer_version=commit[:3], doc_string=doc)
    model.metadata_props.add(key="git_commit", value=commit)
    onnx.save(model, str(path))


def test_fingerprint_ignores_volatile_metadata_only(tmp_path: Path) -> None:
    w = np.random.default_rng(0).standard_normal((64, 8), dtype=np.float32)
    _onnx(tmp_path / "a.onnx", w, "a" * 40)
    _onnx(tmp_path / "b.onnx", w, "b" * 40, doc="exported somewhere else")
    moved = w.copy()
    moved[3, 2] += 1e-6
    _onnx(tmp_path / "c.onnx", moved, "a" * 40)
    assert (tmp_path / "a.onnx").read_bytes() != (tmp_path / "b.onnx").read_bytes()
    assert onnx_digest(tmp_path / "a.onnx") == onnx_digest(tmp_path / "b.onnx")
    assert onnx_digest(tmp_path / "a.onnx") != onnx_digest(tmp_path / "c.onnx")
    opts = {"precisions": ["fp32"]}
    base = fingerprint([("onnx/m.onnx", tmp_path / "a.onnx")], opts)
    assert fingerprint([("onnx/m.onnx", tmp_path / "b.onnx")], opts) == base
    assert fingerprint([("onnx/m.onnx", tmp_path / "a.onnx")], {"precisions": ["fp32", "fp16"]}) != base

    truncated = tmp_path / "t.onnx"
    truncated.write_bytes((tmp_path / "a.onnx").read_bytes()[:-7])
    with pytest.raises(ModelzooError, match=r"t\.onnx: truncated ONNX file"):
        onnx_digest(truncated)
