"""Face models: pinned by SHA-256, verified at load; detection and landmarks on a real photo."""

import hashlib
import json

import numpy as np
import pytest

from agent.face import FaceDetector, ModelIntegrity, ModelMissing, face_mesh
from agent.face.models import MANIFEST_PATH, load_verified, models_dir


def test_manifest_pins_every_model_and_files_match():
    m = json.loads(MANIFEST_PATH.read_text())
    for name, digest in m["models"].items():
        data = (models_dir() / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


def test_missing_and_tampered_models_give_typed_errors(tmp_path):
    name = "face_landmark.tflite"
    with pytest.raises(ModelMissing) as ei:
        load_verified(name, tmp_path)
    assert ei.value.code == "QLT_MODEL_MISSING" and "make setup" in ei.value.message
    data = bytearray((models_dir() / name).read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrity) as ei:
        load_verified(name, tmp_path)
    assert ei.value.code == "QLT_MODEL_INTEGRITY"
    with pytest.raises(ModelIntegrity):
        load_verified("not_pinned.tflite", tmp_path)


def test_detection_landmarks_and_irises_on_a_real_photo():
    from skimage import data
    img = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    dets = FaceDetector().detect(img)
    assert len(dets) == 1 and dets[0].score > 0.8
    m = face_mesh(img, dets[0])
    assert m.landmarks.shape == (468, 3) and m.presence > 0.9
    right, left = m.pupils
    # Pupils measured by hand on the photo: about (202, 101) and (246, 103).
    assert np.linalg.norm(right - (202, 101)) < 4 and np.linalg.norm(left - (246, 103)) < 4
    assert 38 < m.ipd_px < 48


def test_no_face_in_a_photo_without_people():
    from skimage import data
    img = np.ascontiguousarray(data.coffee()[:, :, ::-1])
    assert FaceDetector().detect(img) == []


def test_tensor_indices_are_every_interpreters_own():
    # Asked once per model (not per frame): they must be what each thread's interpreter reports.
    import threading

    from agent.face.mesh import IRIS_MODEL, MESH_MODEL
    from agent.face.models import interpreter, tensor_indices

    def details(name: str) -> tuple[int, tuple[int, ...]]:
        it = interpreter(name)
        return it.get_input_details()[0]["index"], tuple(d["index"] for d in it.get_output_details())
    other: dict[str, tuple[int, tuple[int, ...]]] = {}
    t = threading.Thread(target=lambda: other.update({n: details(n) for n in (MESH_MODEL, IRIS_MODEL)}))
    t.start()
    t.join()
    for name in (MESH_MODEL, IRIS_MODEL):
        assert tensor_indices(name) == details(name) == other[name]
        assert len(tensor_indices(name)[1]) == 2


def test_a_detector_verifies_its_model_when_made_but_builds_no_interpreter_on_that_thread(tmp_path, monkeypatch):
    import threading

    from agent.face import models
    from agent.face.detector import MODEL

    def make() -> dict:
        FaceDetector()
        return dict(getattr(models._PER_THREAD, "interpreters", {}))
    made: list = []
    t = threading.Thread(target=lambda: made.append(make()))
    t.start()
    t.join()
    assert made == [{}]                                  # the making thread holds no interpreter
    from skimage import data
    img = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    ran: list = []
    t = threading.Thread(target=lambda: ran.append((len(FaceDetector().detect(img)),
                                                    MODEL in models._PER_THREAD.interpreters)))
    t.start()
    t.join()
    assert ran == [(1, True)]                            # the running thread builds its own on first use

    # A bad model file still fails the making of a detector, with the same typed errors.
    bad = bytearray((models_dir() / MODEL).read_bytes())
    bad[1000] ^= 0xFF
    monkeypatch.setenv("CAPTURE_AGENT_MODELS", str(tmp_path))
    models._model_bytes.cache_clear()
    try:
        with pytest.raises(ModelMissing):
            FaceDetector()
        (tmp_path / MODEL).write_bytes(bytes(bad))
        with pytest.raises(ModelIntegrity):
            FaceDetector()
    finally:
        monkeypatch.delenv("CAPTURE_AGENT_MODELS")
        models._model_bytes.cache_clear()
