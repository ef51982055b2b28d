"""SCRFD detection + ArcFace embedding through onnxruntime: the insightface packs (buffalo_s, buffalo_l)."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from .packs import PACKS
from .types import EMBEDDING_DIM, DetectedFace, ModelConfig, file_id, providers_for

log = logging.getLogger("consentry.faces")


class InsightFaceModel:
    """SCRFD detection + ArcFace embedding through onnxruntime (insightface's model classes).

    Detection runs ``det_batch`` images per call (1: insightface's own per-image path; more: one
    tensor of letterboxed images, :mod:`.scrfd_batch`, identical boxes); the aligned 112x112 crops
    of every image of a batch are embedded ``rec_batch`` at a time (batching across images).
    """

    def __init__(self, cfg: ModelConfig, det_path: Path, rec_path: Path) -> None:
        import onnxruntime as ort

        self.cfg = cfg
        so = ort.SessionOptions()
        so.intra_op_num_threads = cfg.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        providers = providers_for(cfg.device)
        from insightface.model_zoo import get_model

        try:
            self._det = get_model(str(det_path), providers=providers, sess_options=so)
            self._rec = get_model(str(rec_path), providers=providers, sess_options=so)
            self._det.prepare(ctx_id=0 if cfg.device == "cuda" else -1, input_size=(cfg.det_size, cfg.det_size),
                              det_thresh=min(cfg.min_score, 0.5))
            self._batched = None
            if cfg.det_batch > 1:  # a dynamic-batch session of the same file (insightface's takes one image)
                from .scrfd_batch import BatchedSCRFD

                session = ort.InferenceSession(str(det_path), sess_options=so, providers=providers)
                self._batched = BatchedSCRFD(self._det, session, cfg.det_size)
        except Exception as exc:
            raise ModelError(f"cannot load model pack {cfg.pack!r}: {type(exc).__name__}: {exc}") from None
        self.providers = providers
        self.model_id = f"{Path(cfg.pack).name if cfg.pack not in PACKS else cfg.pack}-{file_id(rec_path)}"
        self.dim = EMBEDDING_DIM
        self._lock = threading.Lock()  # onnxruntime sessions are thread-safe, insightface's wrappers are not

    def _detect(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._batched is None:
            found = [self._det.detect(bgr, max_num=0) for bgr in images]
        else:
            b = self.cfg.det_batch
            found = [f for k in range(0, len(images), b) for f in self._batched.detect(images[k:k + b])]
        return [self._gate(bboxes, kpss) for bboxes, kpss in found]

    def _gate(self, bboxes: np.ndarray | None, kpss: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The faces that pass the quality gates (detection score, smallest side)."""
        if bboxes is None or len(bboxes) == 0 or kpss is None:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        keep = [i for i, b in enumerate(bboxes)
                if b[4] >= self.cfg.min_score and min(b[2] - b[0], b[3] - b[1]) >= self.cfg.min_face]
        return bboxes[keep], kpss[keep]

    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]:
        return self.analyze_batch([bgr])[0]

    def analyze_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        from insightface.utils import face_align

        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # skimage deprecation inside face_align
            found = self._detect(images)
            crops, owners = [], []
            for i, (img, (bboxes, kpss)) in enumerate(zip(images, found)):
                for j in range(len(bboxes)):
                    crops.append(face_align.norm_crop(img, kpss[j], image_size=112))
                    owners.append((i, j))
            r = self.cfg.rec_batch
            parts = [np.asarray(self._rec.get_feat(crops[k:k + r]), dtype=np.float32).reshape(-1, self.dim)
                     for k in range(0, len(crops), r)]
            embs = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        norms = np.linalg.norm(embs, axis=1, keepdims=True)
        embs = (embs / np.where(norms == 0, 1, norms)).astype(np.float32)
        out: list[list[DetectedFace]] = [[] for _ in images]
        for (i, j), e in zip(owners, embs):
            b = found[i][0][j]
            out[i].append(DetectedFace(bbox=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), score=float(b[4]),
                                       embedding=e, landmarks=found[i][1][j]))
        return out
