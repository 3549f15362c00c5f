"""Face analysis on the device: detection (BlazeFace), 468 landmarks (FaceMesh) and irises, run with
Google's LiteRT interpreter on model files pinned by SHA-256 (``models.json``).

The names below are imported when first used, not with the package: ``agent.face.models`` (where
the model files are) must not bring OpenCV into a process that runs no face model (the daemon,
``docs/architecture.md``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.face.detector import Detection, FaceDetector
    from agent.face.mesh import Mesh, face_mesh
    from agent.face.models import ModelIntegrity, ModelMissing

_WHERE = {"Detection": "detector", "FaceDetector": "detector", "Mesh": "mesh", "face_mesh": "mesh",
          "ModelIntegrity": "models", "ModelMissing": "models"}

__all__ = ["Detection", "FaceDetector", "Mesh", "face_mesh", "ModelIntegrity", "ModelMissing"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"agent.face.{_WHERE[name]}"), name)
