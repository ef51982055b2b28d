"""An IngestWorker over the in-memory fakes (broker, object store, vector store, HashFaceModel) and a real
local site."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from consentry.catalog.provenance import ProvenanceStore
from consentry.catalog.sources import SourceRegistry
from consentry.core.records import Basis, DeadLetter, ImageCandidate, Provenance, Signal, Source, url_key
from consentry.core.retry import RetryPolicy
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.ingest import FetchConfig, IngestConfig, IngestWorker
from consentry.ingest.assembly import assemble
from tests.fakes import HashFaceModel, MemoryBroker, MemoryObjectStore, MemoryVectorStore

from .site import Site

TOPIC, DLQ = "u.images", "u.dlq"
UA = "ConsentryBot/0.1 (+https://example.org/bot)"


def ingest_config(**kw: Any) -> IngestConfig:
    fetch = FetchConfig(user_agent=UA, timeout_s=5.0, allow_private=True, max_bytes=kw.pop("max_bytes", 4 << 20))
    base = IngestConfig(topic_images=TOPIC, topic_dlq=DLQ, group="g1", fetch=fetch, min_side=16,
                        retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02), poll_timeout_s=0.05)
    return replace(base, **kw)


@dataclass
class Rig:
    site: Site
    broker: MemoryBroker
    store: MemoryObjectStore
    vectors: MemoryVectorStore
    index: FaceIndex
    worker: IngestWorker
    model: Any

    @property
    def provenance(self) -> ProvenanceStore:
        return ProvenanceStore(self.store)

    def add_source(self, sid: str, basis: Basis = Basis.CONSENT, retention_days: int = 30) -> Source:
        return SourceRegistry(self.store).put(Source(id=sid, match="127.0.0.1", basis=basis,
                                                     retention_days=retention_days))

    def candidate(self, path: str, source: str = "family", signals: list[Signal] | None = None) -> ImageCandidate:
        return ImageCandidate(url=self.site.url(path), page_url=self.site.url("/gallery.html"), job_id="job-1",
                              source_id=source, signals=signals or [])

    def produce(self, *cands: ImageCandidate | bytes) -> None:
        p = self.broker.producer()
        for c in cands:
            if isinstance(c, bytes):
                p.send(TOPIC, b"junk", c)
            else:
                p.send(TOPIC, c.key.encode(), c.to_json())
        p.flush()

    def drain(self, max_polls: int = 20) -> int:
        n = 0
        for _ in range(max_polls):
            out = self.worker.poll_once()
            n += out.records
            if not out.records:
                break
        return n

    def prov(self, path: str) -> Provenance | None:
        return self.provenance.get(url_key(self.site.url(path)))

    def faces_for(self, path: str) -> int:
        return self.index.count(url_key=url_key(self.site.url(path)))

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_json(m.value) for m in self.broker.messages(DLQ)]

    def committed(self) -> int:
        return sum(self.broker.committed["g1"].values())


def make_rig(site: Site, model: Any = None, partitions: int = 2, store: Any = None, **cfg: Any) -> Rig:
    broker, store, vectors = MemoryBroker(partitions=partitions), store or MemoryObjectStore(), MemoryVectorStore()
    icfg = IndexConfig(collection="faces", suppression_collection="suppressed")
    model = model or HashFaceModel()
    worker = assemble(ingest_config(**cfg), broker, store, vectors, icfg, model)
    return Rig(site, broker, store, vectors, FaceIndex(vectors, icfg), worker, model)
