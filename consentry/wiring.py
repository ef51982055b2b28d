"""The one place that turns Settings into components (the composition root).

CLI commands, the API and the Ray workers call these; components themselves only take typed values.
Heavy imports stay inside the functions so `consentry --help` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from .catalog import JobStore, ProvenanceStore, SourceRegistry
    from .catalog.crawllog import CrawlLog
    from .catalog.optouts import OptOutRegistry
    from .clients.broker import KafkaBroker, Producer
    from .clients.objectstore import S3ObjectStore
    from .clients.vectors import MilvusVectorStore
    from .core.retry import RetryPolicy
    from .crawler import CrawlLauncher, CrawlRunner
    from .faceindex import FaceIndex
    from .indexer.audit import AuditLog
    from .indexer.auth import TokenStore
    from .indexer.checkpoints import Checkpoints, Signer
    from .indexer.erasure import Eraser
    from .indexer.explain import Explainer
    from .indexer.operations import OperationsView
    from .indexer.optouts import OptOutImporter
    from .indexer.purge import Purger
    from .indexer.retention import RetentionSweeper
    from .indexer.search import FaceSearch
    from .indexer.services import Services
    from .ingest.worker import IngestWorker


def object_store(s: Settings) -> S3ObjectStore:
    from .clients.objectstore import S3Config, S3ObjectStore

    return S3ObjectStore(S3Config.from_settings(s))


def broker(s: Settings) -> KafkaBroker:
    from .clients.broker import KafkaBroker, KafkaConfig

    return KafkaBroker(KafkaConfig.from_settings(s))


def vector_store(s: Settings) -> MilvusVectorStore:
    from .clients.vectors import MilvusVectorStore

    return MilvusVectorStore(s.milvus_uri, s.milvus_token.get_secret_value() if s.milvus_token else None)


def face_index(s: Settings) -> FaceIndex:
    from .faceindex import FaceIndex, IndexConfig

    return FaceIndex(vector_store(s), IndexConfig.from_settings(s))


def face_model(s: Settings):
    from .faces import ModelConfig, load_model

    return load_model(ModelConfig.from_settings(s))


def sources(s: Settings, store=None) -> SourceRegistry:
    from .catalog import SourceRegistry

    return SourceRegistry(store or object_store(s))


def jobs(s: Settings, store=None) -> JobStore:
    from .catalog import JobStore

    return JobStore(store or object_store(s))


def provenance(s: Settings, store=None) -> ProvenanceStore:
    from .catalog import ProvenanceStore

    return ProvenanceStore(store or object_store(s))


def crawl_log(s: Settings, store=None) -> CrawlLog:
    from .catalog.crawllog import CrawlLog

    return CrawlLog(store or object_store(s))


# --- the crawler ------------------------------------------------------------------------------------
def crawl_launcher(s: Settings, store=None) -> CrawlLauncher:
    """Plans, spawns, watches, stops and resumes crawl processes (the CLI side of a crawl)."""
    from .crawler import CrawlLauncher

    return CrawlLauncher(s, store or object_store(s))


def crawl_runner(s: Settings, stop_requested: Callable[[], bool] = lambda: False) -> CrawlRunner:
    """Runs one crawl job in this process (the crawl process's entry, ``consentry.cli.crawl_process``)."""
    from .crawler import CrawlRunner

    return CrawlRunner(s, object_store(s), kafka_producer_factory(s), stop_requested=stop_requested)


def kafka_producer_factory(s: Settings) -> Callable[[], Producer]:
    """Connects to Kafka when called (a ping first: it fails in milliseconds, a producer's bootstrap in 30 s)."""
    from .clients.broker import KafkaBroker, KafkaConfig, KafkaProducerAdapter
    from .core.errors import BrokerError

    cfg = KafkaConfig.from_settings(s)
    b = KafkaBroker(cfg)

    def connect() -> Producer:
        if not b.ping():
            raise BrokerError(f"Kafka at {cfg.bootstrap} does not answer")
        return KafkaProducerAdapter(cfg, max_block_s=s.kafka_request_timeout_ms / 1000)

    return connect


def retry_policy(s: Settings) -> RetryPolicy:
    """The one retry policy for calls to outside systems (retry_max_attempts, full jitter)."""
    from .core.retry import RetryPolicy

    return RetryPolicy(s.retry_max_attempts, s.retry_base_delay_s, s.retry_max_delay_s)


def audit_signer(s: Settings) -> Signer:
    """The audit checkpoint key: audit_signing_key, else audit_verify_key (verify only), else a key file
    created in the state directory on first use."""
    from .indexer.checkpoints import Signer, decode_key, load_or_create_key

    if s.audit_signing_key is not None:
        return Signer(private=decode_key(s.audit_signing_key.get_secret_value(), "audit_signing_key"))
    if s.audit_verify_key:
        return Signer(public=decode_key(s.audit_verify_key, "audit_verify_key"))
    return Signer(private=load_or_create_key(s.home / "audit-signing.key"))


def audit_checkpoints(s: Settings) -> Checkpoints:
    """Signed checkpoints outside the bucket (default: one folder per bucket under the state directory)."""
    from dataclasses import replace

    from .clients.objectstore import S3Config, S3ObjectStore
    from .indexer.checkpoints import Checkpoints, sink_for

    target = s.audit_checkpoint_target or f"file://{s.home / 'audit-checkpoints' / s.s3_bucket}"
    sink = sink_for(target, lambda bucket: S3ObjectStore(replace(S3Config.from_settings(s), bucket=bucket)))
    return Checkpoints(sink, audit_signer(s))


def audit_log(s: Settings, store=None) -> AuditLog:
    from .indexer.audit import AuditLog

    return AuditLog(store or object_store(s), checkpoints=audit_checkpoints(s), retry=retry_policy(s))


def explainer(s: Settings, store=None) -> Explainer:
    """Answers for any URL: provenance, crawl-time refusals and page visits, erasure tombstones."""
    from .catalog import Tombstones
    from .indexer.explain import Explainer

    store = store or object_store(s)
    return Explainer(provenance(s, store), audit_log(s, store), crawl_log(s, store), Tombstones(store))


def optout_registry(s: Settings, store=None) -> OptOutRegistry:
    from .catalog.optouts import OptOutRegistry

    return OptOutRegistry(store or object_store(s))


def optout_importer(s: Settings, store=None) -> OptOutImporter:
    """Imports do-not-train lists and erases (through the Eraser) what is already indexed under them."""
    from .indexer.optouts import OptOutImporter

    store = store or object_store(s)
    return OptOutImporter(optout_registry(s, store), provenance(s, store), eraser(s, store), audit_log(s, store),
                          s.optout_phash_distance)


def erasure_publisher(s: Settings):
    """A callable publishing ErasureEvents on the erasures topic (flushed per event; one producer, made on
    first use and kept)."""
    import threading
    from typing import Any

    b = broker(s)
    lock = threading.Lock()
    producer: list[Any] = []

    def publish(event) -> None:
        key = (event.source_id or event.job_id or event.url_key or event.request_id).encode()
        with lock:
            if not producer:
                producer.append(b.producer())
            try:
                producer[0].send(s.topic_erasures, key, event.to_json())
                producer[0].flush()
            except Exception:
                producer.pop().close()  # a fresh producer next time
                raise

    return publish


def purger(s: Settings, index, store) -> Purger:
    from .indexer.purge import Purger

    return Purger(index, store, timeout_s=s.erasure_purge_timeout_s, gc_drop_tolerance_s=s.milvus_gc_drop_tolerance_s)


def eraser(s: Settings, store=None, index=None, model_loader=None, publish: bool = True,
           background: bool = False) -> Eraser:
    """Erasure by photo, source, job or URL; the face model is loaded on the first erasure by photo.
    ``background``: verification and purge run after the receipt, in a thread (the API)."""
    from .indexer.erasure import Eraser

    store = store or object_store(s)
    index = index or face_index(s)
    return Eraser(index, provenance(s, store), store, audit_log(s, store),
                  erasure_threshold=s.erasure_threshold, model_loader=model_loader or (lambda: face_model(s)),
                  publish=erasure_publisher(s) if publish else None, max_pixels=s.image_max_pixels,
                  retry=retry_policy(s), purger=purger(s, index, store),
                  verify_inline_max_faces=s.erasure_verify_inline_max_faces, finish_in_background=background)


def retention_sweeper(s: Settings, store=None, index=None) -> RetentionSweeper:
    """The sweep, with every registered source's current retention (capped by retention_max_days)."""
    from .indexer.retention import RetentionSweeper

    store = store or object_store(s)
    index = index or face_index(s)
    days = {src.id: min(src.retention_days, s.retention_max_days) for src in sources(s, store).list()}
    return RetentionSweeper(index, provenance(s, store), audit_log(s, store), source_retention_days=days,
                            retry=retry_policy(s), purger=purger(s, index, store))


def token_store(s: Settings, store=None, cache_ttl_s: float = 5.0) -> TokenStore:
    from .indexer.auth import TokenStore

    return TokenStore(store or object_store(s), cache_ttl_s=cache_ttl_s)


def face_search(s: Settings, store=None, index=None, model_loader=None) -> FaceSearch:
    """Search by photo or face id; the face model is loaded on the first search by photo."""
    from .indexer.search import FaceSearch, SearchLimits

    store = store or object_store(s)
    return FaceSearch(index or face_index(s), provenance(s, store), audit_log(s, store),
                      model_loader or (lambda: face_model(s)), SearchLimits.from_settings(s),
                      strong=s.search_consistency == "strong", retry=retry_policy(s))


def indexer_services(s: Settings, store=None, index=None, model_loader=None,
                     token_cache_s: float = 5.0) -> Services:
    """Everything the query API serves from."""
    from .indexer.services import Services

    store = store or object_store(s)
    index = index or face_index(s)
    search = face_search(s, store, index, model_loader)
    er = eraser(s, store, index, search.model_loader, background=True)
    er.audit = search.audit  # one audit log per process: one cached head, one background writer
    return Services(settings=s, objects=store, vectors=index.store, index=index, provenance=search.provenance,
                    audit=search.audit, tokens=token_store(s, store, token_cache_s), search=search, eraser=er)


def operations_view(s: Settings, store=None) -> OperationsView:
    """What the console's operations page reads: sources, jobs, the ingest drivers' /metrics, the DLQ topic."""
    from .catalog import JobStore, SourceRegistry
    from .clients.broker import KafkaConfig
    from .clients.topiccount import TopicCounter
    from .indexer.operations import OperationsView, dead_letter_kind

    store = store or object_store(s)
    return OperationsView(SourceRegistry(store), JobStore(store), s.api_ingest_metrics_urls,
                          dlq=TopicCounter(KafkaConfig.from_settings(s), s.topic_dlq, dead_letter_kind))


def ingest_worker(s: Settings) -> IngestWorker:
    """An IngestWorker on the configured Kafka, S3, Milvus and model pack (module-level: Ray pickles it)."""
    from .faceindex import IndexConfig
    from .ingest.assembly import assemble
    from .ingest.config import IngestConfig

    return assemble(IngestConfig.from_settings(s), broker(s), object_store(s), vector_store(s),
                    IndexConfig.from_settings(s), face_model(s))


def prepare_ingest(s: Settings) -> None:
    """Topics, bucket and collections exist before ingest workers start (idempotent)."""
    broker(s).ensure_topics([s.topic_images, s.topic_dlq, s.topic_erasures])
    object_store(s).ensure_bucket()
    face_index(s).ensure()
