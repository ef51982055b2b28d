"""The permissive pack: YuNet detection (MIT) + SFace embedding (Apache-2.0) through OpenCV.

OpenCV's ``FaceDetectorYN`` and ``FaceRecognizerSF`` run the two ``.onnx`` files. SFace embeddings
are 128-d; they are zero-padded to the face collection's 512 dimensions, which leaves every cosine
similarity unchanged (the ``model_id`` keeps the two embedding spaces apart in search).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from .types import EMBEDDING_DIM, DetectedFace, ModelConfig, file_id

SFACE_DIM = 128


class YuNetSFaceModel:
    """Detects at most ``det_size`` pixels on the long side, aligns and embeds at full resolution."""

    def __init__(self, cfg: ModelConfig, det_path: Path, rec_path: Path) -> None:
        import cv2

        if cfg.device == "cuda":
            backend, target = cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA
        else:
            backend, target = cv2.dnn.DNN_BACKEND_OPENCV, cv2.dnn.DNN_TARGET_CPU
        try:
            cv2.setNumThreads(cfg.threads)
            self._det = cv2.FaceDetectorYN.create(str(det_path), "", (cfg.det_size, cfg.det_size),
                                                  min(cfg.min_score, 0.5), 0.3, 5000, backend, target)
            self._rec = cv2.FaceRecognizerSF.create(str(rec_path), "", backend, target)
        except cv2.error as exc:
            raise ModelError(f"cannot load model pack {cfg.pack!r}: {exc}") from None
        self.cfg = cfg
        self.model_id = f"yunet_sface-{file_id(rec_path)}"
        self.dim = EMBEDDING_DIM
        self.providers = ["opencv-cuda" if cfg.device == "cuda" else "opencv-cpu"]
        self._lock = threading.Lock()  # the OpenCV objects keep per-call state (input size)

    def _detect(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        h, w = bgr.shape[:2]
        scale = min(1.0, self.cfg.det_size / max(h, w))
        small = bgr if scale == 1.0 else cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                    interpolation=cv2.INTER_AREA)
        self._det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._det.detect(small)
        if faces is None or len(faces) == 0:
            return np.zeros((0, 15), np.float32)
        faces = faces.astype(np.float32).copy()
        faces[:, :14] /= scale  # box (x, y, w, h) and 5 landmarks back to full-resolution pixels
        keep = (faces[:, 14] >= self.cfg.min_score) & (np.minimum(faces[:, 2], faces[:, 3]) >= self.cfg.min_face)
        return faces[keep]

    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]:
        return self.analyze_batch([bgr])[0]

    def analyze_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        out: list[list[DetectedFace]] = []
        with self._lock:
            for img in images:
                found = []
                for row in self._detect(img):
                    feat = np.asarray(self._rec.feature(self._rec.alignCrop(img, row)), np.float32).reshape(-1)
                    n = float(np.linalg.norm(feat))
                    emb = np.zeros(self.dim, np.float32)
                    emb[:SFACE_DIM] = feat / (n or 1.0)
                    x, y, w, h = (float(v) for v in row[:4])
                    found.append(DetectedFace(bbox=(x, y, x + w, y + h), score=float(row[14]), embedding=emb,
                                              landmarks=row[4:14].reshape(5, 2).copy()))
                out.append(found)
        return out
