"""The audit log: hash-chained JSON entries in the object store, with signed checkpoints outside it.

Every search, erasure and consent change appends one entry. Entry ``n`` is the object
``audit/entries/{n:012d}.json`` holding one JSON line with ``prev`` = the hash of entry ``n-1``
and ``hash`` = sha256 of its own canonical JSON (without ``hash``). Appends are conditional
creates (S3 ``If-None-Match: *``), so concurrent writers (several API replicas, the CLI) never
fork the chain: the loser of a race reads the entries it missed and tries the next number.

An append costs one conditional PUT: each process remembers the newest entry it saw, so it does
not re-read the head first. The head hint (``audit/head.json``) and the signed checkpoint
(:mod:`.checkpoints`, outside the bucket) are written after the append by one background thread, at
most every ``HINT_INTERVAL_S`` for the newest entry (bursts coalesce); erasures, retention sweeps and
consent changes are checkpointed before their append returns.

``verify()`` recomputes the chain and names the first entry that was edited, removed or moved, and
checks the log against the signed checkpoints: a log cut short (newest entries and the head hint
deleted) ends before a checkpoint; a rewritten one no longer has the checkpointed hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..clients.objectstore import ObjectStore
from ..core.errors import AuditTampered, ConsentryError, ObjectNotFound
from ..core.retry import NO_RETRY, RetryPolicy
from .checkpoints import Checkpoints

log = logging.getLogger("consentry.audit")

PREFIX = "audit/entries/"
HEAD = "audit/head.json"
GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


#: actions checkpointed before their append returns (the rest: in the background, coalesced)
CHECKPOINT_NOW = frozenset({"erasure", "erasure-finished", "retention-sweep", "consent-change"})


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    problem: str | None = None
    entry: int | None = None  # the first bad entry's sequence number
    checkpoint_seq: int | None = None  # the newest signed checkpoint the log was checked against
    checkpoint_at: str | None = None
    checkpoints: str | None = None  # where they are kept; None: not configured

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problem": self.problem, "entry": self.entry,
                "checkpoint_seq": self.checkpoint_seq, "checkpoint_at": self.checkpoint_at,
                "checkpoints": self.checkpoints}


class AuditLog:
    #: the background head hint / checkpoint is written at most this often (the newest entry each time)
    HINT_INTERVAL_S = 0.25

    def __init__(self, store: ObjectStore, clock=time.time, checkpoints: Checkpoints | None = None,
                 retry: RetryPolicy = NO_RETRY) -> None:
        self.store = store
        self.clock = clock
        self.checkpoints = checkpoints
        self.retry = retry
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None  # the newest entry this process knows of
        self._pending: dict[str, Any] | None = None  # the newest entry not yet hinted / checkpointed
        self._pending_lock = threading.Lock()
        self._background = ThreadPoolExecutor(1, thread_name_prefix="audit-head")
        self._hinted_at = 0.0

    @staticmethod
    def key(seq: int) -> str:
        return f"{PREFIX}{seq:012d}.json"

    def _read(self, seq: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.retry.call(lambda: self.store.get(self.key(seq)), "read audit entry"))
        except ObjectNotFound:
            return None

    def head(self) -> dict[str, Any] | None:
        """The newest entry (the head hint, then probing forward for appends made since)."""
        try:
            seq = int(json.loads(self.retry.call(lambda: self.store.get(HEAD), "read audit head"))["seq"])
        except (ObjectNotFound, ValueError, KeyError):
            seq = 0
        entry = self._read(seq) if seq else None
        if seq and entry is None:  # hint ahead of the entries: fall back to listing
            keys = sorted(self.store.list(PREFIX))
            seq = int(keys[-1][len(PREFIX):-5]) if keys else 0
            entry = self._read(seq) if seq else None
        return self._forward(entry)

    def _forward(self, entry: dict[str, Any] | None) -> dict[str, Any] | None:
        """Follow the chain from ``entry`` to the newest entry."""
        seq = entry["seq"] if entry else 0
        while True:
            nxt = self._read(seq + 1)
            if nxt is None:
                return entry
            seq, entry = seq + 1, nxt

    def append(self, action: str, actor: str, **details: Any) -> dict[str, Any]:
        """Append one entry; returns it (with seq and hash). One conditional PUT when no one else wrote."""
        with self._lock:
            head = self._last if self._last is not None else self.head()
            for _ in range(50):
                entry = self._entry(head, action, actor, details)
                created = self._put_entry(entry)
                if not created:  # another writer took this number (or our own earlier attempt did)
                    there = self._read(entry["seq"])
                    if there is None or there.get("hash") != entry["hash"]:
                        head = self._forward(there)
                        continue
                self._last = entry
                break
            else:
                raise ConsentryError("audit log: could not append after 50 attempts (heavy contention?)")
        checkpoints = self.checkpoints
        if checkpoints is not None and action in CHECKPOINT_NOW:
            self.retry.call(lambda: checkpoints.write(entry["seq"], entry["hash"], entry["at"], archive=True),
                            "write audit checkpoint")
        self._after(entry)
        return entry

    def _put_entry(self, entry: dict[str, Any]) -> bool:
        """Create entry ``seq`` if no one did (conditional PUT); False if the number is taken."""
        key = self.key(entry["seq"])
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"

        def put() -> bool:
            return self.store.put_if_absent(key, line, content_type="application/x-ndjson")

        return self.retry.call(put, "append audit entry")

    def _entry(self, head: dict[str, Any] | None, action: str, actor: str, details: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "seq": (head["seq"] + 1) if head else 1,
            "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            "action": action,
            "actor": actor,
            "details": details,
            "prev": head["hash"] if head else GENESIS,
        }
        entry["hash"] = entry_hash(entry)
        return entry

    def _after(self, entry: dict[str, Any]) -> None:
        """Hint and checkpoint the newest entry in the background (one task at a time, newest wins)."""
        with self._pending_lock:
            scheduled = self._pending is not None
            if self._pending is None or self._pending["seq"] < entry["seq"]:
                self._pending = entry
        if not scheduled:
            self._background.submit(self._write_head)

    def _write_head(self) -> None:
        wait = self._hinted_at + self.HINT_INTERVAL_S - time.monotonic()
        if wait > 0:  # under load, appends made meanwhile coalesce into this one write
            time.sleep(wait)
        with self._pending_lock:
            entry, self._pending = self._pending, None
        if entry is None:
            return
        self._hinted_at = time.monotonic()
        try:
            self.store.put(HEAD, json.dumps({"seq": entry["seq"]}).encode(), content_type="application/json")
            if self.checkpoints is not None and entry["action"] not in CHECKPOINT_NOW:  # those are written already
                self.checkpoints.write(entry["seq"], entry["hash"], entry["at"])
        except Exception:
            log.warning("audit: could not write the head hint / checkpoint for entry %d", entry["seq"],
                        exc_info=True)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until the head hint and checkpoint of every append so far are written."""
        self._background.submit(lambda: None).result(timeout=timeout_s)

    def checkpoint(self) -> dict[str, Any] | None:
        """Checkpoint the newest entry now (``consentry audit checkpoint``); returns it."""
        if self.checkpoints is None:
            raise ConsentryError("audit checkpoints are not configured (audit_checkpoint_target)")
        head = self.head()
        if head is not None:
            self.checkpoints.write(head["seq"], head["hash"], head["at"], archive=True)
        return head
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
        where = self.checkpoints.sink.where if self.checkpoints is not None else None
        with ThreadPoolExecutor(16, thread_name_prefix="audit-verify") as pool:
            bodies = pool.map(self.store.get, keys)
            prev = GENESIS
            hashes: list[str] = []
            for i, (k, body) in enumerate(zip(keys, bodies), start=1):
                seq_in_key = int(k[len(PREFIX):-5])
                if seq_in_key != i:
                    return VerifyReport(False, i - 1, f"entry {i} is missing (next present is {seq_in_key})", i,
                                        checkpoints=where)
                try:
                    e = json.loads(body)
                except ValueError:
                    return VerifyReport(False, i - 1, f"entry {i} is not valid JSON", i, checkpoints=where)
                if e.get("seq") != i:
                    return VerifyReport(False, i - 1, f"entry {i} carries seq {e.get('seq')} (moved?)", i,
                                        checkpoints=where)
                if e.get("hash") != entry_hash(e):
                    return VerifyReport(False, i - 1, f"entry {i} was modified (hash mismatch)", i, checkpoints=where)
                if e.get("prev") != prev:
                    return VerifyReport(False, i - 1, f"entry {i} does not follow entry {i - 1} (chain broken)", i,
                                        checkpoints=where)
                prev = e["hash"]
                hashes.append(prev)
        n = len(keys)
        try:
            hint = int(json.loads(self.store.get(HEAD))["seq"])
        except (ObjectNotFound, ValueError, KeyError):
            hint = 0
        if hint > n:
            return VerifyReport(False, n, f"entries after {n} were removed (head says {hint})", n + 1,
                                checkpoints=where)
        if self.checkpoints is None:
            return VerifyReport(True, n)
        return self._against_checkpoints(hashes, where)

    def _against_checkpoints(self, hashes: list[str], where: str | None) -> VerifyReport:
        checkpoints = self.checkpoints
        assert checkpoints is not None
        n, newest = len(hashes), None
        for name, cp in checkpoints.all():
            if cp is None or not checkpoints.authentic(cp):
                return VerifyReport(False, n, f"checkpoint {name} at {where} is not signed by this deployment's "
                                    "audit key (forged or corrupted)", None, checkpoints=where)
            if cp.seq > n:
                return VerifyReport(False, n, f"the log ends at entry {n} but a checkpoint signed at {cp.at} "
                                    f"records entry {cp.seq}: entries {n + 1}..{cp.seq} (at least) were removed",
                                    n + 1, cp.seq, cp.at, where)
            if cp.seq >= 1 and hashes[cp.seq - 1] != cp.hash:
                return VerifyReport(False, n, f"entry {cp.seq} differs from the checkpoint signed at {cp.at} "
                                    "(the log was rewritten)", cp.seq, cp.seq, cp.at, where)
            if newest is None or cp.seq > newest.seq:
                newest = cp
        return VerifyReport(True, n, None, None, newest.seq if newest else None, newest.at if newest else None,
                            where)

    def check(self) -> int:
        """verify() that raises AuditTampered; returns the number of entries."""
        rep = self.verify()
        if not rep.ok:
            raise AuditTampered(f"audit log does not verify: {rep.problem}", entry=rep.entry)
        return rep.entries
