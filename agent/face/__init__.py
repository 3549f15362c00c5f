"""Face analysis on the device: detection (BlazeFace), 468 landmarks (FaceMesh) and irises, run with
Google's LiteRT interpreter on model files pinned by SHA-256 (``models.json``)."""

from agent.face.detector import Detection, FaceDetector
from agent.face.mesh import Mesh, face_mesh
from agent.face.models import ModelIntegrity, ModelMissing

__all__ = ["Detection", "FaceDetector", "Mesh", "face_mesh", "ModelIntegrity", "ModelMissing"]
