#!/usr/bin/env bash
# Regenerate the Python gRPC code and its type stubs (.pyi) from proto/capture_agent/v1/*.proto (needs grpcio-tools, a test
# extra). The generated files are committed; imports are made package-relative so they load as
# proto.capture_agent.v1.*.
set -euo pipefail
cd "$(dirname "$0")/../proto"
PY=${PYTHON:-../.venv/bin/python}
"$PY" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. capture_agent/v1/*.proto
sed -i 's/^from capture_agent\.v1 import /from . import /' capture_agent/v1/*_pb2_grpc.py
