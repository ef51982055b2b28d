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
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from .records import Basis, Decision, Signal

#: robots directives that opt an image out of being indexed by us (``none`` = ``noindex, nofollow``);
#: ``unavailable_after: DATE`` also does once the date has passed. Not opt-outs: ``nofollow`` (links are
#: not followed), ``noarchive``, ``nocache``, ``nosnippet``, ``notranslate``, ``max-snippet``,
#: ``max-image-preview``, ``max-video-preview``, ``indexifembedded`` (they limit display, not use).
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex", "none")

#: the order in which reasons are reported when several apply
REASONS = (
    "basis-none",
    "outside-source",
    "do-not-train",
    "robots-txt",
    "robots-txt-ai-crawlers",
    "ai-txt",
    "noai",
    "noimageai",
    "noindex",
    "none",
    "noimageindex",
    "unavailable-after",
    "tdm-reservation",
    "iptc-datamining-prohibited",
    "c2pa-invalid",
    "c2pa-training-mining",
    "suppressed",
)

#: directive names whose value follows a colon (not user-agent scopes)
_VALUED = ("unavailable_after", "max-snippet", "max-image-preview", "max-video-preview")
_PART = re.compile(r"((?:unavailable_after\s*:\s*)?(?:[a-z]+day,\s*)?[^,]+)", re.I)


def _directives(values: Iterable[str], token: str) -> list[tuple[str, str]]:
    """(directive, argument) pairs from X-Robots-Tag values or meta contents that apply to us.

    Handles ``noai, noimageai``, user-agent scoped forms (``consentry: noai``), valued directives
    (``unavailable_after: Friday, 25-Jun-10 15:00:00 PST``, whose date may hold a comma), and ignores
    directives scoped to another user agent (``googlebot: noindex``).
    """
    token = token.lower()
    out: list[tuple[str, str]] = []
    for raw in values:
        if raw is None:
            continue
        text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        scope: str | None = None
        for part in _PART.findall(text):
            part = part.strip()
            m = re.match(r"^([a-z0-9_.\-]+)\s*:\s*(.*)$", part, re.I)
            if m and m.group(1).lower() not in _VALUED:
                scope, part = m.group(1).lower(), m.group(2).strip()
            if scope not in (None, token, "*", "all") or not part:
                continue
            name, _, arg = part.partition(":")
            out.append((name.strip().lower(), arg.strip()))
    return out


def robots_directives(values: Iterable[str], token: str) -> set[str]:
    """The names of the robots directives in ``values`` that apply to us."""
    return {name for name, _ in _directives(values, token)}


def _past(date_text: str, now: datetime) -> bool | None:
    """Is an ``unavailable_after`` date (RFC 822/850 or ISO 8601) past? None when it cannot be read."""
    try:
        when = parsedate_to_datetime(date_text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(date_text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= now


def robots_signal(name: str, values: Iterable[str], token: str, scope: str = "page",
                  now: datetime | None = None) -> Signal | None:
    """A Signal for the opt-out directives in ``values`` (None when there is no header/meta at all)."""
    values = [v for v in values if v]
    if not values:
        return None
    now = now or datetime.now(UTC)
    found: list[str] = []
    for directive, arg in _directives(values, token):
        if directive in OPT_OUT_DIRECTIVES and directive not in found:
            found.append(directive)
        elif directive == "unavailable_after" and _past(arg, now):
            found.append(f"unavailable_after: {arg}")
    found.sort()
    return Signal(name=name, value=",".join(found) if found else "allowed", opt_out=bool(found), scope=scope)  # type: ignore[arg-type]


def tdm_header_signal(value: str | None, scope: str = "page", policy: str | None = None) -> Signal | None:
    """The ``tdm-reservation`` header or meta value (with the ``tdm-policy`` URL that came with it, if any)."""
    if value is None:
        return None
    v = str(value).strip()
    reserved = v == "1"
    return Signal(name="tdm-reservation", value=v, opt_out=reserved, scope=scope,  # type: ignore[arg-type]
                  policy=(policy or "").strip() or None if reserved else None)


def licensed(sig: Signal, basis: Basis, evidence: str | None) -> Signal:
    """A TDM reservation whose ``tdm-policy`` the source's licence names is not an opt-out for that source.

    It stays a refusal unless the source's basis is ``licence`` and its evidence contains the policy URL.
    """
    if not (sig.opt_out and sig.policy and sig.name in ("tdm-reservation", "tdmrep.json")):
        return sig
    if basis is Basis.LICENCE and evidence and sig.policy in evidence:
        return sig.model_copy(update={"opt_out": False,
                                      "detail": f"licensed: the source's evidence names its tdm-policy ({evidence})"})
    return sig


def tdmrep_rules(document: bytes | str) -> list[tuple[str, bool, str | None]]:
    """Parse ``/.well-known/tdmrep.json`` into (location pattern, reserved, tdm-policy URL) triples.

    Malformed documents raise ValueError; callers decide what that means.
    """
    data = json.loads(document)
    if not isinstance(data, list):
        raise ValueError("tdmrep.json must be a JSON array")
    rules = []
    for entry in data:
        if not isinstance(entry, dict) or "location" not in entry:
            raise ValueError("tdmrep.json entries need a location")
        policy = entry.get("tdm-policy")
        rules.append((str(entry["location"]), str(entry.get("tdm-reservation", 0)) == "1",
                      str(policy) if policy else None))
    return rules


def tdmrep_match(rules: list[tuple[str, bool, str | None]], url: str) -> tuple[bool, str | None] | None:
    """Apply tdmrep.json rules to a URL: (reserved, policy) of the longest matching location (None if none match)."""
    path = urlsplit(url).path or "/"
    best: tuple[int, bool, str | None] | None = None
    for location, reserved, policy in rules:
        pattern = location if location.startswith("/") else "/" + location
        if pattern.endswith("$"):
            ok = fnmatch.fnmatchcase(path, pattern[:-1])
        else:
            ok = fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("*") + "*")
        if ok and (best is None or len(location) > best[0]):
            best = (len(location), reserved, policy)
    return None if best is None else (best[1], best[2])


def tdmrep_signal(rules: list[tuple[str, bool, str | None]], url: str, scope: str = "page") -> Signal | None:
    """The tdmrep.json signal for ``url`` (None when no location pattern matches)."""
    found = tdmrep_match(rules, url)
    if found is None:
        return None
    reserved, policy = found
    return Signal(name="tdmrep.json", value="1" if reserved else "0", opt_out=reserved, scope=scope,  # type: ignore[arg-type]
                  policy=policy if reserved else None)


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


_REASON_OF = {"tdm-reservation": "tdm-reservation", "tdmrep.json": "tdm-reservation",
              "iptc-datamining": "iptc-datamining-prohibited", "suppressed": "suppressed",
              "robots.txt-ai-crawlers": "robots-txt-ai-crawlers", "ai.txt": "ai-txt", "do-not-train": "do-not-train",
              "c2pa-manifest": "c2pa-invalid", "c2pa-training-mining": "c2pa-training-mining"}


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
        for r in ("noai", "noimageai", "noindex", "none", "noimageindex"):
            if r in values:
                return r
        return "unavailable-after"
    return _REASON_OF.get(sig.name, sig.name)


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
