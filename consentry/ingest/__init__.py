"""Ingest: Kafka image candidates → fetch → validate/decode → dedup → consent → detect+embed → writes.

Entry class: :class:`IngestWorker` (one per consumer; one per Ray actor in production), which pipelines
three stages over immutable outcomes (``outcomes``): ``prepare`` (fetch, decode, dedup and the consent
checks of ``decide``), ``embed`` (the faces stage) and ``write`` (DLQ, Milvus, S3); ``offsets`` plans
commits and rewinds, ``budget`` bounds the bytes in flight; ``runner``/``raypool`` run the workers.
``consentry.wiring`` builds a worker from Settings. Heavy imports (Ray, models) happen only where used.
"""

from .config import FetchConfig, IngestConfig
from .worker import BatchOutcome, IngestWorker

__all__ = ["BatchOutcome", "FetchConfig", "IngestConfig", "IngestWorker"]
