"""Do-not-train lists: their entries (domains, URL prefixes, image sha256, perceptual hashes), read and matched.

A list is imported offline (``consentry optout import``) from CSV (``type,value`` rows) or JSON (``{"entries":
[{"type": ..., "value": ...}]}``, or ``{"domains": [...], "prefixes": [...], "sha256": [...], "phash": [...]}``).
The crawler honours domains and prefixes (pages and image URLs); ingest honours all four, before
any face work. A match is an opt-out with reason ``do-not-train`` naming the list and the entry.
Pure functions, no I/O; a bad entry is an error naming it, and nothing of that file is imported.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from .consent import matches_source
from .errors import ConfigError
from .records import Signal

Kind = Literal["domain", "prefix", "sha256", "phash"]
KINDS: tuple[str, ...] = ("domain", "prefix", "sha256", "phash")
_PLURAL = {"domains": "domain", "prefixes": "prefix", "sha256": "sha256", "phash": "phash", "phashes": "phash"}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}(:\d{{1,5}})?$")
_HEX64, _HEX16 = re.compile(r"^[0-9a-f]{64}$"), re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Entry:
    kind: Kind
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def entry(kind: str, value: str) -> Entry:
    """A checked entry (values normalised: lower-case hosts and hashes); ValueError says what is wrong."""
    kind = _PLURAL.get(kind.strip().lower(), kind.strip().lower())
    value = value.strip()
    if kind == "domain":
        value = value.lower().rstrip(".")
        if not _DOMAIN.match(value):
            raise ValueError(f"{value!r} is not a domain (a host name, optionally with :port)")
    elif kind == "prefix":
        if not re.match(r"^https?://[^/\s]+", value, re.I) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not an http(s) URL prefix")
    elif kind == "sha256":
        value = value.lower()
        if not _HEX64.match(value):
            raise ValueError(f"{value!r} is not a sha256 (64 hex digits)")
    elif kind == "phash":
        value = value.lower()
        if not _HEX16.match(value):
            raise ValueError(f"{value!r} is not a 64-bit perceptual hash (16 hex digits, Consentry's DCT pHash)")
    else:
        raise ValueError(f"unknown entry type {kind!r} (one of {', '.join(KINDS)})")
    return Entry(kind, value)  # type: ignore[arg-type]


def parse_list(data: bytes, filename: str = "") -> tuple[list[Entry], dict[str, Any]]:
    """(entries, the file's own ``name``/``date`` if JSON gives them). ConfigError names the bad entry."""
    text = data.decode("utf-8-sig", "replace")
    is_json = filename.lower().endswith(".json") or text.lstrip().startswith(("{", "["))
    meta: dict[str, Any] = {}
    raw: list[tuple[str, str, str]] = []  # (where, type, value)
    if is_json:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{filename or 'list'}: not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            meta = {k: doc[k] for k in ("name", "date") if k in doc}
            items = doc.get("entries", [])
            for key, kind in _PLURAL.items():
                raw += [(f"{key}[{i}]", kind, str(v)) for i, v in enumerate(doc.get(key) or [])]
        else:
            items = doc
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or "type" not in item or "value" not in item:
                raise ConfigError(f"{filename or 'list'}: entries[{i}] needs a type and a value")
            raw.append((f"entries[{i}]", str(item["type"]), str(item["value"])))
    else:
        rows = list(csv.reader(io.StringIO(text)))
        start = 1 if rows and [c.strip().lower() for c in rows[0][:2]] == ["type", "value"] else 0
        for n, row in enumerate(rows[start:], start=start + 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 2:
                raise ConfigError(f"{filename or 'list'}: line {n}: expected type,value")
            raw.append((f"line {n}", row[0], row[1]))
    entries: list[Entry] = []
    for where, kind, value in raw:
        try:
            entries.append(entry(kind, value))
        except ValueError as exc:
            raise ConfigError(f"{filename or 'list'}: {where}: {exc}") from None
    if not entries:
        raise ConfigError(f"{filename or 'list'}: no entries")
    return list(dict.fromkeys(entries)), meta


@dataclass(frozen=True)
class Match:
    list_name: str
    list_date: str
    entry: Entry
    distance: int | None = None  # perceptual-hash matches: the Hamming distance

    def signal(self, scope: str = "image") -> Signal:
        near = f" (distance {self.distance})" if self.distance else ""
        return Signal(name="do-not-train", value=f"{self.list_name} ({self.list_date}): {self.entry}{near}",
                      opt_out=True, scope=scope,  # type: ignore[arg-type]
                      detail=f"on the do-not-train list {self.list_name!r} dated {self.list_date}")


class OptOutIndex:
    """Every imported list's entries, indexed for matching; ``lists`` is [(name, date, entries)]."""

    def __init__(self, lists: list[tuple[str, str, list[Entry]]], phash_distance: int = 6) -> None:
        import numpy as np  # only where hashes are matched: `consentry --help` stays instant

        self._np = np
        self.phash_distance = phash_distance
        self._url: list[tuple[str, str, Entry]] = []
        self._sha: dict[str, tuple[str, str, Entry]] = {}
        ph: list[tuple[str, str, Entry]] = []
        for name, date, entries in lists:
            for e in entries:
                if e.kind in ("domain", "prefix"):
                    self._url.append((name, date, e))
                elif e.kind == "sha256":
                    self._sha.setdefault(e.value, (name, date, e))
                else:
                    ph.append((name, date, e))
        self._ph = ph
        self._ph_bits = np.array([int(e.value, 16) for _, _, e in ph], dtype=np.uint64)

    def __bool__(self) -> bool:
        return bool(self._url or self._sha or self._ph)

    def match_url(self, url: str) -> Match | None:
        for name, date, e in self._url:
            if matches_source(e.value, url):
                return Match(name, date, e)
        return None

    def match_image(self, sha256: str | None, phash: str | None) -> Match | None:
        if sha256 and sha256 in self._sha:
            return Match(*self._sha[sha256])
        if phash and len(self._ph):
            np = self._np
            dist = np.bitwise_count(self._ph_bits ^ np.uint64(int(phash, 16)))
            best = int(np.argmin(dist))
            if int(dist[best]) <= self.phash_distance:
                name, date, e = self._ph[best]
                return Match(name, date, e, int(dist[best]))
        return None

    def url_entries(self) -> list[tuple[str, str, str, str]]:
        """(list, date, kind, value) of the domain and prefix entries (what a crawl honours)."""
        return [(n, d, e.kind, e.value) for n, d, e in self._url]
