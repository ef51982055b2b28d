"""The consent policy: how signals are read and how the decision is made.

Pure functions, no I/O: the crawler and the ingest workers gather the signals; this module
says what they mean. A face is embedded only if (1) its source has a basis other than
``none``, (2) no opt-out signal applies, (3) it is not on the suppression list.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from .records import Basis, Decision, Signal

#: robots directives that opt an image out of being indexed by us
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex", "none")

#: the order in which reasons are reported when several apply
REASONS = (
    "basis-none",
    "outside-source",
    "robots-txt",
    "noai",
    "noimageai",
    "noindex",
    "noimageindex",
    "tdm-reservation",
    "iptc-datamining-prohibited",
    "suppressed",
)


def robots_directives(values: Iterable[str], token: str) -> set[str]:
    """Directives from X-Robots-Tag header values or ``<meta name=robots>`` contents that apply to us.

    Handles ``noai, noimageai``, user-agent scoped forms (``consentry: noai``) and ignores
    directives scoped to another user agent (``googlebot: noindex``).
    """
    token = token.lower()
    out: set[str] = set()
    for raw in values:
        if raw is None:
            continue
        text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        scope: str | None = None
        for part in text.split(","):
            part = part.strip().lower()
            if not part:
                continue
            m = re.match(r"^([a-z0-9_.\-]+)\s*:\s*(.*)$", part)
            if m and m.group(1) not in ("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"):
                scope, part = m.group(1), m.group(2).strip()
            if scope not in (None, token, "*", "all"):
                continue
            if part:
                out.add(part.split(":", 1)[0].strip())
    return out


def robots_signal(name: str, values: Iterable[str], token: str, scope: str = "page") -> Signal | None:
    """A Signal for the opt-out directives in ``values`` (None when there is no header/meta at all)."""
    values = [v for v in values if v]
    if not values:
        return None
    found = sorted(robots_directives(values, token) & set(OPT_OUT_DIRECTIVES))
    return Signal(name=name, value=",".join(found) if found else "allowed", opt_out=bool(found), scope=scope)  # type: ignore[arg-type]


def tdm_header_signal(value: str | None, scope: str = "page") -> Signal | None:
    if value is None:
        return None
    v = str(value).strip()
    return Signal(name="tdm-reservation", value=v, opt_out=v == "1", scope=scope)  # type: ignore[arg-type]


def tdmrep_rules(document: bytes | str) -> list[tuple[str, bool]]:
    """Parse ``/.well-known/tdmrep.json`` into (location pattern, reserved) pairs.

    Malformed documents raise ValueError; callers decide what that means.
    """
    data = json.loads(document)
    if not isinstance(data, list):
        raise ValueError("tdmrep.json must be a JSON array")
    rules = []
    for entry in data:
        if not isinstance(entry, dict) or "location" not in entry:
            raise ValueError("tdmrep.json entries need a location")
        rules.append((str(entry["location"]), str(entry.get("tdm-reservation", 0)) == "1"))
    return rules


def tdmrep_reserved(rules: list[tuple[str, bool]], url: str) -> bool | None:
    """Apply tdmrep.json rules to a URL: the longest matching location wins (None if none match)."""
    path = urlsplit(url).path or "/"
    best: tuple[int, bool] | None = None
    for location, reserved in rules:
        pattern = location if location.startswith("/") else "/" + location
        if pattern.endswith("$"):
            ok = fnmatch.fnmatchcase(path, pattern[:-1])
        else:
            ok = fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("*") + "*")
        if ok and (best is None or len(location) > best[0]):
            best = (len(location), reserved)
    return None if best is None else best[1]


_DMI_RE = re.compile(rb"DataMining(?:\s*=\s*[\"']|>\s*|[^>]{0,200}?rdf:resource\s*=\s*[\"'])([^\"'<]+)", re.I)


def iptc_datamining(xmp: bytes | None) -> str | None:
    """The IPTC ``plus:DataMining`` value in an XMP packet (e.g. ``DMI-PROHIBITED-AIMLTRAINING``)."""
    if not xmp:
        return None
    m = _DMI_RE.search(xmp)
    if not m:
        return None
    value = m.group(1).decode("utf-8", "replace").strip()
    return value.rsplit("/", 1)[-1]


def iptc_signal(xmp: bytes | None) -> Signal:
    value = iptc_datamining(xmp)
    if value is None:
        return Signal(name="iptc-datamining", value="absent", opt_out=False, scope="image")
    return Signal(name="iptc-datamining", value=value, opt_out="PROHIBITED" in value.upper(), scope="image")


def basis_signal(basis: Basis) -> Signal:
    return Signal(name="basis", value=basis.value, opt_out=basis is Basis.NONE, scope="source")


def source_match_signal(match: str, page_url: str) -> Signal:
    """Is the page an image was found on covered by the source's match? (Its basis covers nothing else.)"""
    inside = matches_source(match, page_url)
    return Signal(name="source-match", value="inside" if inside else f"page outside {match}", opt_out=not inside,
                  scope="source")


def signal_reason(sig: Signal) -> str:
    """The refusal reason an opt-out signal stands for."""
    if sig.name == "basis":
        return "basis-none"
    if sig.name == "source-match":
        return "outside-source"
    if sig.name == "robots.txt":
        return "robots-txt"
    if sig.name in ("x-robots-tag", "meta-robots"):
        values = [v for v in sig.value.split(",") if v]
        for r in ("noai", "noimageai", "noindex", "noimageindex"):
            if r in values:
                return r
        return "noindex"  # "none"
    if sig.name in ("tdm-reservation", "tdmrep.json"):
        return "tdm-reservation"
    if sig.name == "iptc-datamining":
        return "iptc-datamining-prohibited"
    if sig.name == "suppressed":
        return "suppressed"
    return sig.name


def decide(basis: Basis, signals: Iterable[Signal], suppressed: bool = False) -> tuple[Decision, str]:
    """The consent decision for an image: (INDEX, "allowed") or (REFUSE, reason).

    The reason is the first in REASONS order of those that apply, so the explanation is stable.
    """
    reasons: set[str] = set()
    if basis is Basis.NONE:
        reasons.add("basis-none")
    for sig in signals:
        if sig.opt_out:
            reasons.add(signal_reason(sig))
    if suppressed:
        reasons.add("suppressed")
    if not reasons:
        return Decision.INDEX, "allowed"
    for r in REASONS:
        if r in reasons:
            return Decision.REFUSE, r
    return Decision.REFUSE, sorted(reasons)[0]


def matches_source(match: str, url: str) -> bool:
    """Does ``url`` fall under a source's match (a host, host:port, or URL prefix)?"""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        return False
    if "://" in match:
        m = urlsplit(match)
        if (m.scheme, (m.hostname or "").lower(), m.port) != (u.scheme, u.hostname.lower(), u.port):
            return False
        prefix = m.path or "/"
        path = u.path or "/"
        return path.startswith(prefix) if prefix.endswith("/") else (path == prefix or path.startswith(prefix + "/"))
    host, _, port = match.lower().partition(":")
    if port:
        return u.hostname.lower() == host and str(u.port or "") == port
    h = u.hostname.lower()
    return h == host or h.endswith("." + host)
