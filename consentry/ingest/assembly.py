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
from ..faces import FaceModel
from ..faceindex import FaceIndex, IndexConfig
from .config import IngestConfig
from .deadletter import DeadLetterSink
from .decide import SourceCache
from .dedup import Deduper
from .embed import FaceStage
from .fetch import Fetcher
from .metrics import IngestStats
from .prepare import Preparer
from .write import Writer
from .worker import IngestWorker


def assemble(cfg: IngestConfig, broker: Broker, store: ObjectStore, vectors: VectorStore, index_cfg: IndexConfig,
             model: FaceModel, resolver: Resolver = system_resolver, transport=None) -> IngestWorker:  # noqa: ANN001
    """An IngestWorker over any clients (real or in-memory fakes); joins ``cfg.group``."""
    index = FaceIndex(vectors, index_cfg)
    index.ensure()
    provenance = ProvenanceStore(store)
    stats = IngestStats()
    optouts = ImageOptOutCheck(CachedOptOuts(OptOutRegistry(store), cfg.optout_phash_distance), cfg.read_c2pa)
    preparer = Preparer(SourceCache(SourceRegistry(store)), Fetcher(cfg.fetch, resolver, transport),
                        Deduper(provenance), cfg.retry, stats, model.model_id, cfg.max_pixels, cfg.min_side,
                        cfg.retention_max_days, optouts)
    worker = IngestWorker(
        consumer=broker.consumer(cfg.group, [cfg.topic_images]), preparer=preparer,
        faces=FaceStage(model, index, cfg.suppression_threshold, cfg.embed_batch),
        writer=Writer(index, provenance, store, cfg.retry, cfg.store_crops),
        dlq=DeadLetterSink(broker.producer(), cfg.topic_dlq, cfg.retry), stats=stats, retry=cfg.retry,
        retention_max_days=cfg.retention_max_days, store_crops=cfg.store_crops,
        max_poll_records=cfg.max_poll_records, poll_timeout_s=cfg.poll_timeout_s,
        fetch_concurrency=cfg.fetch_concurrency)
    worker.ping_broker = broker.ping  # lets the loop tell "drained" from "broker down"
    worker.tombstones = Tombstones(store)
    return worker
