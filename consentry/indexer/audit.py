"""The audit log: hash-chained JSON entries in the object store.

Every search, erasure and consent change appends one entry. Entry ``n`` is the object
``audit/entries/{n:012d}.json`` holding one JSON line with ``prev`` = the hash of entry ``n-1``
and ``hash`` = sha256 of its own canonical JSON (without ``hash``). Appends are conditional
creates (S3 ``If-None-Match: *``), so concurrent writers (several API replicas, the CLI) never
fork the chain: the loser of a race re-reads the head and retries.

``verify()`` recomputes the chain and names the first entry that was edited, removed or moved.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..clients.objectstore import ObjectStore
from ..core.errors import AuditTampered, ConsentryError, ObjectNotFound

PREFIX = "audit/entries/"
HEAD = "audit/head.json"
GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    problem: str | None = None
    entry: int | None = None  # the first bad entry's sequence number

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problem": self.problem, "entry": self.entry}


class AuditLog:
    def __init__(self, store: ObjectStore, clock=time.time) -> None:  # noqa: ANN001
        self.store = store
        self.clock = clock

    @staticmethod
    def key(seq: int) -> str:
        return f"{PREFIX}{seq:012d}.json"

    def _read(self, seq: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.get(self.key(seq)))
        except ObjectNotFound:
            return None

    def head(self) -> dict[str, Any] | None:
        """The newest entry (the head hint, then probing forward for appends made since)."""
        try:
            seq = int(json.loads(self.store.get(HEAD))["seq"])
        except (ObjectNotFound, ValueError, KeyError):
            seq = 0
        entry = self._read(seq) if seq else None
        if seq and entry is None:  # hint ahead of the entries: fall back to listing
            keys = sorted(self.store.list(PREFIX))
            seq = int(keys[-1][len(PREFIX):-5]) if keys else 0
            entry = self._read(seq) if seq else None
        while True:
            nxt = self._read(seq + 1)
            if nxt is None:
                return entry
            seq, entry = seq + 1, nxt

    def append(self, action: str, actor: str, **details: Any) -> dict[str, Any]:
        """Append one entry; returns it (with seq and hash)."""
        for _ in range(50):
            head = self.head()
            seq = (head["seq"] + 1) if head else 1
            entry: dict[str, Any] = {
                "seq": seq,
                "at": datetime.fromtimestamp(self.clock(), timezone.utc).isoformat(),
                "action": action,
                "actor": actor,
                "details": details,
                "prev": head["hash"] if head else GENESIS,
            }
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"
            if self.store.put_if_absent(self.key(seq), line, content_type="application/x-ndjson"):
                self.store.put(HEAD, json.dumps({"seq": seq}).encode(), content_type="application/json")
                return entry
        raise ConsentryError("audit log: could not append after 50 attempts (heavy contention?)")

    def entries(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[dict[str, Any]]:
        for k in sorted(self.store.list(PREFIX)):
            try:
                e = json.loads(self.store.get(k))
            except (ObjectNotFound, ValueError):
                continue
            at = datetime.fromisoformat(e["at"]) if isinstance(e.get("at"), str) else None
            if since and at and at < since:
                continue
            if until and at and at > until:
                continue
            yield e

    def verify(self) -> VerifyReport:
        keys = sorted(self.store.list(PREFIX))
        prev = GENESIS
        for i, k in enumerate(keys, start=1):
            seq_in_key = int(k[len(PREFIX):-5])
            if seq_in_key != i:
                return VerifyReport(False, i - 1, f"entry {i} is missing (next present is {seq_in_key})", i)
            try:
                e = json.loads(self.store.get(k))
            except ValueError:
                return VerifyReport(False, i - 1, f"entry {i} is not valid JSON", i)
            if e.get("seq") != i:
                return VerifyReport(False, i - 1, f"entry {i} carries seq {e.get('seq')} (moved?)", i)
            if e.get("hash") != entry_hash(e):
                return VerifyReport(False, i - 1, f"entry {i} was modified (hash mismatch)", i)
            if e.get("prev") != prev:
                return VerifyReport(False, i - 1, f"entry {i} does not follow entry {i - 1} (chain broken)", i)
            prev = e["hash"]
        try:
            hint = int(json.loads(self.store.get(HEAD))["seq"])
        except (ObjectNotFound, ValueError, KeyError):
            hint = 0
        if hint > len(keys):
            return VerifyReport(False, len(keys), f"entries after {len(keys)} were removed (head says {hint})",
                                len(keys) + 1)
        return VerifyReport(True, len(keys))

    def check(self) -> int:
        """verify() that raises AuditTampered; returns the number of entries."""
        rep = self.verify()
        if not rep.ok:
            raise AuditTampered(f"audit log does not verify: {rep.problem}", entry=rep.entry)
        return rep.entries
