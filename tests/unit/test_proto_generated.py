"""The committed protobuf / gRPC modules are exactly what `python -m ops.proto` generates from schemas/*.proto."""

from __future__ import annotations

from ops.proto import SCHEMAS, generate, stale


def test_regenerating_gives_the_committed_files() -> None:
    generated = generate()
    assert sorted(generated) == ["ingest_pb2.py", "ingest_pb2.pyi", "ingest_pb2_grpc.py"]
    assert stale() == []
    for name, text in generated.items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text


def test_generated_imports_are_package_relative() -> None:
    text = (SCHEMAS / "ingest_pb2_grpc.py").read_text(encoding="utf-8")
    assert "from . import ingest_pb2 as ingest__pb2" in text
    from schemas import ingest_pb2, ingest_pb2_grpc

    assert ingest_pb2.DESCRIPTOR.package == "dd0c.ingest.v1"
    assert hasattr(ingest_pb2_grpc, "IngestStub")
