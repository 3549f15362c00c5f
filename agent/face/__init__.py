"""Face analysis on the device: detection (BlazeFace), 468 landmarks (FaceMesh) and irises, run with
Google's LiteRT interpreter on model files pinned by SHA-256 (``models.json``)."""

from .detector import Detection, FaceDetector
from .mesh import Mesh, face_mesh
from .models import ModelIntegrity, ModelMissing

__all__ = ["Detection", "FaceDetector", "Mesh", "face_mesh", "ModelIntegrity", "ModelMissing"]
