"""What a page holds for us: image URLs (every HTML form), links to follow, and page context.

Pure functions over HTML text, so every extraction form is unit-tested without a network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from parsel import Selector

from .urls import is_image_link, normalize_url


@dataclass(frozen=True)
class FoundImage:
    """An image URL seen on a page, with its context (the spider's item, before the consent gate)."""

    url: str
    page_url: str
    via: str  # img | srcset | picture | og:image | twitter:image | link
    alt: str | None = None
    page_title: str | None = None
    licence_url: str | None = None


@dataclass
class Page:
    url: str
    title: str | None = None
    licence_url: str | None = None
    images: list[FoundImage] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


_NUM = re.compile(r"^(\d+(?:\.\d+)?)([wxh])$")


def parse_srcset(srcset: str) -> list[tuple[str, float, float]]:
    """Candidates of a ``srcset``: (url, width or 0, density or 0), per the HTML candidate syntax.

    URLs may contain commas; a candidate ends at a comma that follows whitespace or ends the URL.
    """
    out: list[tuple[str, float, float]] = []
    pos, n = 0, len(srcset)
    while pos < n:
        while pos < n and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and not srcset[pos].isspace():
            pos += 1
        url = srcset[start:pos]
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start, depth = pos, 0
            while pos < n:
                c = srcset[pos]
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth = max(0, depth - 1)
                elif c == "," and depth == 0:
                    break
                pos += 1
            descriptors = srcset[start:pos]
            pos += 1
        width = density = 0.0
        for d in descriptors.split():
            m = _NUM.match(d.strip().lower())
            if m and m.group(2) == "w":
                width = float(m.group(1))
            elif m and m.group(2) == "x":
                density = float(m.group(1))
        if url:
            out.append((url, width, density))
    return out


def largest_candidate(srcset: str, src: str | None = None) -> str | None:
    """The largest candidate of a srcset (widths beat densities); ``src`` counts as 1x."""
    cands = parse_srcset(srcset)
    if src and not any(w for _, w, _ in cands):
        cands.append((src, 0.0, 1.0))
    if not cands:
        return src
    best = max(cands, key=lambda c: (c[1], c[2] or (1.0 if not c[1] else 0.0)))
    return best[0]


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value[:1000] or None


def extract_page(page_html: str | Selector, url: str) -> Page:
    """Parse a page: images from every supported form, links to follow, title and licence link.

    Takes the HTML text or an already-built Selector (a Scrapy response's, parsed once).
    """
    sel = page_html if isinstance(page_html, Selector) else Selector(text=page_html)
    base_href = sel.css("base::attr(href)").get()
    base = urljoin(url, base_href.strip()) if base_href else url
    page = Page(url=url)
    page.title = _text(sel.xpath("normalize-space(//title)").get()) or _text(
        sel.css('meta[property="og:title"]::attr(content)').get())
    lic = sel.xpath('//link[contains(concat(" ", normalize-space(@rel), " "), " license ")]/@href'
                    ' | //a[contains(concat(" ", normalize-space(@rel), " "), " license ")]/@href').get()
    page.licence_url = _abs(base, lic) if lic else None

    seen: set[str] = set()

    def add(raw: str | None, via: str, alt: str | None) -> None:
        if not raw or raw.strip().lower().startswith("data:"):
            return
        absolute = _abs(base, raw)
        if absolute and absolute not in seen:
            seen.add(absolute)
            page.images.append(FoundImage(url=absolute, page_url=url, via=via, alt=_text(alt),
                                          page_title=page.title, licence_url=page.licence_url))

    for pic in sel.css("picture"):
        alt = pic.css("img::attr(alt)").get()
        for source in pic.css("source[srcset]"):
            add(largest_candidate(source.attrib["srcset"]), "picture", alt)
    for img in sel.css("img"):
        src = img.attrib.get("src")
        srcset = img.attrib.get("srcset")
        alt = img.attrib.get("alt")
        if srcset:
            add(largest_candidate(srcset, src), "srcset", alt)
        else:
            add(src, "img", alt)
    for prop in ("og:image", "og:image:url", "og:image:secure_url"):
        for v in sel.css(f'meta[property="{prop}"]::attr(content), meta[name="{prop}"]::attr(content)').getall():
            add(v, "og:image", sel.css('meta[property="og:image:alt"]::attr(content)').get())
    for name in ("twitter:image", "twitter:image:src"):
        for v in sel.css(f'meta[name="{name}"]::attr(content), meta[property="{name}"]::attr(content)').getall():
            add(v, "twitter:image", sel.css('meta[name="twitter:image:alt"]::attr(content)').get())

    links: set[str] = set()
    for a in sel.css("a[href], area[href]"):
        href = a.attrib["href"]
        absolute = _abs(base, href)
        if not absolute:
            continue
        if is_image_link(absolute):
            add(href, "link", a.attrib.get("title") or a.xpath("normalize-space(.)").get()
                or a.css("img::attr(alt)").get())
        elif "nofollow" not in a.attrib.get("rel", "").lower().split() and absolute not in links:
            links.add(absolute)
            page.links.append(absolute)
    return page


def _abs(base: str, ref: str | None) -> str | None:
    if not ref or not ref.strip():
        return None
    try:
        return normalize_url(urljoin(base, ref.strip()))
    except ValueError:
        return None


def meta_contents(sel: Selector, name: str) -> list[str]:
    """Contents of every ``<meta name=NAME>`` (name compared case-insensitively)."""
    name = name.lower()
    return [m.attrib.get("content", "") for m in sel.css("meta[name]")
            if m.attrib["name"].strip().lower() == name]
