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
            "serving/recommend.proto",
            ["recommend_pb2.py", "recommend_pb2.pyi", "recommend_pb2_grpc.py"],
            True,
        ),
        ("features/tf_example.proto", ["tf_example_pb2.py", "tf_example_pb2.pyi"], False),
    ],
)
def test_generated_modules_are_up_to_date(tmp_path, proto, outputs, grpc):
    (tmp_path / Path(proto).parent).mkdir()
    shutil.copy(ROOT / proto, tmp_path / proto)
    # In a subprocess: protoc in-process can crash once TensorFlow's protobuf is loaded.
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{tmp_path}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
    ]
    if grpc:
        args.append(f"--grpc_python_out={tmp_path}")
    subprocess.run([*args, str(tmp_path / proto)], check=True)
    package = Path(proto).parent
    for name in outputs:
        fresh = (tmp_path / package / name).read_text()
        assert fresh == (ROOT / package / name).read_text(), (
            f"{package / name} is stale: run `make proto`"
        )
