"""The crawl log: what each crawl job refused and which pages it read, durable in the object store.

The crawler appends lines in batches (one object per batch, never rewritten by the crawler), so a
large crawl pays one write per batch, not per URL. ``explain`` reads it to answer for URLs that
never reached ingest; ``crawl report`` lists a job's refusals; erasure and retention delete it.

Layout (bucket ``s3_bucket``)::

    crawl-log/jobs/{job_id}/{ms:013d}-{run}-{seq:06d}.jsonl   a batch: JSON lines (CrawlRefusal | PageVisit)
    crawl-log/hosts/{host}/{job_id}                           the job wrote lines about URLs on host (empty)
    crawl-log/sources/{source_id}/{job_id}                    the job crawled for this source (empty)

``ms`` is when the batch was written (epoch milliseconds): retention deletes batches older than
their source's retention period without reading them. Markers are written before the batch they
announce, so every stored line can be found from its URL's host.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, TypeAdapter, ValidationError

from ..clients.objectstore import ObjectStore
from ..core.errors import ObjectNotFound, RecordError
from ..core.records import Decision, Record, Signal, check_id, utcnow

PREFIX = "crawl-log/"
JOBS = PREFIX + "jobs/"
HOSTS = PREFIX + "hosts/"
SOURCES = PREFIX + "sources/"

#: what a refusal refused: a fetched page under an opt-out, a URL never fetched, one image URL, a link not followed
What = Literal["page", "request", "image", "link"]


class _Line(Record):
    """What every crawl-log line carries: the job, its source, when, and the URL it is about."""

    job_id: str
    source_id: str
    at: datetime = Field(default_factory=utcnow)
    url: str


class CrawlRefusal(_Line):
    """One URL the crawler refused, and why (the signals that refused it, with their values)."""

    kind: ClassVar[str] = "crawl refusal"
    record: Literal["refusal"] = "refusal"

    what: What
    reason: str
    signals: list[Signal] = Field(default_factory=list)
    detail: str = ""
    page_url: str | None = None  # the page the URL was found on (images, links; redirects and requests: the referer)


class PageVisit(_Line):
    """One page the crawler read: its decision, its signals and every image URL found on it."""

    kind: ClassVar[str] = "page visit"
    record: Literal["page"] = "page"

    status: int | None = None
    decision: Decision
    reason: str
    signals: list[Signal] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    nofollow: bool = False


CrawlLine = CrawlRefusal | PageVisit
_LINE: TypeAdapter[CrawlLine] = TypeAdapter(
    Annotated[CrawlRefusal | PageVisit, Field(discriminator="record")])  # type: ignore[arg-type,maybe-unrecognized-str-typeform]


def parse_line(text: str | bytes) -> CrawlLine:
    try:
        return _LINE.validate_json(text)
    except ValidationError as exc:
        raise RecordError(f"invalid crawl-log line: {exc.errors()[0].get('msg')}") from None


def host_of(url: str) -> str:
    """The marker name of a URL's host (``host[:port]``, lower case, quoted for an object key)."""
    return quote(urlsplit(url).netloc.lower(), safe="")


def urls_of(line: CrawlLine) -> set[str]:
    """Every URL a line names (the hosts of these get markers)."""
    out = {line.url}
    if isinstance(line, PageVisit):
        out.update(line.images)
    elif line.page_url:
        out.add(line.page_url)
    return out


def mentions(line: CrawlLine, url: str) -> bool:
    return line.url == url or (isinstance(line, PageVisit) and url in line.images)


