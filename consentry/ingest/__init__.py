"""Ingest: Kafka image candidates → fetch → validate/decode → dedup → consent → detect+embed → writes.

Entry class: :class:`IngestWorker` (one per consumer; one per Ray actor in production). Stages, one
module each: ``fetch``, ``dedup``, ``decide``, ``embed``, ``write``, ``deadletter``; ``prepare`` runs
the per-record steps, ``worker`` the batch and its offsets, ``runner``/``raypool`` the workers,
``wiring`` builds a worker from Settings. Heavy imports (Ray, models) happen only where used.
"""

from .config import FetchConfig, IngestConfig
from .worker import BatchOutcome, IngestWorker

__all__ = ["BatchOutcome", "FetchConfig", "IngestConfig", "IngestWorker"]
