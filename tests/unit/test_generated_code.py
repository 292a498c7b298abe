"""The committed protobuf modules must match their .proto files (`make proto` regenerates them)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("proto", "outputs", "grpc"),
    [
        (
            "infra/contracts/recommend.proto",
            ["recommend_pb2.py", "recommend_pb2.pyi", "recommend_pb2_grpc.py"],
            True,
        ),
        (
            "infra/contracts/ingest.proto",
            ["ingest_pb2.py", "ingest_pb2.pyi", "ingest_pb2_grpc.py"],
            True,
        ),
        ("features/tf_example.proto", ["tf_example_pb2.py", "tf_example_pb2.pyi"], False),
    ],
)
def test_generated_modules_are_up_to_date(tmp_path, proto, outputs, grpc):
    # As `make proto` does: below -I, the file sits where its module sits in the import package.
    in_package = Path("streamrec") / proto
    (tmp_path / in_package.parent).mkdir(parents=True)
    shutil.copy(ROOT / proto, tmp_path / in_package)
    # In a subprocess: protoc in-process can crash once TensorFlow's protobuf is loaded.
    args = [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--pyi_out=."]
    if grpc:
        args.append("--grpc_python_out=.")
    subprocess.run([*args, str(in_package)], check=True, cwd=tmp_path)
    for name in outputs:
        fresh = (tmp_path / in_package.parent / name).read_text()
        committed = Path(proto).parent / name
        assert fresh == (ROOT / committed).read_text(), f"{committed} is stale: run `make proto`"
