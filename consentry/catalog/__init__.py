"""The system of record in the object store: sources, crawl jobs, provenance.

Object layout (bucket ``s3_bucket``)::

    sources/{source_id}.json              Source
    jobs/{job_id}.json                    CrawlJob (state and counters)
    provenance/{url_key[:2]}/{url_key}.json   Provenance, one per image URL
    images/{sha[:2]}/{sha}/{url_key}      which URLs carried these bytes (dedup index, one marker each)
    crops/{face_id}.jpg                   face crops, only if s3_store_crops
    audit/...                             the hash-chained audit log (indexer.audit)
    receipts/{request_id}.json            erasure receipts (indexer.erasure)
    erasures/scopes/{kind}/{id}           when a source, job or URL was erased (tombstones)
    crawl-log/jobs/{job_id}/...jsonl      what each crawl refused and which pages it read (batches)
    crawl-log/{hosts,sources}/.../{job}   markers: which jobs wrote about a host, crawled for a source

Every stage reads and writes these through the classes here, never by key strings of its own.
"""

from .crawllog import CrawlLog
from .jobs import JobStore
from .provenance import ProvenanceStore
from .sources import SourceRegistry
from .tombstones import Tombstones

__all__ = ["CrawlLog", "JobStore", "ProvenanceStore", "SourceRegistry", "Tombstones"]
