"""Behavioural fingerprint of a model: its ONNX graphs + weights without volatile metadata, plus build options.

Re-exporting the same weights at another commit changes the ONNX bytes (git_commit, producer version and
doc strings are stamped in) but not the behaviour, so the file hash cannot serve. `onnx.load` would hold a
whole file (hundreds of MB of weights) in memory, so the protobuf wire format is walked instead, streaming
the large fields (initializers) through the hash and dropping the volatile ones:
    ModelProto: producer_name (2), producer_version (3), doc_string (6), metadata_props (14)
    GraphProto: doc_string (10), metadata_props (16)
    NodeProto:  doc_string (6)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from pipelines.errors import ModelzooError
from pipelines.fileio import CHUNK

_NODE = {"skip": {6}, "descend": {}}
_GRAPH = {"skip": {10, 16}, "descend": {1: _NODE}}
_MODEL = {"skip": {2, 3, 6, 14}, "descend": {7: _GRAPH}}


class _Reader:
    def __init__(self, f: BinaryIO, where: str) -> None:
        self.f, self.where = f, where

    def exact(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelzooError(f"{self.where}: truncated ONNX file")
        return data

    def varint(self) -> tuple[int, bytes] | None:
        raw = b""
        value = shift = 0
        while True:
            b = self.f.read(1)
            if not b:
                if raw:
                    raise ModelzooError(f"{self.where}: truncated ONNX file")
                return None
            raw += b
            value |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return value, raw
            shift += 7
            if shift > 63:
                raise ModelzooError(f"{self.where}: not an ONNX file (bad varint)")

    def stream(self, n: int, digest: Any | None) -> None:
        while n > 0:
            chunk = self.exact(min(n, CHUNK))
            if digest is not None:
                digest.update(chunk)
            n -= len(chunk)


class _Field(NamedTuple):
    number: int
    wire: int
    tag: bytes  # as in the file
    value: bytes  # as in the file: the varint or fixed value, or a length-delimited field's length
    length: int  # a length-delimited field's payload size (the caller reads or skips it), else 0


def _fields(r: _Reader, end: int | None) -> Iterator[_Field]:
    """Each field of a message until byte `end` (EOF at the top level)."""
    while end is None or r.f.tell() < end:
        tag = r.varint()
        if tag is None:
            if end is not None:
                raise ModelzooError(f"{r.where}: truncated ONNX file")
            return
        number, wire = tag[0] >> 3, tag[0] & 7
        if wire in (0, 2):
            value = r.varint()
            if value is None:
                raise ModelzooError(f"{r.where}: truncated ONNX file")
            yield _Field(number, wire, tag[1], value[1], value[0] if wire == 2 else 0)
        elif wire in (1, 5):
            yield _Field(number, wire, tag[1], r.exact(8 if wire == 1 else 4), 0)
        else:
            raise ModelzooError(f"{r.where}: not an ONNX file (wire type {wire} of field {number})")
    if end is not None and r.f.tell() != end:
        raise ModelzooError(f"{r.where}: not an ONNX file (a field overruns its message)")


def _walk(r: _Reader, end: int | None, spec: dict[str, Any], digest: Any) -> None:
    """Hash the fields of one message (until byte `end`, or EOF for the top level)."""
    for f in _fields(r, end):
        if f.number in spec["skip"]:
            r.stream(f.length, None)
        elif f.wire == 2 and f.number in spec["descend"]:
            # The length changes with what is dropped: mark the nesting instead.
            digest.update(f.tag + b"{")
            _walk(r, r.f.tell() + f.length, spec["descend"][f.number], digest)
            digest.update(b"}")
        else:
            digest.update(f.tag + f.value)
            r.stream(f.length, digest)


def onnx_digest(path: Path) -> str:
    """sha256 of an ONNX file's graph + weights, volatile metadata left out; memory stays one chunk."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=CHUNK) as f:
            _walk(_Reader(f, str(path)), None, _MODEL, digest)
    except OSError as err:
        raise ModelzooError(f"{path}: cannot read: {err.strerror}") from None
    return digest.hexdigest()


def fingerprint(onnx_files: Iterable[tuple[str, Path]], build_options: dict[str, Any]) -> str:
    """One hash over (name, graph digest) of every ONNX file and the canonical JSON of the build options."""
    digest = hashlib.sha256()
    for name, path in sorted(onnx_files):
        digest.update(f"{name}\0{onnx_digest(path)}\n".encode())
    digest.update(json.dumps(build_options, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def onnx_io_names(path: Path) -> tuple[list[str], list[str]]:
    """The graph's input and output names (GraphProto fields 11 and 12), read without loading the weights."""
    import onnx

    found: dict[int, list[str]] = {11: [], 12: []}
    try:
        with open(path, "rb", buffering=CHUNK) as f:
            r = _Reader(f, str(path))
            for top in _fields(r, None):
                if top.number != 7 or top.wire != 2:  # ModelProto.graph
                    r.stream(top.length, None)
                    continue
                for g in _fields(r, r.f.tell() + top.length):
                    if g.number in found and g.wire == 2:
                        found[g.number].append(onnx.ValueInfoProto.FromString(r.exact(g.length)).name)
                    else:
                        r.stream(g.length, None)
    except OSError as err:
        raise ModelzooError(f"{path}: cannot read: {err.strerror}") from None
    return found[11], found[12]
