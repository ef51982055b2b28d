"""The console's HTTP contract, over in-memory fakes: headers, sessions, CSRF, roles, escaping, crops, explain.

The same behaviour in a real browser, on the real servers, is tests/console/test_console_browser.py.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from consentry.catalog import ProvenanceStore
from consentry.indexer.api.console.headers import CONSOLE_CSP

from .memory import csrf_of, index_image, memory_console, noise_png

ROLES = ("searcher", "operator", "auditor", "privacy")


@pytest.fixture
def mc():
    return memory_console()


def _search(client, photo: bytes, csrf: str, **fields):
    data = {"purpose": "review of a complaint", "case": "CASE-1", "csrf": csrf, **fields}
    return client.post("/console/search", data=data, files={"photo": ("q.png", photo, "image/png")})


def test_console_pages_carry_the_strict_headers_and_the_api_keeps_its_own(mc):
    c = mc.browser()
    for path in ("/console/login", "/console/static/console.js"):
        r = c.get(path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CONSOLE_CSP
        assert "'unsafe-inline'" not in CONSOLE_CSP and "'unsafe-eval'" not in CONSOLE_CSP
        assert "frame-ancestors 'none'" in CONSOLE_CSP and "script-src 'self';" in CONSOLE_CSP
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "same-origin"
    html = c.get("/console/login").text
    assert not re.search(r"<[a-z][^>]*\son[a-z]+=", html)  # no inline event handlers
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/console/static/console.js" defer>']
    api = mc.api("searcher").get("/healthz")
    assert api.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert api.headers["x-frame-options"] == "DENY"


def test_sign_in_sets_an_httponly_samesite_strict_cookie_and_never_puts_the_token_in_a_url(mc):
    c = mc.browser()
    assert c.get("/console/search").headers["location"] == "/console/login"  # signed out: to the sign-in page
    form = c.get("/console/login").text
    assert 'method="post" action="/console/login"' in form and 'type="password"' in form
    r = c.post("/console/login", data={"token": mc.tokens["searcher"]})
    assert r.status_code == 303 and r.headers["location"] == "/console/search"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"consentry_session={mc.tokens['searcher']};")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/console", f"Max-Age={480 * 60}"):
        assert flag in cookie
    assert "Secure" not in cookie  # plain http here; see the next test for TLS
    page = c.get("/console/search").text
    assert mc.tokens["searcher"] not in page  # the token is never echoed into a page (or a URL in it)
    bad = mc.browser().post("/console/login", data={"token": "cst_0123456789abcdef_nope"})
    assert bad.status_code == 401 and "set-cookie" not in bad.headers and "Sign-in failed" in bad.text


def test_the_cookie_is_secure_over_tls_and_when_configured():
    tls = memory_console()
    r = tls.browser(base_url="https://console.test").post("/console/login", data={"token": tls.tokens["searcher"]})
    assert "Secure" in r.headers["set-cookie"]
    forced = memory_console(api_console_secure_cookie="always")
    r = forced.browser().post("/console/login", data={"token": forced.tokens["auditor"]})
    assert "Secure" in r.headers["set-cookie"]


def test_state_changing_requests_need_the_csrf_token_and_the_same_origin(mc):
    c = mc.browser("privacy")
    csrf = csrf_of(c, "/console/erase")
    form = {"kind": "source", "target": "family", "reference": "DSAR-1", "confirm": "yes"}
    assert c.post("/console/erase/scope", data=form).status_code == 403  # no token
    assert c.post("/console/erase/scope", data={**form, "csrf": "0" * 64}).status_code == 403  # wrong token
    other = mc.browser("searcher")  # another session's token is not this one's
    assert c.post("/console/erase/scope", data={**form, "csrf": csrf_of(other, "/console/search")}).status_code == 403
    r = c.post("/console/erase/scope", data={**form, "csrf": csrf}, headers={"Origin": "http://evil.test"})
    assert r.status_code == 403 and "cross-site" in r.text
    r = c.post("/console/erase/scope", data={**form, "csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert mc.services.audit.head() is None  # none of these erased anything
    r = c.post("/console/erase/scope", data={**form, "csrf": csrf}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and "Erasure receipt" in r.text
    # signing out is state-changing too
    assert c.post("/console/logout").status_code == 403
    r = c.post("/console/logout", data={"csrf": csrf})
    assert r.status_code == 303 and 'consentry_session=""' in r.headers["set-cookie"]


def test_each_role_sees_only_its_pages_and_a_searcher_gets_403_from_erasure(mc):
    menus = {}
    for role in ROLES:
        c = mc.browser(role)
        html = c.get("/console", follow_redirects=True).text
        menus[role] = re.findall(r'<li><a href="(/console/[a-z]+)"', html)
    assert menus == {"searcher": ["/console/search"], "operator": ["/console/explain", "/console/operations"],
                     "auditor": ["/console/explain", "/console/audit"],
                     "privacy": ["/console/erase", "/console/explain"]}
    s = mc.browser("searcher")
    csrf = csrf_of(s, "/console/search")
    assert s.get("/console/erase").status_code == 403
    assert s.get("/console/erase/receipts/er-20260101-0123456789ab").status_code == 403
    assert s.post("/console/erase/scope", data={"kind": "source", "target": "family", "reference": "R-1",
                                                "confirm": "yes", "csrf": csrf}).status_code == 403
    r = s.post("/console/erase/photo", data={"reference": "R-1", "confirm": "yes", "csrf": csrf},
               files={"photo": ("p.png", noise_png(1), "image/png")})
    assert r.status_code == 403
    assert mc.api("searcher").post("/v1/erasures", json={"source": "family"}).status_code == 403
    for path in ("/console/audit", "/console/operations", "/console/explain"):
        assert s.get(path).status_code == 403, path
    assert mc.browser("privacy").get("/console/search").status_code == 403
    assert mc.services.audit.head() is None


def test_the_api_ignores_the_console_cookie_and_a_revoked_token_signs_the_console_out(mc):
    c = mc.browser("searcher")
    assert c.get("/v1/faces/" + "0" * 64).status_code == 401  # cookie alone: the Bearer API does not take it
    mc.services.tokens.revoke("searcher-user")
    r = c.get("/console/search")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_search_renders_crawled_text_escaped_and_never_links_javascript_or_data_urls(mc):
    photo = noise_png(7)
    evil_url = 'http://photos.test/a.jpg?"><script>alert(1)</script><img src=x onerror=alert(2)>'
    [fid] = index_image(mc, photo, evil_url, "javascript:alert(document.cookie)")
    other = noise_png(8)
    index_image(mc, other, "http://photos.test/b.jpg", "data:text/html,<script>alert(3)</script>")
    c = mc.browser("searcher")
    r = _search(c, photo, csrf_of(c, "/console/search"))
    assert r.status_code == 200, r.text
    html = r.text
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html and "href='javascript:" not in html
    assert "javascript:alert(document.cookie)" in html  # shown, as text
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith(("/console", "#main", "http://photos.test/")) for h in hrefs), hrefs
    assert fid in html and "Leads, not identifications." in html and "1.000" in html
    r = _search(c, other, csrf_of(c, "/console/search"))
    assert 'href="data:' not in r.text and "data:text/html,&lt;script&gt;" in r.text


def test_search_states_required_fields_no_face_bounds_and_bad_input(mc):
    c = mc.browser("searcher")
    csrf = csrf_of(c, "/console/search")
    r = _search(c, noise_png(1), csrf, case="")
    assert r.status_code == 422 and "case reference are required" in r.text
    flat = noise_png(2, side=64)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buf, "PNG")
    r = _search(c, buf.getvalue(), csrf)
    assert r.status_code == 422 and "no-face" in r.text
    r = _search(c, flat, csrf, threshold="0.1")
    assert r.status_code == 422 and "below the minimum" in r.text
    r = _search(c, flat, csrf, top_k="100000")
    assert r.status_code == 422 and "exceeds the maximum" in r.text
    r = c.post("/console/search", data={"purpose": "p r", "case": "C-1", "csrf": csrf},
               files={"photo": ("x.png", b"<html><script>alert(1)</script>", "image/png")})
    assert r.status_code == 415 and "<script>alert" not in r.text
    r = _search(c, flat, csrf)  # nothing indexed: the empty state
    assert r.status_code == 200 and "No indexed face is at or above the threshold" in r.text


def test_crop_endpoint_is_role_checked_and_follows_the_face(mc):
    photo = noise_png(11)
    [fid] = index_image(mc, photo, "http://photos.test/c.jpg", "http://photos.test/")
    r = mc.api("searcher").get(f"/v1/faces/{fid}/crop")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "no-store"
    assert Image.open(io.BytesIO(r.content)).size == (112, 112)
    assert mc.api("operator").get(f"/v1/faces/{fid}/crop").status_code == 200
    assert mc.api("auditor").get(f"/v1/faces/{fid}/crop").status_code == 403
    assert mc.browser("searcher").get(f"/v1/faces/{fid}/crop").status_code == 401  # cookies do not reach /v1
    mc.services.index.store.upsert(mc.services.index.spec, [{**mc.services.index.get([fid], with_embedding=True)[0],
                                                             "consent_state": "withdrawn"}])
    assert mc.api("searcher").get(f"/v1/faces/{fid}/crop").status_code == 404  # search may not show it
    assert mc.api("privacy").get(f"/v1/faces/{fid}/crop").status_code == 200
    mc.services.index.delete([fid])
    assert mc.api("privacy").get(f"/v1/faces/{fid}/crop").status_code == 404  # not indexed: never served
    assert mc.services.objects.exists(ProvenanceStore.crop_key(fid))  # (this fake path skipped the eraser)


def test_explain_over_the_api_and_the_console(mc):
    url = "http://photos.test/e.jpg"
    index_image(mc, noise_png(12), url, "http://photos.test/")
    r = mc.api("auditor").get("/v1/explain", params={"url": url})
    assert r.status_code == 200 and r.json()["decision"] == "index"
    assert mc.api("searcher").get("/v1/explain", params={"url": url}).status_code == 403
    assert mc.api("operator").get("/v1/explain", params={"url": "http://photos.test/none.jpg"}).status_code == 404
    c = mc.browser("operator")
    html = c.get("/console/explain", params={"url": url}).text
    assert "Decision:" in html and "allowed" in html
    r = c.get("/console/explain", params={"url": "javascript:alert(1)"})
    assert r.status_code == 422 and "http(s) URL" in r.text


def test_erase_by_photo_from_the_console_gives_a_receipt_and_its_json(mc):
    photo = noise_png(21)
    [fid] = index_image(mc, photo, "http://photos.test/p.jpg", "http://photos.test/")
    c = mc.browser("privacy")
    csrf = csrf_of(c, "/console/erase")
    r = c.post("/console/erase/photo", data={"reference": "DSAR-7", "csrf": csrf},
               files={"photo": ("p.png", photo, "image/png")})
    assert r.status_code == 422 and "confirmation" in r.text and mc.services.index.get([fid])  # not confirmed
    r = c.post("/console/erase/photo", data={"reference": "DSAR-7", "confirm": "yes", "csrf": csrf},
               files={"photo": ("p.png", photo, "image/png")})
    assert r.status_code == 200 and "Verification: passed" in r.text
    assert mc.services.index.get([fid]) == [] and not mc.services.objects.exists(ProvenanceStore.crop_key(fid))
    rid = re.search(r"er-\d{8}-[0-9a-f]{12}", r.text).group(0)
    got = c.get(f"/console/erase/receipts/{rid}/download")
    assert got.headers["content-disposition"] == f'attachment; filename="{rid}.json"'
    receipt = got.json()
    assert receipt["matched_face_ids"] == [fid] and receipt["deleted"]["crops_deleted"] == 1
    assert "crops_deleted" in r.text and c.get(f"/console/erase/receipts/{rid}").status_code == 200


def test_audit_page_filters_by_kind_and_time_verifies_and_exports(mc):
    photo = noise_png(31)
    index_image(mc, photo, "http://photos.test/q.jpg", "http://photos.test/")
    s = mc.browser("searcher")
    assert _search(s, photo, csrf_of(s, "/console/search")).status_code == 200
    a = mc.browser("auditor")
    html = a.get("/console/audit").text
    assert "Hash chain: verified" in html and "review of a complaint" in html
    assert "No entries" in a.get("/console/audit", params={"kind": "erasure"}).text
    assert "No entries" in a.get("/console/audit", params={"until": "2000-01-01T00:00"}).text
    r = a.get("/console/audit", params={"since": "2030-01-01T00:00", "until": "2020-01-01T00:00"})
    assert r.status_code == 422
    exp = a.get("/console/audit/export", params={"kind": "search"})
    assert exp.headers["content-type"].startswith("application/x-ndjson")
    lines = [ln for ln in exp.text.splitlines() if ln]
    assert len(lines) == 1 and '"purpose": "review of a complaint"' in lines[0] and '"hash": ' in lines[0]


def test_the_audit_page_says_when_the_chain_is_broken(mc):
    mc.services.audit.append("search", "token:x/1", purpose="first")
    mc.services.audit.append("search", "token:x/1", purpose="second")
    key = mc.services.audit.key(1)
    mc.services.objects.put(key, mc.services.objects.get(key).replace(b"first", b"edited"))
    html = mc.browser("auditor").get("/console/audit").text
    assert "Hash chain: BROKEN" in html and "entry 1 was modified" in html
