"""Face model packs behind one interface."""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.errors import ModelError
from ..imaging import decode
from .packs import PACKS, pack_files

log = logging.getLogger("consentry.faces")

EMBEDDING_DIM = 512



@dataclass(frozen=True)
class DetectedFace:
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the analysed image
    score: float
    embedding: np.ndarray = field(repr=False)  # (dim,) float32, L2-normalised
    landmarks: np.ndarray | None = field(default=None, repr=False)

    @property
    def size(self) -> float:
        return min(self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1])


@dataclass(frozen=True)
class ModelConfig:
    pack: str = "buffalo_s"
    model_dir: Path | None = None
    device: str = "cpu"  # cpu | cuda
    threads: int = 2
    det_size: int = 640
    min_face: int = 24
    min_score: float = 0.5

    @classmethod
    def from_settings(cls, s) -> "ModelConfig":  # noqa: ANN001
        return cls(pack=s.model_pack, model_dir=s.model_dir, device=s.model_device, threads=s.model_threads,
                   det_size=s.model_det_size, min_face=s.face_min_size, min_score=s.face_min_score)


class FaceModel(Protocol):
    model_id: str
    dim: int

    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]: ...
    def analyze_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]: ...


def file_id(path: Path) -> str:
    """A short content hash of a model file: part of the model_id, so another file means another id."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def providers_for(device: str) -> list[str]:
    if device == "cuda":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelError("model_device=cuda but onnxruntime has no CUDA provider "
                             "(install the gpu extra: onnxruntime-gpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class InsightFaceModel:
    """SCRFD detection + ArcFace embedding through onnxruntime (insightface's model classes).

    Detection runs per image; the aligned 112x112 crops of a whole batch of images are embedded
    in one recogniser call (batching across images).
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
        except Exception as exc:
            raise ModelError(f"cannot load model pack {cfg.pack!r}: {type(exc).__name__}: {exc}") from None
        self.providers = providers
        self.model_id = f"{Path(cfg.pack).name if cfg.pack not in PACKS else cfg.pack}-{file_id(rec_path)}"
        self.dim = EMBEDDING_DIM
        self._lock = threading.Lock()  # onnxruntime sessions are thread-safe, insightface's wrappers are not

    def _detect(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bboxes, kpss = self._det.detect(bgr, max_num=0)
        if bboxes is None or len(bboxes) == 0:
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
            found = [self._detect(img) for img in images]
            crops, owners = [], []
            for i, (img, (bboxes, kpss)) in enumerate(zip(images, found)):
                for j in range(len(bboxes)):
                    crops.append(face_align.norm_crop(img, kpss[j], image_size=112))
                    owners.append((i, j))
            embs = np.zeros((0, self.dim), np.float32)
            if crops:
                embs = np.asarray(self._rec.get_feat(crops), dtype=np.float32).reshape(len(crops), -1)
        norms = np.linalg.norm(embs, axis=1, keepdims=True)
        embs = embs / np.where(norms == 0, 1, norms)
        out: list[list[DetectedFace]] = [[] for _ in images]
        for (i, j), e in zip(owners, embs):
            b = found[i][0][j]
            out[i].append(DetectedFace(bbox=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), score=float(b[4]),
                                       embedding=e, landmarks=found[i][1][j]))
        return out


class HashFaceModel:
    """Fake for unit tests: one 'face' per image whose embedding derives from the pixels' hash.

    Images that are a flat single colour have no face. Same pixels → same embedding.
    """

    model_id = "hashface-test"
    dim = EMBEDDING_DIM

    def analyze(self, bgr: np.ndarray) -> list[DetectedFace]:
        if bgr.size == 0 or int(bgr.max()) == int(bgr.min()):
            return []
        seed = int.from_bytes(hashlib.sha256(bgr.tobytes()).digest()[:8], "little")
        e = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        h, w = bgr.shape[:2]
        return [DetectedFace(bbox=(w * 0.25, h * 0.25, w * 0.75, h * 0.75), score=0.99, embedding=e / np.linalg.norm(e))]

    def analyze_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        return [self.analyze(i) for i in images]


_cache: dict[ModelConfig, FaceModel] = {}
_cache_lock = threading.Lock()


def load_model(cfg: ModelConfig) -> FaceModel:
    """The configured model pack, loaded once per process."""
    with _cache_lock:
        if cfg not in _cache:
            if cfg.pack == HashFaceModel.model_id:
                _cache[cfg] = HashFaceModel()
            else:
                kind, det_path, rec_path = pack_files(cfg.pack, cfg.model_dir)
                if kind == "yunet":
                    from .yunet import YuNetSFaceModel

                    _cache[cfg] = YuNetSFaceModel(cfg, det_path, rec_path)
                else:
                    _cache[cfg] = InsightFaceModel(cfg, det_path, rec_path)
        return _cache[cfg]


def decode_image_bytes(data: bytes, max_pixels: int = 40_000_000) -> np.ndarray:
    """Untrusted bytes → BGR array for the models (raises ImageRejected)."""
    return decode(data, max_pixels=max_pixels).bgr
