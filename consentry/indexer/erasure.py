"""Erasure ("forget me"): by photo, source, job or URL, with a receipt in three stages.

1. **Erase** (what the request waits for): the system of record first, then Milvus. By photo, the
   reference embeddings join the suppression list *first*, then matching faces are found (Strong
   consistency, in rounds until no new one) and removed: provenance redacted, crops deleted, then
   the Milvus rows. By source/job/URL: a tombstone, the provenance records and crops, then the Milvus
   rows (by filter, however many). Searches hide any face whose provenance no longer lists it, so
   the erasure applies to the very next search on every replica before Milvus has applied the delete
   (docs/erasure.md). An ingest worker that upserts a face of this person re-checks the suppression
   list after its upsert, so either it sees the suppression and deletes its own face, or its face
   was written before the search here and is found by it (or by the exact scan below).
2. **Verify** exactly: by photo, a full scan of every stored embedding of the model (no index)
   against the reference faces, erasing any match the approximate search missed; by scope, a count
   of the faces left with the scalar filter (exact) and of the provenance records left.
3. **Purge**: Milvus compaction of the segments holding the deleted rows, and no old S3 version of
   an erased object (:mod:`.purge`).

Stage 1 returns the receipt, with the exact verification done too when the collection is small
(``verify_inline_max_faces``: a few seconds); :meth:`Eraser.finish` runs what is left (the CLI at once;
the API's eraser in a background thread after answering; ``consentry forget --finish`` for a receipt
left pending) and updates the stored receipt.
The reference photo is never stored; the receipt holds its sha256, the requester's reference (e.g.
a DSAR case id), the counts deleted per store and the verification method with its cost.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..catalog import ProvenanceStore, Tombstones
from ..catalog.crawllog import CrawlLog
from ..clients.objectstore import ObjectStore, get_json, put_json
from ..core.errors import NoFaceFound, NotFound, ObjectNotFound
from ..core.records import ErasureEvent, Provenance, check_id, url_key
from ..core.retry import NO_RETRY, RetryPolicy
from ..faceindex import FaceIndex
from .audit import AuditLog
from .purge import Purger, RecordingStore

log = logging.getLogger("consentry.erasure")

RECEIPTS = "receipts/"
SEARCH_BATCH = 256  # nearest faces fetched per round (HNSW ef is raised to it)
THREADS = 16  # S3 reads/writes in flight at once
EXACT_SCAN = "exact: full scan of every stored face embedding of model {model} (no index), cosine against the " \
             "{refs} reference face(s), threshold {threshold}"


@dataclass
class Receipt:
    request_id: str
    by: str  # photo | source | job | url
    target: str  # source id, job id, url, or the reference photo's sha256
    actor: str
    requested_at: str
    completed_at: str = ""
    threshold: float | None = None
    reference_faces: int = 0
    matched_face_ids: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None  # the requester's reference (e.g. a DSAR case id)
    status: str = "erased"  # erased -> verified -> purged (or verification-failed)
    purge: dict[str, Any] = field(default_factory=dict)  # {"s3": ..., "milvus": ...}
    timings: dict[str, float] = field(default_factory=dict)  # seconds: erase, verify, purge
    model_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Receipt:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


class FaceRemover:
    """Remove faces: redact them in provenance, delete their crops, then delete the Milvus rows.

    The system of record goes first, so a face a search can still get from Milvus is already hidden.
    """

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, retry: RetryPolicy = NO_RETRY) -> None:
        self.index = index
        self.provenance = provenance
        self.retry = retry

    def remove(self, face_ids: Sequence[str], url_keys: Iterable[str], tag: str) -> dict[str, int]:
        face_ids = list(dict.fromkeys(face_ids))
        counts = {"milvus_faces": 0, "provenance_redacted": 0, "crops_deleted": 0}
        if not face_ids:
            return counts
        wanted = set(face_ids)
        with ThreadPoolExecutor(THREADS, thread_name_prefix="erase") as pool:
            sightings = self._all_sightings(url_keys, pool)
            counts["provenance_redacted"] = sum(pool.map(lambda k: self._redact(k, wanted, tag), sightings))
            counts["crops_deleted"] = delete_crops(self.provenance, face_ids, pool, self.retry)
        counts["milvus_faces"] = self.retry.call(lambda: self.index.delete(face_ids), "delete faces")
        return counts

    def _redact(self, ukey: str, wanted: set[str], tag: str) -> int:
        prov = self.retry.call(lambda: self.provenance.get(ukey), "read provenance")
        if prov is None or not wanted & set(prov.face_ids):
            return 0
        redact(self.provenance, prov, wanted, tag, self.retry)
        return 1

    def _all_sightings(self, url_keys: Iterable[str], pool: ThreadPoolExecutor) -> list[str]:
        """The given URLs plus every other URL that carried the same bytes (dedup shares face ids)."""
        out = dict.fromkeys(url_keys)
        provs = pool.map(lambda k: self.retry.call(lambda: self.provenance.get(k), "read provenance"), list(out))
        shas = {p.sha256 for p in provs if p is not None and p.sha256}
        for urls in pool.map(lambda sha: self.retry.call(lambda: self.provenance.image_urls(sha), "list sightings"),
                             sorted(shas)):
            out.update(dict.fromkeys(urls))
        return list(out)


def redact(provenance: ProvenanceStore, prov: Provenance, wanted: set[str], tag: str, retry: RetryPolicy) -> None:
    faces = [f.model_copy(update={"erased": True}) if f.face_id in wanted else f for f in prov.faces]
    new = prov.model_copy(update={"faces": faces, "erased_by": [*prov.erased_by, tag]})
    retry.call(lambda: provenance.put(new), "redact provenance")


def delete_crops(provenance: ProvenanceStore, face_ids: Sequence[str], pool: ThreadPoolExecutor,
                 retry: RetryPolicy) -> int:
    """Delete the crops that exist; returns how many did (so receipts count real deletions)."""
    keys = [provenance.crop_key(f) for f in face_ids]
    present = [k for k, there in zip(keys, pool.map(lambda k: retry.call(lambda: provenance.store.exists(k),
                                                                         "stat crop"), keys)) if there]
    return retry.call(lambda: provenance.store.delete_many(present), "delete crops") if present else 0


class Eraser:
    """The erasure entry class. Components arrive built; nothing here reads settings."""

    def __init__(self, index: FaceIndex, provenance: ProvenanceStore, store: ObjectStore, audit: AuditLog,
                 erasure_threshold: float, model_loader: Callable[[], Any] | None = None,
                 publish: Callable[[ErasureEvent], None] | None = None, max_pixels: int = 40_000_000,
                 retry: RetryPolicy = NO_RETRY, purger: Purger | None = None,
                 clock: Callable[[], float] = time.perf_counter, verify_inline_max_faces: int = 50_000,
                 finish_in_background: bool = False) -> None:
        self.index = index
        self.provenance = provenance
        self.store = store
        self.audit = audit
        self.threshold = erasure_threshold
        self.model_loader = model_loader  # the face model is loaded on the first erasure by photo
        self.publish = publish
        self.max_pixels = max_pixels
        self.retry = retry
        self.purger = purger or Purger(index, store)
        self.clock = clock
        self.verify_inline_max_faces = verify_inline_max_faces
        self._background = ThreadPoolExecutor(1, thread_name_prefix="erasure-finish") if finish_in_background else None

    # ------------------------------------------------------------------ stage 1: erase
    def forget_photo(self, photo: bytes, actor: str, reference: str | None = None) -> Receipt:
        from ..imaging import decode

        t0 = self.clock()
        if self.model_loader is None:
            raise NotFound("no face model configured for erasure by photo")
        model = self.model_loader()
        faces = model.analyze(decode(photo, max_pixels=self.max_pixels).bgr)
        if not faces:
            raise NoFaceFound("no face found in the reference photo; nothing can be matched")
        embs = [np.asarray(f.embedding, dtype=np.float32) for f in faces]
        r = self._receipt("photo", hashlib.sha256(photo).hexdigest(), actor, reference)
        r.threshold, r.reference_faces, r.model_id = self.threshold, len(embs), model.model_id
        rec = RecordingStore(self.store)
        remover = FaceRemover(self.index, ProvenanceStore(rec), self.retry)
        # 1. suppression first, so ingest workers racing with us drop this person from now on
        r.deleted["suppression_added"] = self.retry.call(
            lambda: self.index.suppress(embs, model.model_id, r.request_id), "suppress")
        # 2. find and remove every matching face, round by round (a full round may hide more)
        matched: dict[str, str] = {}
        for _ in range(100_000):
            found, full = self._matches(embs, model.model_id)
            new = {fid: uk for fid, uk in found.items() if fid not in matched}
            matched.update(new)
            if new:
                _add(r.deleted, remover.remove(list(new), set(new.values()), r.request_id))
            if not new or not full:
                break
        r.matched_face_ids = sorted(matched)
        r.verification = {"state": "pending", "ok": None,
                          "method": EXACT_SCAN.format(model=model.model_id, refs=len(embs), threshold=self.threshold)}
        r.purge["s3"] = self.purger.s3(rec)
        r.timings["erase_s"] = round(self.clock() - t0, 3)
        if self.index.count(strong=False) <= self.verify_inline_max_faces:  # a few seconds at most: before answering
            self._verify_exact(r, embs, model.model_id)
        return self._finish_stage1(r, ErasureEvent(request_id=r.request_id, by="photo", face_ids=r.matched_face_ids))

    def _matches(self, embs: list[np.ndarray], model_id: str) -> tuple[dict[str, str], bool]:
        """Faces at or above the threshold (Strong consistency), and whether a query's round was full."""
        out: dict[str, str] = {}
        results = self.retry.call(lambda: self.index.search(embs, model_id, SEARCH_BATCH, self.threshold, strong=True,
                                                            include_all_states=True), "search faces to erase")
        for hits in results:
            out.update({m.face_id: m.url_key for m in hits})
        return out, any(len(hits) >= SEARCH_BATCH for hits in results)

    # ------------------------------------------------------------------ by source / job / url
    def forget_source(self, source_id: str, actor: str, reference: str | None = None) -> Receipt:
        check_id(source_id, "source")
        return self._erase_scope(self._receipt("source", source_id, actor, reference), "source", source_id,
                                 {"source_id": source_id}, lambda: self.provenance.keys_for_source(source_id))

    def forget_job(self, job_id: str, actor: str, reference: str | None = None) -> Receipt:
        check_id(job_id, "job")
        return self._erase_scope(self._receipt("job", job_id, actor, reference), "job", job_id,
                                 {"job_id": job_id}, lambda: self.provenance.keys_for_job(job_id))

    def forget_url(self, url: str, actor: str, reference: str | None = None) -> Receipt:
        ukey = url_key(url)
        return self._erase_scope(self._receipt("url", url, actor, reference), "url", ukey, {"url_key": ukey},
                                 lambda: [ukey] if self.provenance.get(ukey) is not None else [])

    def _erase_scope(self, r: Receipt, kind: str, value: str, selection: dict[str, Any],
                     prov_keys: Callable[[], list[str]]) -> Receipt:
        t0 = self.clock()
        self._tombstone(kind, value, r.request_id)  # before deleting: in-flight ingest undoes its writes
        rec = RecordingStore(self.store)
        provenance = ProvenanceStore(rec)
        keys = self.retry.call(prov_keys, f"list provenance of the {kind}")
        with ThreadPoolExecutor(THREADS, thread_name_prefix="erase") as pool:
            provs = [p for p in pool.map(lambda k: self.retry.call(lambda: provenance.get(k), "read provenance"),
                                         keys) if p is not None]
            # faces are stored under the first sighting's url_key; a duplicate URL lists them in its provenance
            in_scope = self.retry.call(lambda: self.index.face_ids(**selection), "list faces")
            scope_ids = set(in_scope)
            listed = [f for f in dict.fromkeys(f for p in provs for f in p.face_ids) if f not in scope_ids]
            ids = [*in_scope, *listed]
            deleted = {"milvus_faces": 0, "provenance_deleted": 0, "objects_deleted": 0, "crops_deleted": 0,
                       "provenance_redacted": 0}
            # the system of record first: provenance, crops, other sightings of the same bytes
            deleted["objects_deleted"] = sum(pool.map(
                lambda p: self.retry.call(lambda: provenance.remove(p), "delete provenance"), provs))
            deleted["provenance_deleted"] = len(provs)
            deleted["crops_deleted"] = delete_crops(provenance, ids, pool, self.retry)
            doomed = set(keys)
            shas = sorted({p.sha256 for p in provs if p.sha256})
            survivors = {k for urls in pool.map(provenance.image_urls, shas) for k in urls} - doomed
            wanted = set(ids)

            def redact_survivor(ukey: str) -> int:
                prov = self.retry.call(lambda: provenance.get(ukey), "read provenance")
                if prov is None or not wanted & {f.face_id for f in prov.faces}:
                    return 0
                redact(provenance, prov, wanted, r.request_id, self.retry)
                return 1

            if wanted:
                deleted["provenance_redacted"] = sum(pool.map(redact_survivor, sorted(survivors)))
        # the crawl-time records (refusals, pages read) that name the erased source, job or URL
        deleted["crawl_log_objects"] = self.retry.call(lambda: CrawlLog(rec).delete_for(**{kind: r.target}),
                                                       "delete crawl-log records")
        # then Milvus: every row of the scope by filter (however many), and the shared faces its provenance listed
        deleted["milvus_faces"] = self.retry.call(lambda: self.index.delete_where(**selection), "delete faces")
        if listed:
            deleted["milvus_faces"] += self.retry.call(lambda: self.index.delete(listed), "delete shared faces")
        r.matched_face_ids = sorted(ids)
        r.deleted = deleted
        r.purge["s3"] = self.purger.s3(rec)
        r.timings["erase_s"] = round(self.clock() - t0, 3)
        # exact verification: scalar filters and listings, no vector index involved
        t1 = self.clock()
        left_faces = self.retry.call(lambda: self.index.count(**selection), "count faces left")
        if listed:
            left_faces += len(self.retry.call(lambda: self.index.get(listed), "get faces left"))
        left_keys = self.retry.call(prov_keys, "list provenance left")
        r.verification = {"state": "done", "ok": left_faces == 0 and not left_keys,
                          "remaining": left_faces + len(left_keys),
                          "method": f"exact: count of faces with {next(iter(selection))} == {value!r} in Milvus "
                                    "(scalar filter, Strong consistency, no vector index) and listing of the "
                                    "provenance records left, and a lookup of the shared faces by id",
                          "seconds": round(self.clock() - t1, 3)}
        r.timings["verify_s"] = r.verification["seconds"]
        r.status = "verified" if r.verification["ok"] else "verification-failed"
        event = ErasureEvent(request_id=r.request_id, by=kind, face_ids=r.matched_face_ids,  # type: ignore[arg-type]
                             source_id=value if kind == "source" else None, job_id=value if kind == "job" else None,
                             url_key=value if kind == "url" else None)
        return self._finish_stage1(r, event)

    def _tombstone(self, kind: str, value: str, request_id: str) -> None:
        tomb = Tombstones(self.store)
        self.retry.call(lambda: tomb.mark(kind, value, datetime.now(UTC), request_id),  # type: ignore[arg-type]
                        "mark tombstone")

    # ------------------------------------------------------------------ stages 2-3: verify, purge
    def finish(self, request_id: str) -> Receipt:
        """Run the stages a receipt still lacks (exact verification, physical purge); store and log them."""
        r = Receipt.from_dict(self.receipt(request_id))
        if r.verification.get("state") == "pending":
            model_id, refs = self.retry.call(lambda: self.index.suppressed_embeddings(r.request_id),
                                             "read references")
            self._verify_exact(r, refs, model_id or r.model_id)
            self._save(r)
        if r.purge.get("milvus", {}).get("state") not in ("compacted", "unsupported"):
            t0 = self.clock()
            r.purge["milvus"] = self.retry.call(self.purger.milvus, "compact")
            r.timings["purge_s"] = round(self.clock() - t0, 3)
            if r.status == "verified" and r.purge["milvus"]["state"] in ("compacted", "unsupported"):
                r.status = "purged"
            self._save(r)
        self.audit.append("erasure-finished", r.actor, request_id=r.request_id, reference=r.reference,
                          status=r.status, matched=len(r.matched_face_ids), verification=r.verification,
                          purge=r.purge)
        log.info("erasure %s: %s (verification %s, purge %s)", r.request_id, r.status, r.verification.get("ok"),
                 r.purge.get("milvus", {}).get("state"))
        return r

    def _verify_exact(self, r: Receipt, refs: Sequence[np.ndarray], model_id: str | None) -> None:
        """By photo: compare every stored embedding of the model with the reference faces; erase what matches.
        (The references come from the photo, or back from the suppression list in another process.)"""
        t0 = self.clock()
        if not refs or model_id is None:
            r.verification = {**r.verification, "state": "done", "ok": False,
                              "problem": "the reference embeddings are not on the suppression list"}
            r.status = "verification-failed"
            return
        ref = np.stack([v / np.linalg.norm(v) for v in refs]).T
        threshold = self.threshold if r.threshold is None else r.threshold
        caught: list[str] = []
        compared = 0
        for ids, x in self.index.scan(model_id):
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            best = (x @ ref).max(axis=1)
            compared += len(ids)
            caught += [ids[i] for i in np.flatnonzero(best >= threshold - 1e-6)]
        if caught:  # faces the approximate search missed: erase them now
            rows = self.retry.call(lambda: self.index.get(caught), "get caught faces")
            remover = FaceRemover(self.index, self.provenance, self.retry)
            _add(r.deleted, remover.remove(caught, {row["url_key"] for row in rows}, r.request_id))
            r.matched_face_ids = sorted(set(r.matched_face_ids) | set(caught))
        seconds = round(self.clock() - t0, 3)
        r.verification = {**r.verification, "state": "done", "ok": True, "remaining": 0, "compared": compared,
                          "caught": len(caught), "seconds": seconds,
                          "cost": f"{compared} embeddings x {len(refs)} reference(s) read from Milvus and compared "
                                  f"in {seconds:.1f}s"}
        r.timings["verify_s"] = seconds
        r.status = "verified"

    def _finish_logged(self, request_id: str) -> None:
        try:
            self.finish(request_id)
        except Exception:
            log.exception("erasure %s: verification / purge failed", request_id)

    # ------------------------------------------------------------------ receipts
    def _receipt(self, by: str, target: str, actor: str, reference: str | None) -> Receipt:
        return Receipt(request_id=f"er-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:12]}", by=by, target=target,
                       actor=actor, requested_at=_now_iso(), reference=reference)

    def _save(self, r: Receipt) -> None:
        self.retry.call(lambda: put_json(self.store, f"{RECEIPTS}{r.request_id}.json", r.to_dict()), "store receipt")

    def _finish_stage1(self, r: Receipt, event: ErasureEvent) -> Receipt:
        r.completed_at = _now_iso()
        self._save(r)
        ids_digest = hashlib.sha256("\n".join(r.matched_face_ids).encode()).hexdigest()
        self.audit.append("erasure", r.actor, request_id=r.request_id, by=r.by, target=r.target,
                          reference=r.reference, matched=len(r.matched_face_ids),
                          matched_face_ids=r.matched_face_ids[:1000], matched_face_ids_sha256=ids_digest,
                          deleted=r.deleted, verification=r.verification)
        if self.publish is not None:
            try:
                self.publish(event)
            except Exception:
                log.exception("could not publish erasure event %s", r.request_id)
        if self._background is not None:  # the API: verification (if still pending) and purge after answering
            self._background.submit(self._finish_logged, r.request_id)
        log.info("erasure %s by %s: %d faces in %.2fs", r.request_id, r.by, len(r.matched_face_ids),
                 r.timings.get("erase_s", 0.0))
        return r

    def receipt(self, request_id: str) -> dict[str, Any]:
        try:
            return self.retry.call(lambda: get_json(self.store, f"{RECEIPTS}{request_id}.json"), "read receipt")
        except ObjectNotFound:
            raise NotFound(f"no erasure receipt {request_id!r}") from None
