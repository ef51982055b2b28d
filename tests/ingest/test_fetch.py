"""The fetcher against a real local HTTP server (127.0.0.1); private targets only through the policy."""

from __future__ import annotations

import pytest

from consentry.core.errors import FetchError, FetchRefused, ImageRejected
from consentry.core.retry import RetryPolicy
from consentry.ingest import FetchConfig
from consentry.ingest.fetch import Fetcher

from .site import Route, noise_image

PNG = {"Content-Type": "image/png"}


def fetcher(attempts: int = 2, **kw) -> Fetcher:
    base = dict(user_agent="ConsentryBot/0.1 (+https://example.org/bot)", timeout_s=3.0, allow_private=True,
                max_bytes=64 * 1024)
    base.update(kw)
    return Fetcher(FetchConfig(**base), RetryPolicy(attempts=attempts, base_delay_s=0.01, max_delay_s=0.02))


def test_image_fetched_with_an_honest_user_agent_and_header_signals(site):
    site.routes["/a.png"] = Route(noise_image(1), headers={**PNG, "X-Robots-Tag": "googlebot: noindex, consentry: noai",
                                                           "tdm-reservation": "0"})
    r = fetcher().fetch(site.url("/a.png"))
    assert r.status == 200 and r.format == "PNG" and r.body == noise_image(1)
    assert site.user_agents == {"ConsentryBot/0.1 (+https://example.org/bot)"}
    sig = {s.name: s for s in r.signals}
    assert sig["x-robots-tag"].value == "noai" and sig["x-robots-tag"].opt_out and sig["x-robots-tag"].scope == "image"
    assert sig["tdm-reservation"].value == "0" and not sig["tdm-reservation"].opt_out


def test_redirects_are_followed_up_to_the_limit(site):
    site.routes["/a.png"] = Route(noise_image(1), headers=PNG)
    for k in range(4):
        site.routes[f"/r{k}"] = Route(status=302, headers={"Location": f"/r{k + 1}" if k < 3 else "/a.png"})
    r = fetcher(max_redirects=4).fetch(site.url("/r0"))
    assert r.final_url == site.url("/a.png") and len(r.redirects) == 4
    with pytest.raises(FetchError) as e:
        fetcher(max_redirects=3).fetch(site.url("/r0"))
    assert e.value.reason == "too-many-redirects" and not e.value.transient


def test_loopback_is_refused_before_connecting_unless_allowed(site):
    site.routes["/a.png"] = Route(noise_image(1), headers=PNG)
    with pytest.raises(FetchRefused) as e:
        fetcher(allow_private=False).fetch(site.url("/a.png"))
    assert e.value.reason == "private-address" and "loopback" in str(e.value)
    assert site.requests == []  # refused before any connection


def test_connections_go_to_the_address_the_policy_checked(site):
    """``photos.test`` exists only in the policy's resolver: the connection uses that answer, not system DNS."""
    site.routes["/a.png"] = Route(noise_image(1), headers=PNG)
    lookups = []

    def resolver(host, p):
        lookups.append(host)
        return ["127.0.0.1"]

    f = Fetcher(FetchConfig(user_agent="ConsentryBot/0.1", timeout_s=3.0, allow_private=True), resolver=resolver)
    r = f.fetch(f"http://photos.test:{site.port}/a.png")
    assert r.body == noise_image(1) and lookups == ["photos.test", "photos.test"]  # the check, then the connection


def test_a_host_that_rebinds_to_a_private_address_after_the_check_is_refused_at_connect(site):
    """DNS rebinding: public for the check, loopback for the connection. No request may reach the site."""
    site.routes["/a.png"] = Route(noise_image(1), headers=PNG)
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    f = Fetcher(FetchConfig(user_agent="ConsentryBot/0.1", timeout_s=3.0, allow_private=False),
                RetryPolicy(attempts=1), resolver=lambda host, p: next(answers))
    with pytest.raises(FetchRefused) as e:
        f.fetch(f"http://rebind.test:{site.port}/a.png")
    assert e.value.reason == "private-address" and "loopback" in str(e.value)
    assert site.requests == []


def test_a_redirect_to_a_metadata_address_is_refused_before_following_it(site):
    site.routes["/jump"] = Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(FetchRefused) as e:
        fetcher().fetch(site.url("/jump"))  # even with private networks allowed
    assert e.value.reason == "private-address" and "metadata" in str(e.value)
    assert site.requests == ["/jump"]


def test_a_public_name_resolving_to_a_private_address_is_refused():
    f = Fetcher(FetchConfig(user_agent="ua", allow_private=False), resolver=lambda host, port: ["10.1.2.3"])
    with pytest.raises(FetchRefused) as e:
        f.fetch("https://images.example.org/a.jpg")
    assert "private address 10.1.2.3" in str(e.value)
    with pytest.raises(FetchRefused) as e:
        f.fetch("ftp://images.example.org/a.jpg")
    assert e.value.reason == "bad-scheme"


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_bodies_are_refused_while_streaming(site, chunked):
    site.routes["/big.png"] = Route(noise_image(1, size=512), headers=PNG, chunked=chunked)
    with pytest.raises(FetchError) as e:
        fetcher(max_bytes=10_000).fetch(site.url("/big.png"))
    assert e.value.reason == "too-large"
    assert ("Content-Length" in str(e.value)) is (not chunked)


@pytest.mark.parametrize("body, ctype, reason", [
    (b"", "image/jpeg", "empty"),
    (b"<!DOCTYPE html><html><body>not found</body></html>", "image/jpeg", "html-not-image"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "image/svg+xml",
     "svg-not-raster"),
    (noise_image(1), "text/html", "content-type-mismatch"),
    (b"GIF87a" + b"\x00" * 4, "text/plain", "content-type-mismatch"),
])
def test_the_content_type_is_checked_against_the_bytes(site, body, ctype, reason):
    site.routes["/x"] = Route(body, headers={"Content-Type": ctype})
    with pytest.raises(ImageRejected) as e:
        fetcher().fetch(site.url("/x"))
    assert e.value.reason == reason


def test_octet_stream_with_image_bytes_is_accepted(site):
    site.routes["/x"] = Route(noise_image(2), headers={"Content-Type": "application/octet-stream"})
    assert fetcher().fetch(site.url("/x")).format == "PNG"


def test_status_errors_are_permanent_or_transient(site):
    with pytest.raises(FetchError) as e:
        fetcher().fetch(site.url("/missing"))
    assert e.value.reason == "http-404" and not e.value.transient and e.value.status == 404
    site.routes["/busy"] = Route(b"", status=503, headers={"Content-Type": "text/plain"})
    with pytest.raises(FetchError) as e:
        fetcher(attempts=2).fetch(site.url("/busy"))
    assert e.value.reason == "http-503" and e.value.transient
    assert site.requests.count("/busy") == 2  # retried once


def test_a_slow_server_times_out(site):
    site.routes["/slow"] = Route(noise_image(1), headers=PNG, delay_s=1.5)
    with pytest.raises(FetchError) as e:
        fetcher(timeout_s=0.3, attempts=1).fetch(site.url("/slow"))
    assert e.value.reason == "timeout" and e.value.transient
