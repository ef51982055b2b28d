"""Typed values the ingest stages take at construction (read from Settings once, in one place)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.retry import RetryPolicy


@dataclass(frozen=True)
class FetchConfig:
    user_agent: str
    timeout_s: float = 15.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False
    robots_token: str = "consentry"

    @classmethod
    def from_settings(cls, s) -> FetchConfig:
        return cls(user_agent=s.user_agent, timeout_s=s.fetch_timeout_s, max_bytes=s.fetch_max_bytes,
                   max_redirects=s.fetch_max_redirects, allow_private=s.allow_private_networks,
                   robots_token=s.crawl_robots_token)


@dataclass(frozen=True)
class IngestConfig:
    """What one IngestWorker needs besides its clients."""

    topic_images: str
    topic_dlq: str
    group: str
    fetch: FetchConfig
    max_pixels: int = 40_000_000
    min_side: int = 32
    suppression_threshold: float = 0.45
    retention_max_days: int = 1095
    store_crops: bool = False
    max_poll_records: int = 16
    poll_timeout_s: float = 1.0
    fetch_concurrency: int = 4  # prepare threads: fetch, decode, hash, dedup lookup
    write_concurrency: int = 8  # S3 writes of a batch in parallel
    embed_batch: int = 64  # images per analyze_batch call (the model batches detection and recognition inside)
    max_in_flight: int = 3  # batches between poll and commit (prepare ‖ faces ‖ write)
    max_in_flight_bytes: int = 512 * 1024 * 1024  # image bytes + pixels held by those batches
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    read_c2pa: bool = True  # the C2PA training-mining assertion (issue 17)
    optout_phash_distance: int = 6  # do-not-train lists: perceptual-hash match distance (issue 17)

    @classmethod
    def from_settings(cls, s) -> IngestConfig:
        return cls(topic_images=s.topic_images, topic_dlq=s.topic_dlq, group=s.kafka_consumer_group,
                   fetch=FetchConfig.from_settings(s), max_pixels=s.image_max_pixels, min_side=s.image_min_side,
                   suppression_threshold=s.suppression_threshold, retention_max_days=s.retention_max_days,
                   store_crops=s.s3_store_crops, max_poll_records=s.kafka_max_poll_records,
                   fetch_concurrency=s.ingest_prepare_threads, write_concurrency=s.ingest_write_threads,
                   max_in_flight=s.ingest_max_in_flight_batches, max_in_flight_bytes=s.ingest_max_in_flight_bytes,
                   retry=RetryPolicy(s.retry_max_attempts, s.retry_base_delay_s, s.retry_max_delay_s),
                   read_c2pa=s.ingest_read_c2pa, optout_phash_distance=s.optout_phash_distance)
