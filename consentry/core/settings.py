"""Every setting in one place.

Precedence (highest first): values passed to ``Settings(...)``, ``CONSENTRY_*`` environment
variables, the config file (``--config`` / ``CONSENTRY_CONFIG``, else ``$CONSENTRY_HOME/consentry.toml``),
the local stack's generated credentials (``$CONSENTRY_HOME/stack/credentials.json``), then the
defaults below. Names are prefixed by feature (``kafka_``, ``s3_``, ``milvus_``, ``crawl_`` ...),
the way Scrapy names its settings; the environment name is ``CONSENTRY_`` + the upper-cased name.

Components never read this object themselves deep inside: the wiring code passes them the
typed values they need at construction.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError

ENV_PREFIX = "CONSENTRY_"


def default_home() -> Path:
    return Path(os.environ.get("CONSENTRY_HOME") or Path.home() / ".consentry")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True,
                                      validate_default=True)

    # --- state -------------------------------------------------------------------------------
    home: Path = Field(default_factory=default_home, description="State directory: pids, logs, job state, data.")
    config: Path | None = Field(default=None, description="Config file (TOML) read before the defaults.")
    log_level: str = Field(default="INFO", description="Logging level for services and workers.")
    log_json: bool = Field(default=False, description="Write logs as JSON lines.")

    # --- Kafka ---------------------------------------------------------------------------------
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    kafka_security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: str | None = Field(default=None, description="e.g. SCRAM-SHA-512 (Strimzi).")
    kafka_username: str | None = Field(default=None, description="SASL user name (with kafka_sasl_mechanism).")
    kafka_password: SecretStr | None = Field(default=None, description="SASL password (never logged).")
    kafka_session_timeout_ms: int = Field(default=6000, description="Consumer group session timeout.")
    kafka_member_stuck_after_s: float = Field(
        default=60.0, gt=0, description="A consumer still rejoining its group after this long is replaced by a new "
        "member (uncommitted records are redelivered); well above a normal rebalance.")
    kafka_heartbeat_interval_ms: int = Field(default=2000, description="Consumer heartbeat interval (a third of the session timeout).")
    kafka_request_timeout_ms: int = Field(default=30000, description="Timeout of one Kafka request; also bounds how long a crawl waits to publish.")
    kafka_max_poll_records: int = Field(default=16, ge=1, description="Records an ingest worker takes per poll (one batch).")
    kafka_consumer_group: str = Field(default="consentry-ingest", description="Consumer group of the ingest workers.")
    kafka_partitions: int = Field(default=4, ge=1, description="Partitions for topics we create.")
    kafka_replication: int = Field(default=1, ge=1, description="Replication factor for topics we create.")
    topic_prefix: str = Field(default="consentry.", description="Prefix of every topic name.")

    # --- object store (S3 / MinIO) -----------------------------------------------------------
    s3_endpoint: str = Field(default="http://127.0.0.1:9000", description="S3 / MinIO endpoint URL.")
    s3_access_key: str | None = Field(default=None, description="S3 access key (the local stack generates one).")
    s3_secret_key: SecretStr | None = Field(default=None, description="S3 secret key (never logged).")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_bucket: str = Field(default="consentry", description="Bucket for provenance, sources, jobs, audit, receipts.")
    s3_store_crops: bool = Field(default=True, description="Keep one 112x112 JPEG crop per indexed face beside "
                                 "provenance, for reviewers (deleted with the face by every erasure and retention path).")

    # --- Milvus ---------------------------------------------------------------------------------
    milvus_uri: str = Field(default="http://127.0.0.1:19540", description="Milvus (or milvus-lite server) URI.")
    milvus_token: SecretStr | None = Field(default=None, description="Milvus token or user:password (never logged).")
    milvus_collection: str = Field(default="consentry_faces", description="Milvus collection of indexed faces.")
    milvus_suppression_collection: str = Field(default="consentry_suppressed", description="Milvus collection of suppressed (erased) people.")
    milvus_index_type: Literal["HNSW", "IVF_FLAT", "FLAT", "AUTOINDEX"] = Field(default="HNSW", description="Vector index of the face collection.")
    milvus_hnsw_m: int = Field(default=32, ge=4, le=64, description="HNSW graph degree M (32: recall@10 0.995 at "
                               "100k faces where 16 gave 0.988; bench/search_bench.py).")
    milvus_hnsw_ef_construction: int = Field(default=100, ge=8, description="HNSW efConstruction (100 with M=32 "
                                             "builds faster than 200 with M=16 and recalls more).")
    milvus_search_ef: int = Field(default=256, ge=8, description="HNSW ef at search time (recall vs latency; at 1M "
                                  "faces 256 found every hit above the search threshold, 128 missed 0.1%).")
    milvus_ivf_nlist: int = Field(default=1024, ge=1, description="IVF_FLAT clusters.")
    milvus_ivf_nprobe: int = Field(default=32, ge=1, description="IVF_FLAT clusters probed per search.")
    milvus_write_batch: int = Field(default=256, ge=1, description="Rows per Milvus upsert call.")

    # --- face models ----------------------------------------------------------------------------
    model_pack: str = Field(default="buffalo_s", description="buffalo_s | buffalo_l | yunet_sface | a folder path | a module:Class plugin.")
    model_dir: Path | None = Field(default=None, description="Folder holding the model pack's .onnx files.")
    model_device: Literal["cpu", "cuda"] = Field(default="cpu", description="cuda uses onnxruntime-gpu's CUDA provider.")
    model_threads: int = Field(default=2, ge=1, description="onnxruntime intra-op threads per session.")
    model_det_size: int = Field(default=640, ge=160, description="Detector input size in pixels (square).")
    model_det_batch: int | None = Field(
        default=None, ge=1, description="Images per detector call (one tensor of N letterboxed images); default 1 "
        "on CPU (fastest there), 32 with model_device=cuda.")
    model_rec_batch: int = Field(default=64, ge=1, description="Aligned faces per recogniser call, across images.")
    face_min_size: int = Field(default=24, ge=1, description="Smallest face side in pixels that is embedded.")
    face_min_score: float = Field(default=0.5, ge=0, le=1, description="Smallest detection score embedded.")

    # --- thresholds and lifecycle -----------------------------------------------------------
    search_threshold: float = Field(default=0.35, ge=-1, le=1, description="Cosine similarity for a search hit.")
    search_default_top_k: int = Field(default=10, ge=1, description="Matches per query face when the caller does not say.")
    search_consistency: Literal["strong", "bounded"] = Field(
        default="bounded", description="Milvus consistency of searches. Either way an erasure is invisible to the "
        "very next search on every replica (hits are checked against provenance, docs/erasure.md); strong also "
        "waits for Milvus's next time tick (200-400 ms a search on Milvus server) to see rows ingested just now.")
    erasure_threshold: float = Field(default=0.45, ge=-1, le=1, description="Similarity at or above which a face is erased.")
    suppression_threshold: float = Field(default=0.45, ge=-1, le=1, description="Similarity to a suppressed person that refuses a new face.")
    erasure_verify_inline_max_faces: int = Field(
        default=50_000, ge=0, description="An erasure by photo verifies exactly (a full scan of the stored "
        "embeddings) before answering when the collection holds at most this many faces (a few seconds); above, "
        "the API answers first and the receipt is updated.")
    erasure_purge_timeout_s: float = Field(
        default=300.0, gt=0, description="How long an erasure waits for Milvus to compact the deleted rows away "
        "before its receipt says 'timeout' or 'partial' (`consentry forget --finish` checks again).")
    milvus_gc_drop_tolerance_s: int = Field(
        default=10800, ge=0, description="The Milvus server's dataCoord.gc.dropTolerance: receipts state that old "
        "segment files are removed within this long after compaction (Milvus's default 3 h).")
    milvus_lite_max_faces: int = Field(
        default=200_000, ge=1, description="Above this many faces on embedded milvus-lite (which answers by brute "
        "force: ~1.2 s a search at 1M), `consentry doctor` and the API warn to move to Milvus server.")
    retention_default_days: int = Field(default=365, ge=1, description="Retention of a source registered without --retention-days.")
    retention_max_days: int = Field(default=1095, ge=1, description="Cap on any source's retention (BIPA: 3 years).")

    # --- crawler ----------------------------------------------------------------------------------
    crawl_user_agent: str = Field(default="ConsentryBot/0.1", description="Product token; the contact URL is appended.")
    crawl_contact_url: str = Field(default="https://github.com/consentry/consentry/blob/main/docs/bot.md", description="Public page about the crawler, named in its user agent.")
    crawl_robots_token: str = Field(default="consentry", description="Token matched in robots.txt and X-Robots-Tag.")
    crawl_concurrency_per_domain: int = Field(default=2, ge=1, description="Requests in flight to one domain.")
    crawl_download_delay: float = Field(default=0.25, ge=0.001, description="Seconds between requests to one domain (>0 keeps per-domain limits enforced).")
    crawl_autothrottle: bool = Field(default=True, description="Scrapy AutoThrottle: slow down when a site slows down.")
    crawl_max_page_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Largest page body the crawler reads.")
    crawl_max_pages: int = Field(default=1000, ge=1, description="Pages per crawl job unless --max-pages says otherwise.")
    crawl_depth: int = Field(default=3, ge=0, description="Link depth from the seeds unless --depth says otherwise.")
    crawl_retry_times: int = Field(default=3, ge=0, description="Retries of a page that failed transiently.")
    crawl_publish_retries: int = Field(default=5, ge=0, description="Broker retries before a crawl fails loudly.")
    crawl_honour_ai_crawler_groups: bool = Field(
        default=True, description="A robots.txt group that names a well-known AI crawler (consentry/core/data/"
        "ai_crawlers.txt) and disallows a path opts that path out for us too.")

    # --- opt-out signals read from the image (ingest) and the do-not-train registry ------------------
    ingest_read_c2pa: bool = Field(
        default=True, description="Read each fetched image's C2PA manifest (only the manifest) and honour its "
        "training-mining assertion; an unreadable or invalid manifest refuses the image.")
    optout_phash_distance: int = Field(
        default=6, ge=0, le=32, description="A do-not-train list's perceptual hash matches an image within this "
        "many bits (of 64).")

    # --- fetch / validate -------------------------------------------------------------------------
    allow_private_networks: bool = Field(default=False, description="Allow loopback/private/link-local targets (tests, demo).")
    fetch_timeout_s: float = Field(default=15.0, gt=0, description="Timeout of one image fetch.")
    fetch_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="Largest image body read (streamed; larger goes to the DLQ).")
    fetch_max_redirects: int = Field(default=5, ge=0, description="Redirects followed per image, each re-checked against the network policy.")
    image_max_pixels: int = Field(default=40_000_000, ge=1024, description="Largest image decoded (decompression-bomb guard).")
    image_min_side: int = Field(default=32, ge=1, description="Smallest image side decoded.")

    # --- ingest workers -------------------------------------------------------------------------
    ray_address: str | None = Field(
        default=None, description="Ray cluster address (host:port or ray://...) for `ingest run`; unset: the local "
        "stack's Ray head (`consentry stack up`). Token auth uses Ray's own RAY_AUTH_MODE / RAY_AUTH_TOKEN(_PATH).")
    ray_connect_timeout_s: float = Field(
        default=120.0, gt=0, description="How long `ingest run` keeps trying to connect to (or start) Ray before "
        "giving up; a busy machine can take tens of seconds.")
    ingest_workers: int = Field(default=1, ge=1, description="Ingest worker actors (one Kafka consumer each).")
    ingest_worker_cpus: float = Field(default=0.5, gt=0, description="Ray CPUs each ingest actor asks for.")
    ingest_worker_gpus: float = Field(default=0, ge=0, description="Ray GPUs each ingest actor asks for (with model_device=cuda).")
    ingest_actor_start_timeout_s: float = Field(
        default=120.0, gt=0, description="How long `ingest run` waits for its actors to start (model load, Kafka "
        "join) before failing; nodes still joining the cluster count against it.")
    ingest_idle_seconds: float = Field(default=6.0, gt=0, description="--until-idle: exit after this long with nothing to do.")
    ingest_prepare_threads: int = Field(
        default=4, ge=1, description="Threads per worker that fetch, decode, hash and look up images ahead of the "
        "model (the prepare stage).")
    ingest_write_threads: int = Field(default=8, ge=1, description="Parallel S3 writes per worker batch.")
    ingest_max_in_flight_batches: int = Field(
        default=3, ge=1, description="Batches a worker holds between poll and commit: prepare of N+1, faces of N and "
        "writes of N-1 overlap. 1 turns the pipeline off.")
    ingest_max_in_flight_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024 * 1024, description="Image bytes plus decoded pixels a worker may hold in "
        "flight; preparing waits above it (the oldest batch always proceeds).")
    retry_max_attempts: int = Field(default=5, ge=1, description="Attempts for a transient dependency failure.")
    retry_base_delay_s: float = Field(default=0.5, gt=0, description="First retry delay (exponential backoff, full jitter).")
    retry_max_delay_s: float = Field(default=10.0, gt=0, description="Longest retry delay.")

    # --- query API --------------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Address the query API listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port the query API listens on.")
    api_max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest photo the API accepts.")
    api_max_top_k: int = Field(default=100, ge=1, description="Largest top_k a search may ask for.")
    api_rate_limit_per_minute: int = Field(default=120, ge=1, description="Requests per minute per token.")
    api_console_session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60, description="Lifetime of a web "
                                             "console sign-in (the session cookie's Max-Age).")
    api_console_secure_cookie: Literal["auto", "always", "never"] = Field(
        default="auto", description="Mark the console's session cookie Secure: auto does so when the request came "
        "over https; always suits a TLS-terminating proxy in front of the API.")
    api_ingest_metrics_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="The ingest drivers' /metrics URLs (`consentry ingest run --http-port`), "
        "read by the console's operations page; comma-separated in the environment.")

    # --- audit log ---------------------------------------------------------------------------------
    audit_checkpoint_target: str = Field(
        default="", description="Where signed audit checkpoints go, outside the audit bucket: file:///path or "
        "s3://bucket/prefix (empty: file://$CONSENTRY_HOME/audit-checkpoints). `audit verify` checks the log "
        "against them, so a log cut short or rewritten is detected.")
    audit_signing_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (32 bytes, base64) that signs audit checkpoints "
        "(`consentry audit keygen`); unset: one is created in $CONSENTRY_HOME/audit-signing.key on first use.")
    audit_verify_key: str | None = Field(
        default=None, description="Ed25519 public key (base64) for verifying checkpoints without the signing key.")

    # --- local stack --------------------------------------------------------------------------------
    stack_milvus: Literal["embedded", "server"] = Field(default="embedded", description="Milvus the local stack runs.")
    stack_ray: bool = Field(default=True, description="`consentry stack up` also starts a local Ray head (loopback, "
                            "token auth) that `ingest run` connects to.")
    stack_ray_port: int = Field(default=26379, ge=1024, le=65000, description="The local Ray head's GCS port; "
                                "its other ports follow it (port+1 ... port+7, workers port+100 ... port+199).")
    stack_ray_cpus: int | None = Field(default=None, ge=1, description="CPUs the local Ray head offers (default: "
                                       "this machine's).")
    stack_ray_object_store_mb: int = Field(default=256, ge=64, description="The local Ray head's object store size.")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if any(c.isspace() for c in v):
            raise ValueError("topic prefix must not contain spaces")
        return v

    @field_validator("api_ingest_metrics_urls", mode="before")
    @classmethod
    def _urls(cls, v: Any) -> Any:
        if isinstance(v, str):  # comma-separated, or a JSON list (as the crawl launcher passes settings on)
            v = json.loads(v) if v.strip().startswith("[") else [u.strip() for u in v.split(",") if u.strip()]
        for u in v or []:
            if urlparse(str(u)).scheme not in ("http", "https"):
                raise ValueError(f"{u!r} is not an http(s) URL")
        return v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for name in ("s3_endpoint", "milvus_uri"):
            u = urlparse(getattr(self, name))
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError(f"{name} must be an http(s) URL with a host")
        if self.retention_default_days > self.retention_max_days:
            raise ValueError("retention_default_days exceeds retention_max_days")
        return self

    # --- derived values -----------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def topic_images(self) -> str:
        return self.topic("images")

    @property
    def topic_dlq(self) -> str:
        return self.topic("dlq")

    @property
    def topic_erasures(self) -> str:
        return self.topic("erasures")

    @property
    def user_agent(self) -> str:
        return f"{self.crawl_user_agent} (+{self.crawl_contact_url})"

    @property
    def stack_dir(self) -> Path:
        return self.home / "stack"

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict, secrets masked, for `consentry config` and logs."""
        out = {}
        for k, v in self.model_dump(mode="json").items():
            if isinstance(getattr(self, k), SecretStr):
                v = "**********" if getattr(self, k).get_secret_value() else ""
            out[k] = v
        return out

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls, init_settings, env_settings))


class _FileSource(PydanticBaseSettingsSource):
    """The TOML config file, then the local stack's generated credentials."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource,
                 env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._init, self._env = init, env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        given = {**self._env(), **self._init()}
        home = Path(given.get("home") or default_home())
        cfg = given.get("config") or (home / "consentry.toml")
        data: dict[str, Any] = {}
        cfg = Path(cfg)
        if cfg.is_file():
            try:
                raw = tomllib.loads(cfg.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"config file {cfg}: {exc}") from None
            data.update(raw.get("consentry", raw))
        elif given.get("config"):
            raise ConfigError(f"config file {cfg} does not exist")
        creds = home / "stack" / "credentials.json"
        if creds.is_file():
            try:
                for k, v in json.loads(creds.read_text()).items():
                    data.setdefault(k, v)
            except (OSError, ValueError):
                pass
        return data


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into a one-line ConfigError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        env = f" ({ENV_PREFIX}{field.upper()})" if field else ""
        raise ConfigError(f"invalid setting {field or '(settings)'}{env}: {err.get('msg')}") from None
