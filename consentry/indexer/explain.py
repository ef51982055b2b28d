"""Explain: why an image was or was not indexed, from its provenance and the audit log."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..catalog import ProvenanceStore
from ..core.errors import NotFound
from ..core.records import url_key
from .audit import AuditLog


@dataclass
class Explanation:
    url: str
    page_url: str
    source_id: str
    basis: str
    decision: str
    reason: str
    signals: list[dict[str, Any]]
    faces_indexed: list[str]
    faces_erased: list[str]
    erasures: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: str | None = None
    http_status: int | None = None
    sha256: str | None = None
    duplicate_of: str | None = None
    model_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Explainer:
    def __init__(self, provenance: ProvenanceStore, audit: AuditLog) -> None:
        self.provenance = provenance
        self.audit = audit

    def explain(self, url: str) -> Explanation:
        prov = self.provenance.get(url_key(url))
        if prov is None:
            raise NotFound(f"no provenance for {url}: it was never ingested, or it was erased")
        erasures = []
        if prov.erased_by:
            wanted = set(prov.erased_by)
            for e in self.audit.entries():
                d = e.get("details", {})
                rid = d.get("request_id") or d.get("run_id")
                if rid in wanted:
                    erasures.append({"request_id": rid, "action": e["action"], "at": e["at"], "by": d.get("by"),
                                     "actor": e.get("actor")})
        return Explanation(
            url=prov.url, page_url=prov.page_url, source_id=prov.source_id, basis=prov.basis.value,
            decision=prov.decision.value, reason=prov.reason,
            signals=[s.model_dump() for s in prov.signals],
            faces_indexed=[f.face_id for f in prov.faces if not f.erased],
            faces_erased=[f.face_id for f in prov.faces if f.erased],
            erasures=erasures, fetched_at=prov.fetched_at.isoformat() if prov.fetched_at else None,
            http_status=prov.http_status, sha256=prov.sha256, duplicate_of=prov.duplicate_of,
            model_id=prov.model_id)
