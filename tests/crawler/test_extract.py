"""Extraction and URL normalisation: every HTML form, on pages built in code (no network)."""

import pytest

from consentry.crawler.extract import extract_page, largest_candidate, parse_srcset
from consentry.crawler.urls import allowed_hosts, in_scope, normalize_url, on_allowed_host

BASE = "http://site.test/dir/page.html"


def urls(page):
    return {i.url: i for i in page.images}


def test_srcset_candidates_widths_densities_and_commas_in_urls():
    assert parse_srcset("a.jpg 320w, b.jpg 1280w,c.jpg 640w") == [("a.jpg", 320, 0), ("b.jpg", 1280, 0),
                                                                   ("c.jpg", 640, 0)]
    assert parse_srcset("x.jpg, y.jpg 2x") == [("x.jpg", 0, 0), ("y.jpg", 0, 2)]
    assert parse_srcset("/img/a,b.jpg 1x, /img/c.jpg 2x") == [("/img/a,b.jpg", 0, 1), ("/img/c.jpg", 0, 2)]
    assert largest_candidate("a.jpg 320w, b.jpg 1280w, c.jpg 640w", "a.jpg") == "b.jpg"
    assert largest_candidate("b.jpg 2x, c.jpg 1.5x", "a.jpg") == "b.jpg"
    assert largest_candidate("b.jpg 0.5x", "a.jpg") == "a.jpg"  # src counts as 1x
    assert largest_candidate("", "a.jpg") == "a.jpg"


def test_every_image_form_is_found_with_its_context():
    html = """<html><head><title> A  title </title>
      <link rel="license" href="/licence.html">
      <meta property="og:image" content="og.jpg"><meta property="og:image:alt" content="og alt">
      <meta name="twitter:image" content="https://site.test/tw.jpg"></head><body>
      <img src="plain.jpg#frag" alt=" Alice ">
      <img src="s.jpg" srcset="s.jpg 300w, l.jpg 1200w">
      <picture><source srcset="p-1.webp 1x, p-2.webp 2x"><img src="p.jpg" alt="pic"></picture>
      <a href="../full.PNG" title="full">x</a>
      <a href="next.html">next</a><a href="skip.html" rel="nofollow">no</a>
      <img src="data:image/png;base64,AAAA"><img src="  ">
      </body></html>"""
    page = extract_page(html, BASE)
    found = urls(page)
    assert set(found) == {"http://site.test/dir/plain.jpg", "http://site.test/dir/l.jpg", "http://site.test/dir/p-2.webp",
                          "http://site.test/dir/p.jpg", "http://site.test/dir/og.jpg", "https://site.test/tw.jpg",
                          "http://site.test/full.PNG"}
    assert found["http://site.test/dir/plain.jpg"].alt == "Alice"
    assert found["http://site.test/dir/plain.jpg"].via == "img"
    assert found["http://site.test/dir/l.jpg"].via == "srcset"
    assert found["http://site.test/dir/p-2.webp"].via == "picture"
    assert found["http://site.test/dir/og.jpg"].alt == "og alt"
    assert found["http://site.test/full.PNG"].via == "link"
    assert page.title == "A title"
    assert page.licence_url == "http://site.test/licence.html"
    assert all(i.page_title == "A title" and i.licence_url == page.licence_url for i in page.images)
    assert page.links == ["http://site.test/dir/next.html"]


def test_base_href_is_honoured():
    page = extract_page('<head><base href="/assets/"></head><img src="b.jpg">', BASE)
    assert [i.url for i in page.images] == ["http://site.test/assets/b.jpg"]


@pytest.mark.parametrize("raw, want", [
    ("HTTP://Site.Test:80/a/../b.jpg?z=1&a=2#frag", "http://site.test/b.jpg?a=2&z=1"),
    ("https://site.test:443/x y.jpg", "https://site.test/x%20y.jpg"),
    ("http://site.test:8080", "http://site.test:8080/"),
    ("ftp://site.test/a.jpg", None),
    ("javascript:alert(1)", None),
    ("http://user:pw@site.test/a.jpg", None),
])
def test_normalize_url(raw, want):
    assert normalize_url(raw) == want


def test_scope_by_host_port_and_prefix():
    assert in_scope("http://photos.example.org/a", ["photos.example.org"])
    assert in_scope("http://cdn.photos.example.org:8080/a", ["photos.example.org"])
    assert not in_scope("http://example.org/a", ["photos.example.org"])
    assert in_scope("http://h.test:81/a", ["h.test:81"]) and not in_scope("http://h.test:82/a", ["h.test:81"])
    assert in_scope("https://h.test/events/2024/a.html", ["https://h.test/events/"])
    assert not in_scope("https://h.test/private/a.html", ["https://h.test/events/"])
    hosts = allowed_hosts(["https://h.test/events/", "photos.example.org:8080"])
    assert hosts == {"h.test", "photos.example.org"}
    assert on_allowed_host("https://h.test/static/a.jpg", hosts)  # same host, outside the prefix: still the site's
    assert not on_allowed_host("https://cdn.other.test/a.jpg", hosts)
