"""Assembling an IngestWorker from its clients (real ones, or the in-memory fakes in unit tests).

The composition root (``consentry.wiring.ingest_worker``) passes the real clients."""

from __future__ import annotations

from ..catalog.optouts import CachedOptOuts, ImageOptOutCheck, OptOutRegistry
from ..catalog.provenance import ProvenanceStore
from ..catalog.sources import SourceRegistry
from ..catalog.tombstones import Tombstones
from ..clients.broker import Broker
from ..clients.objectstore import ObjectStore
from ..clients.vectors import VectorStore
from ..core.netpolicy import Resolver, system_resolver
from ..faceindex import FaceIndex, IndexConfig
from ..faces import FaceModel
from .budget import InFlightBytes
from .config import IngestConfig
from .deadletter import DeadLetterSink
from .decide import AFTER_BYTES, ConsentChecks, ImageOptOuts
from .dedup import Deduper
from .embed import FaceStage
from .fetch import Fetcher
from .metrics import IngestStats
from .prepare import Preparer, SourceCache
from .worker import IngestWorker
from .write import Writer


def assemble(cfg: IngestConfig, broker: Broker, store: ObjectStore, vectors: VectorStore, index_cfg: IndexConfig,
             model: FaceModel, resolver: Resolver = system_resolver, transport=None) -> IngestWorker:
    """An IngestWorker over any clients (real or in-memory fakes); joins ``cfg.group``."""
    index = FaceIndex(vectors, index_cfg)
    index.ensure()
    provenance = ProvenanceStore(store)
    stats = IngestStats()
    budget = InFlightBytes(cfg.max_in_flight_bytes)
    optouts = ImageOptOutCheck(CachedOptOuts(OptOutRegistry(store), cfg.optout_phash_distance), cfg.read_c2pa)
    checks = ConsentChecks(after_bytes=(*AFTER_BYTES, ImageOptOuts(optouts)))
    preparer = Preparer(SourceCache(SourceRegistry(store)), Fetcher(cfg.fetch, cfg.retry, resolver, transport),
                        Deduper(provenance), cfg.retry, stats, model.model_id, cfg.max_pixels, cfg.min_side,
                        cfg.retention_max_days, checks=checks, budget=budget)
    faces = FaceStage(model, index, cfg.suppression_threshold, cfg.retry, cfg.retention_max_days,
                      store_crops=cfg.store_crops, batch=cfg.embed_batch, budget=budget)
    writer = Writer(index, provenance, store, DeadLetterSink(broker.producer, cfg.topic_dlq, cfg.retry), cfg.retry,
                    faces.suppressed, Tombstones(store), store_crops=cfg.store_crops, threads=cfg.write_concurrency)
    worker = IngestWorker(consumer=broker.consumer(cfg.group, [cfg.topic_images]), preparer=preparer, faces=faces,
                          writer=writer, stats=stats, retry=cfg.retry, budget=budget,
                          max_poll_records=cfg.max_poll_records, poll_timeout_s=cfg.poll_timeout_s,
                          fetch_concurrency=cfg.fetch_concurrency, max_in_flight=cfg.max_in_flight)
    worker.ping_broker = broker.ping  # lets the loop tell "drained" from "broker down"
    return worker