class CrawlLog:
    """Batches of crawl-log lines per job, with host and source markers. One instance may serve many jobs."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._marked: set[str] = set()  # marker keys this instance already wrote

    # ------------------------------------------------------------------------------- writing
    @staticmethod
    def batch_key(job_id: str, name: str) -> str:
        return f"{JOBS}{check_id(job_id, 'job')}/{name}.jsonl"

    @staticmethod
    def batch_name(run: str, seq: int, now_ms: int | None = None) -> str:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        return f"{ms:013d}-{run}-{seq:06d}"

    def append(self, job_id: str, source_id: str, lines: list[CrawlLine], name: str) -> str:
        """Store one batch of a job's lines under ``name`` (see :meth:`batch_name`); returns its key."""
        markers = {f"{SOURCES}{check_id(source_id, 'source')}/{job_id}"}
        for line in lines:
            markers.update(f"{HOSTS}{host_of(u)}/{job_id}" for u in urls_of(line))
        for key in sorted(markers - self._marked):
            self.store.put(key, b"", content_type="text/plain")
            self._marked.add(key)
        key = self.batch_key(job_id, name)
        body = "".join(line.model_dump_json() + "\n" for line in lines).encode("utf-8")
        self.store.put(key, body, content_type="application/x-ndjson")
        return key

    # ------------------------------------------------------------------------------- reading
    def batches(self, job_id: str) -> list[str]:
        return sorted(self.store.list(f"{JOBS}{check_id(job_id, 'job')}/"))

    def _read(self, key: str) -> list[CrawlLine]:
        try:
            text = self.store.get(key).decode("utf-8")
        except ObjectNotFound:  # deleted since it was listed (erasure, retention)
            return []
        return [parse_line(t) for t in text.splitlines() if t.strip()]

    def lines(self, job_id: str) -> Iterator[CrawlLine]:
        """Every line of a job, oldest batch first (a line stored twice after a crash is given once)."""
        seen: set[str] = set()
        for key in self.batches(job_id):
            for line in self._read(key):
                text = line.model_dump_json()
                if text not in seen:
                    seen.add(text)
                    yield line

    def refusals(self, job_id: str) -> list[CrawlRefusal]:
        return [ln for ln in self.lines(job_id) if isinstance(ln, CrawlRefusal)]

    def jobs_for_host(self, host: str) -> list[str]:
        p = f"{HOSTS}{host}/"
        return sorted(k[len(p):] for k in self.store.list(p))

    def jobs_for_source(self, source_id: str) -> list[str]:
        p = f"{SOURCES}{check_id(source_id, 'source')}/"
        return sorted(k[len(p):] for k in self.store.list(p))

    def about(self, urls: Iterable[str], cache: dict[str, list[CrawlLine]] | None = None) -> list[CrawlLine]:
        """Every line that names one of ``urls`` (as its URL, or as an image found on a page), oldest first.

        Reads every batch of the jobs that wrote about those URLs' hosts; ``cache`` (job id -> lines)
        lets several questions in a row read each job once.
        """
        wanted = set(urls)
        cache = {} if cache is None else cache
        out: list[CrawlLine] = []
        for job in sorted({j for h in {host_of(u) for u in wanted} for j in self.jobs_for_host(h)}):
            if job not in cache:
                cache[job] = list(self.lines(job))
            out.extend(ln for ln in cache[job] if any(mentions(ln, u) for u in wanted))
        return sorted(out, key=lambda ln: ln.at)

    # ------------------------------------------------------------------------------- deleting
    def delete_for(self, *, source: str | None = None, job: str | None = None, url: str | None = None) -> int:
        """Erase what identifies a source's, a job's or a URL's content; returns the objects deleted or rewritten.

        By source or job every batch and marker goes. By URL, lines about that URL go and it is
        removed from the image lists of the pages that showed it; the rest of each batch stays.
        """
        if sum(x is not None for x in (source, job, url)) != 1:
            raise ValueError("delete_for takes exactly one of source, job, url")
        if url is not None:
            return self._delete_url(url)
        if source is not None:
            jobs = self.jobs_for_source(source)
            n = sum(self._delete_job(j) for j in jobs)
            return n + self.store.delete_many([f"{SOURCES}{source}/{j}" for j in jobs])
        return self._delete_job(check_id(job or "", "job"))

    def _delete_job(self, job_id: str, keys: list[str] | None = None) -> int:
        """Delete these batches of a job (all by default); its markers go when no batch is left."""
        every = self.batches(job_id)
        keys = every if keys is None else keys
        hosts = {host_of(u) for k in keys for ln in self._read(k) for u in urls_of(ln)}
        n = self.store.delete_many(keys)
        if set(keys) >= set(every):
            markers = [f"{HOSTS}{h}/{job_id}" for h in sorted(hosts)]
            markers += [k for k in self.store.list(SOURCES) if k.endswith(f"/{job_id}")]
            n += self.store.delete_many([k for k in markers if self.store.exists(k)])
            self._marked.difference_update(markers)
        return n

    def _delete_url(self, url: str) -> int:
        n = 0
        for job in self.jobs_for_host(host_of(url)):
            for key in self.batches(job):
                lines = self._read(key)
                kept = [_without(ln, url) for ln in lines if ln.url != url]
                if len(kept) == len(lines) and kept == lines:
                    continue
                if kept:
                    body = "".join(ln.model_dump_json() + "\n" for ln in kept).encode("utf-8")
                    self.store.put(key, body, content_type="application/x-ndjson")
                else:
                    self.store.delete(key)
                n += 1
        return n

    def expire(self, retention_days: Mapping[str, int], default_days: int | None = None,
               now: float | None = None) -> int:
        """Delete batches older than their source's retention; returns the objects deleted.

        Sources missing from ``retention_days`` keep their batches unless ``default_days`` is given
        (a removed source's records went with its erasure).
        """
        now_ms = int((time.time() if now is None else now) * 1000)
        n = 0
        for marker in list(self.store.list(SOURCES)):
            source_id, _, job_id = marker[len(SOURCES):].partition("/")
            days = retention_days.get(source_id, default_days)
            if days is None:
                continue
            cutoff = now_ms - days * 86_400_000
            old = [k for k in self.batches(job_id) if _batch_ms(k) < cutoff]
            if old:
                n += self._delete_job(job_id, old)
        return n


def _without(line: CrawlLine, url: str) -> CrawlLine:
    """The line with ``url`` no longer named as an image or as the page an URL was found on."""
    if isinstance(line, PageVisit) and url in line.images:
        return line.model_copy(update={"images": [u for u in line.images if u != url]})
    if isinstance(line, CrawlRefusal) and line.page_url == url:
        return line.model_copy(update={"page_url": None})
    return line


def _batch_ms(key: str) -> int:
    try:
        return int(key.rsplit("/", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return 0
