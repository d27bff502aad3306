"""The committed generated protobuf code matches the .proto files."""

from __future__ import annotations

from pathlib import Path

from proto.generate import ROOT, generate, proto_files


def test_generated_code_matches_proto_files(tmp_path: Path) -> None:
    generate(tmp_path)
    for proto in proto_files():
        stem = proto.removesuffix(".proto")
        for suffix in ("_pb2.py", "_pb2.pyi"):
            fresh = (tmp_path / f"{stem}{suffix}").read_text()
            committed = (ROOT / f"{stem}{suffix}").read_text()
            assert fresh == committed, f"{stem}{suffix} is stale: run `make proto`"


def test_every_proto_file_has_generated_code() -> None:
    assert proto_files(), "no .proto files found"
    for proto in proto_files():
        assert (ROOT / proto.replace(".proto", "_pb2.py")).exists()
