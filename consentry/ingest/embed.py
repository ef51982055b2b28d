"""The faces stage: detect and embed a batch's images, then check every face against the suppression list.

One thread runs it, batch after batch, so the model always has the next batch ready (the prepare
threads decode ahead of it). Per batch: the model sees each distinct image once
(``FaceModel.analyze_batch``: detection in device-sized batches, recognition batched across
images), and one Milvus search checks every face found. An image whose bytes were embedded a
moment ago (an earlier batch still in flight, or earlier in this one) reuses those faces.

Quality gates (smallest face side, detection score) are the model's, from its ModelConfig.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ConsentryError, DependencyError, ModelError
from ..core.records import Decision, Face, FaceRef, utcnow
from ..core.retry import RetryPolicy
from ..faceindex import FaceIndex
from ..faces import DetectedFace, FaceModel
from ..imaging import face_crop_jpeg
from .budget import InFlightBytes
from .deadletter import dead_letter
from .decide import after_suppression
from .outcomes import DeadLettered, Outcome, ReadyToWrite, Refused, ToEmbed, Transient, expiry
from .prepare import failed_provenance

log = logging.getLogger("consentry.ingest.embed")


@dataclass(frozen=True)
class _Embedded:
    """What a later record with the same bytes reuses: the leader's faces and decision inputs."""

    url: str
    model_id: str
    faces: tuple[Face, ...]
    refs: tuple[FaceRef, ...]
    found: int
    suppressed: int


