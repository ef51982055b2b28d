"""The face-model interface and the values every pack shares (no pack imports another)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.errors import ModelError

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
    det_batch: int = 1  # images per detector call (one tensor); 1 is fastest on CPU, a GPU wants 32+
    rec_batch: int = 64  # aligned faces per recogniser call, across images

    @classmethod
    def from_settings(cls, s) -> ModelConfig:
        det_batch = s.model_det_batch or (32 if s.model_device == "cuda" else 1)
        return cls(pack=s.model_pack, model_dir=s.model_dir, device=s.model_device, threads=s.model_threads,
                   det_size=s.model_det_size, min_face=s.face_min_size, min_score=s.face_min_score,
                   det_batch=det_batch, rec_batch=s.model_rec_batch)


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
