"""Detect and embed faces across a whole poll batch, then check them against the suppression list.

Quality gates (smallest face side, detection score) are the model's, from its ModelConfig. One
``analyze_batch`` call covers up to ``batch`` images; one Milvus search covers every face found.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..core.errors import ConsentryError, ModelError
from ..faces import DetectedFace, FaceModel
from ..faceindex import FaceIndex

log = logging.getLogger("consentry.ingest.embed")


class FaceStage:
    def __init__(self, model: FaceModel, index: FaceIndex, suppression_threshold: float, batch: int = 16) -> None:
        self.model = model
        self.index = index
        self.threshold = suppression_threshold
        self.batch = max(1, batch)

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace] | ModelError]:
        """Faces per BGR image; an image the model fails on gets a ModelError instead (failure as data)."""
        out: list[list[DetectedFace] | ModelError] = []
        for i in range(0, len(images), self.batch):
            chunk = list(images[i:i + self.batch])
            try:
                out.extend(self._clean(f) for f in self.model.analyze_batch(chunk))
            except Exception:  # isolate the image that breaks the batch
                for img in chunk:
                    out.append(self._one(img))
        return out

    def _one(self, img: np.ndarray) -> list[DetectedFace] | ModelError:
        try:
            return self._clean(self.model.analyze(img))
        except ConsentryError as exc:
            return ModelError(f"face model failed: {exc}", reason=getattr(exc, "reason", "model"))
        except Exception as exc:  # onnxruntime / OpenCV errors, translated at this edge
            return ModelError(f"face model failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _clean(faces: list[DetectedFace]) -> list[DetectedFace]:
        """Drop faces whose embedding is unusable (zero or not finite): they could never be searched."""
        return [f for f in faces if np.isfinite(f.embedding).all() and float(np.linalg.norm(f.embedding)) > 0]

    def suppressed(self, embeddings: Sequence[Sequence[float] | np.ndarray]) -> list[bool]:
        """Which embeddings match someone on the suppression list (one Strong Milvus search;
        DependencyError on failure)."""
        if not embeddings:
            return []
        scores = self.index.suppressed_score(list(embeddings), self.model_id, strong=True)
        return [s >= self.threshold for s in scores]
