"""Crawl jobs: their spec, state and counters."""

from __future__ import annotations

from ..clients.objectstore import ObjectStore
from ..core.errors import NotFound, ObjectNotFound
from ..core.records import CrawlJob, check_id, utcnow

PREFIX = "jobs/"


class JobStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}{check_id(job_id, 'job')}.json"

    def put(self, job: CrawlJob) -> CrawlJob:
        job = job.model_copy(update={"updated_at": utcnow()})
        self.store.put(self.key(job.id), job.to_json(), content_type="application/json")
        return job

    def get(self, job_id: str) -> CrawlJob:
        try:
            return CrawlJob.from_json(self.store.get(self.key(job_id)))
        except ObjectNotFound:
            raise NotFound(f"no crawl job {job_id!r} (see `consentry crawl list`)") from None

    def list(self) -> list[CrawlJob]:
        jobs = [CrawlJob.from_json(self.store.get(k)) for k in self.store.list(PREFIX) if k.endswith(".json")]
        return sorted(jobs, key=lambda j: j.created_at)
