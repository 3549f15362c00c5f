"""The generated Python in proto/ is what protoc makes from the .proto files in the tree today."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current(tmp_path):
    work = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", work, ignore=shutil.ignore_patterns("__pycache__", "*_pb2*.py", "*_pb2*.pyi"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "gen_proto.sh", tmp_path / "scripts" / "gen_proto.sh")
    subprocess.run(["bash", str(tmp_path / "scripts" / "gen_proto.sh")], check=True, env={"PYTHON": sys.executable,
                   "PATH": "/usr/bin:/bin"}, capture_output=True)
    for generated in sorted((ROOT / "proto" / "capture_agent" / "v1").glob("*_pb2*.py*")):
        fresh = work / "capture_agent" / "v1" / generated.name
        assert fresh.read_text() == generated.read_text(), f"{generated.name} is stale: run scripts/gen_proto.sh"