class FaceStage:
    def __init__(self, model: FaceModel, index: FaceIndex, suppression_threshold: float, retry: RetryPolicy,
                 retention_max_days: int, store_crops: bool = False, batch: int = 16,
                 budget: InFlightBytes | None = None, remember: int = 256) -> None:
        self.model = model
        self.index = index
        self.threshold = suppression_threshold
        self.retry = retry
        self.retention_max_days = retention_max_days
        self.store_crops = store_crops
        self.batch = max(1, batch)
        self.budget = budget or InFlightBytes(1 << 62)
        self.remember = remember
        self._recent: OrderedDict[str, _Embedded] = OrderedDict()  # sha256 -> faces, this thread only

    @property
    def model_id(self) -> str:
        return self.model.model_id

    # ------------------------------------------------------------------ a batch
    def run(self, items: Sequence[ToEmbed]) -> list[Outcome]:
        """Outcomes for ``items``, in order. Releases their in-flight bytes."""
        try:
            return self._run(items)
        finally:
            self.budget.release(sum(i.reserved for i in items))

    def _run(self, items: Sequence[ToEmbed]) -> list[Outcome]:
        leaders: dict[str, ToEmbed] = {}
        for i in items:
            if i.sha256 not in leaders and i.sha256 not in self._recent:
                leaders[i.sha256] = i
        lead = list(leaders.values())
        found = self.detect([i.evidence.image.bgr for i in lead])  # type: ignore[union-attr]
        flat = [f for fs in found if isinstance(fs, list) for f in fs]
        try:
            flags = self.retry.call(lambda: self.suppressed([f.embedding for f in flat]), "suppression check")
        except DependencyError as exc:  # the suppression list could not be read: redeliver these records
            if not exc.transient:
                raise
            return [Transient(i.msg, "ingest.faces", exc) for i in items]
        out: dict[int, Outcome] = {}
        pos = 0
        for i, fs in zip(lead, found):
            if isinstance(fs, ModelError):
                out[id(i)] = DeadLettered(i.msg, dead_letter(i.msg, "ingest.faces", fs),
                                          failed_provenance(i.evidence, i.verdict, fs.reason, self.retention_max_days))
                continue
            out[id(i)] = self._embedded(i, fs, flags[pos:pos + len(fs)])
            pos += len(fs)
        for i in items:
            if id(i) not in out:  # same bytes as an earlier record: same faces, no second embedding
                out[id(i)] = self._follower(i, leaders.get(i.sha256), out)
        return [out[id(i)] for i in items]

    def _embedded(self, i: ToEmbed, found: list[DetectedFace], suppressed: list[bool]) -> Outcome:
        now = utcnow()
        expires = expiry(i.evidence.source, self.retention_max_days, now)
        faces: dict[str, Face] = {}
        crops: dict[str, bytes] = {}
        c, fp = i.evidence.candidate, i.evidence.fingerprint
        assert fp is not None
        for f, sup in zip(found, suppressed):
            if sup:
                continue  # on the suppression list: never indexed, its embedding is dropped here
            fid = Face.make_id(fp.sha256, f.bbox, self.model_id)
            x1, y1, x2, y2 = (round(v, 2) for v in f.bbox)
            faces[fid] = Face(face_id=fid, embedding=[float(v) for v in f.embedding], image_sha256=fp.sha256,
                              url_key=c.key, bbox=(x1, y1, x2, y2), det_score=f.score,
                              source_id=c.source_id, job_id=c.job_id, model_id=self.model_id,
                              ingested_at=int(now.timestamp()), expires_at=int(expires.timestamp()))
            if self.store_crops:
                crops[fid] = face_crop_jpeg(i.evidence.image.rgb, f.bbox)  # type: ignore[union-attr]
        refs = tuple(FaceRef(face_id=f.face_id, bbox=f.bbox, score=f.det_score) for f in faces.values())
        self._remember(i.sha256, _Embedded(c.url, self.model_id, tuple(faces.values()), refs, len(found),
                                           sum(suppressed)))
        return self._outcome(i, tuple(faces.values()), refs, crops, len(found), sum(suppressed), i.first_url)

    def _follower(self, i: ToEmbed, leader: ToEmbed | None, done: dict[int, Outcome]) -> Outcome:
        if leader is not None:
            lead_out = done[id(leader)]
            if isinstance(lead_out, DeadLettered):
                err = ModelError(lead_out.letter.message, reason=lead_out.letter.reason)
                return DeadLettered(i.msg, dead_letter(i.msg, "ingest.faces", err),
                                    failed_provenance(i.evidence, i.verdict, err.reason, self.retention_max_days))
        e = self._recent.get(i.sha256)
        assert e is not None
        return self._outcome(i, e.faces, e.refs, {}, e.found, e.suppressed, i.first_url or e.url)

    def _outcome(self, i: ToEmbed, faces: tuple[Face, ...], refs: tuple[FaceRef, ...], crops: dict[str, bytes],
                 found: int, suppressed: int, duplicate_of: str | None) -> Outcome:
        """The record's own decision (its own signals, source and expiry) over the faces found."""
        v = after_suppression(i.verdict, found, suppressed)
        if duplicate_of == i.evidence.candidate.url:
            duplicate_of = None
        if v.refused:
            return Refused(i.msg, i.evidence.provenance(v, Decision.REFUSE, v.reason, self.retention_max_days,
                                                        duplicate_of=duplicate_of))
        prov = i.evidence.provenance(v, Decision.INDEX, v.reason, self.retention_max_days, model_id=self.model_id,
                                     faces=list(refs), duplicate_of=duplicate_of)
        return ReadyToWrite(i.msg, prov, faces, crops, i.verdict, found, suppressed)

    def _remember(self, sha256: str, e: _Embedded) -> None:
        self._recent[sha256] = e
        self._recent.move_to_end(sha256)
        while len(self._recent) > self.remember:
            self._recent.popitem(last=False)

    # ------------------------------------------------------------------ the model and the suppression list
    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace] | ModelError]:
        """Faces per BGR image; an image the model fails on gets a ModelError instead (failure as data)."""
        out: list[list[DetectedFace] | ModelError] = []
        for k in range(0, len(images), self.batch):
            chunk = list(images[k:k + self.batch])
            try:
                out.extend(self._clean(f) for f in self.model.analyze_batch(chunk))
            except Exception:
                out.extend(self._one(img) for img in chunk)
        return out

    def _one(self, img: np.ndarray) -> list[DetectedFace] | ModelError:
        try:
            return self._clean(self.model.analyze(img))
        except ConsentryError as exc:
            return ModelError(f"face model failed: {exc}", reason=getattr(exc, "reason", "model"))
        except Exception as exc:
            return ModelError(f"face model failed: {type(exc).__name__}: {exc}")

    @staticmethod
    def _clean(faces: list[DetectedFace]) -> list[DetectedFace]:
        """Drop faces whose embedding is unusable (zero or not finite): they could never be searched."""
        return [f for f in faces if np.isfinite(f.embedding).all() and float(np.linalg.norm(f.embedding)) > 0]

    def suppressed(self, embeddings: Sequence[Any]) -> list[bool]:
        """Which embeddings match someone on the suppression list (one Strong Milvus search;
        DependencyError on failure)."""
        if not embeddings:
            return []
        scores = self.index.suppressed_score(list(embeddings), self.model_id, strong=True)
        return [s >= self.threshold for s in scores]
