"""The one place that turns Settings into an IngestWorker with real clients (Kafka, S3, Milvus, models)."""

from __future__ import annotations

from ..catalog.provenance import ProvenanceStore
from ..catalog.sources import SourceRegistry
from ..catalog.tombstones import Tombstones
from ..clients.broker import Broker, KafkaBroker, KafkaConfig
from ..clients.objectstore import ObjectStore, S3Config, S3ObjectStore
from ..clients.vectors import MilvusVectorStore, VectorStore
from ..core.netpolicy import Resolver, system_resolver
from ..core.settings import Settings
from ..faces import FaceModel, ModelConfig, load_model
from ..indexer import FaceIndex, IndexConfig
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
    preparer = Preparer(SourceCache(SourceRegistry(store)), Fetcher(cfg.fetch, resolver, transport),
                        Deduper(provenance), cfg.retry, stats, model.model_id, cfg.max_pixels, cfg.min_side,
                        cfg.retention_max_days)
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


def build_worker(settings: Settings) -> IngestWorker:
    """An IngestWorker on the configured Kafka, S3, Milvus and model pack."""
    store = S3ObjectStore(S3Config.from_settings(settings))
    vectors = MilvusVectorStore(settings.milvus_uri,
                                settings.milvus_token.get_secret_value() if settings.milvus_token else None)
    return assemble(IngestConfig.from_settings(settings), KafkaBroker(KafkaConfig.from_settings(settings)), store,
                    vectors, IndexConfig.from_settings(settings), load_model(ModelConfig.from_settings(settings)))


def prepare_stack(settings: Settings) -> None:
    """Topics, bucket and collections exist before workers start (idempotent)."""
    KafkaBroker(KafkaConfig.from_settings(settings)).ensure_topics([settings.topic_images, settings.topic_dlq])
    S3ObjectStore(S3Config.from_settings(settings)).ensure_bucket()
    FaceIndex(MilvusVectorStore(settings.milvus_uri, settings.milvus_token.get_secret_value()
                                if settings.milvus_token else None), IndexConfig.from_settings(settings)).ensure()
