"""The console in a real browser (Debian's chromium via Playwright) over the real servers.

The site is crawled and ingested with the real CLI (tests/console/world.py); the API and console run
in uvicorn. Screenshots of every page go to docs/img/console-*.png for docs/console.md.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.api.conftest import LiveServer

from .browser import axe_violations, chromium, chromium_path, screenshot
from .world import World, build_world

pytestmark = pytest.mark.slow
ROLES = ("searcher", "operator", "auditor", "privacy")


@pytest.fixture(scope="module")
def world(stack, photos) -> Iterator[World]:
    chromium_path()  # skip before building anything when there is no browser
    from consentry.indexer.api import create_app
    from consentry.indexer.auth import Role
    from consentry.ingest.health import HealthServer
    from consentry.wiring import indexer_services, operations_view

    w = build_world(stack, photos)
    health = HealthServer("127.0.0.1", 0)  # the ingest driver's metrics endpoint, holding this run's totals
    health.update({**w.ingest, "ready": True, "workers": 1, "workers_reachable": 1})
    with health:
        w.settings = w.settings.model_copy(update={"api_ingest_metrics_urls": [f"http://127.0.0.1:{health.port}/metrics"]})
        svc = indexer_services(w.settings, token_cache_s=0)
        w.tokens = {r.value: svc.tokens.create(f"{r.value}-reviewer", r)[1] for r in Role}
        try:
            with LiveServer(create_app(w.settings, svc, operations=operations_view(w.settings, svc.objects))) as srv:
                w.url = srv.url
                yield w
        finally:
            w.site.__exit__()
            w.recorder.close()


@pytest.fixture(scope="module")
def browser(world) -> Iterator[Any]:
    with chromium() as b:
        yield b


class Tab:
    """One browser page, recording every request it makes, every dialog and every console error."""

    def __init__(self, browser: Any, world: World) -> None:
        self.world = world
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.world.url + path)

    def sign_in(self, role: str) -> None:
        self.goto("/console/login")
        self.page.fill("#token", self.world.tokens[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()
        assert "/console/login" not in self.page.url, self.page.content()[:2000]

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.page.wait_for_url("**/console/login")

    def menu(self) -> list[str]:
        return self.page.locator("header nav a").all_inner_texts()

    def search(self, photo: Any, purpose: str = "review of a reported image", case: str = "CASE-2026-7") -> None:
        self.page.set_input_files("#photo", str(photo))
        self.page.fill("#purpose", purpose)
        self.page.fill("#case", case)
        self.page.get_by_role("button", name="Search", exact=True).click()
        self.page.wait_for_selector("#results, #problem")

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith((self.world.url + "/", "data:"))]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, world) -> Iterator[Tab]:
    t = Tab(browser, world)
    yield t
    t.close()


def _crops_loaded(page: Any, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.complete ? e.naturalWidth : -1)")


def test_sign_in_search_erase_search_again_and_audit(world, tab, photos):
    page = tab.page
    tab.goto("/console/login")
    screenshot(page, "login")
    tab.sign_in("searcher")
    assert page.url.endswith("/console/search") and tab.menu() == ["Search"]
    tab.search(photos["obama3.jpg"])  # a photo of the person that is not on the site
    matches = page.locator("li.match")
    urls = page.locator("li.match a.url").all_inner_texts()
    assert matches.count() >= 2 and any(u.endswith("/family/img/obama.jpg") for u in urls), urls
    assert any(u.endswith("/family/img/obama2.jpg") for u in urls)
    assert "leads for human review, not identification" in page.inner_text("#statement").lower()
    first = matches.first.inner_text()
    for label in ("Score", "Source", "Consent basis", "consent", "Page", "Image URL", "Fetched"):
        assert label in first, label
    assert set(_crops_loaded(page, "li.match img.crop")) == {112}  # query crop beside the stored match crop
    assert page.locator("li.match img.crop").count() == 2 * matches.count()
    screenshot(page, "search")
    tab.sign_out()

    tab.sign_in("privacy")
    assert page.url.endswith("/console/erase") and tab.menu() == ["Erase", "Explain"]
    screenshot(page, "erase")
    page.set_input_files("#erase-photo-file", str(photos["obama3.jpg"]))
    page.fill("#photo-reference", "DSAR-2026-014")
    page.check("#photo-confirm")
    page.get_by_role("button", name="Erase this person").click()
    page.wait_for_selector("#verification")
    assert "Verification: passed" in page.inner_text("#verification")
    assert int(page.inner_text("#matched")) == 2
    deleted = dict(row.split("\t") for row in page.locator("#deleted tbody tr").all_inner_texts())
    assert deleted["milvus_faces"] == "2" and deleted["crops_deleted"] == "2", deleted
    with page.expect_download() as dl:
        page.click("#download")
    receipt = json.loads(open(dl.value.path()).read())
    rid = receipt["request_id"]
    assert rid in page.inner_text("h1") and receipt["deleted"]["crops_deleted"] == 2
    screenshot(page, "receipt")
    tab.sign_out()

    tab.sign_in("searcher")
    # drag and drop this time: the photo dropped on the zone becomes the form's file
    data = base64.b64encode(photos["obama3.jpg"].read_bytes()).decode()
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
        document.querySelector('[data-drop-for=photo]').dispatchEvent(new DragEvent('drop', {dataTransfer: dt,
                                                                                              bubbles: true}));
    }""", data)
    assert "dropped.jpg" in page.inner_text("#photo-name")
    page.fill("#purpose", "check the erasure")
    page.fill("#case", "DSAR-2026-014")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("#results")
    assert page.locator("li.match").count() == 0
    assert "No indexed face is at or above the threshold" in page.inner_text("#results")
    tab.sign_out()

    tab.sign_in("auditor")
    page.goto(world.url + "/console/audit")
    assert "Hash chain: verified" in page.inner_text("#chain")
    searches = page.locator("tr.entry.search").all_inner_texts()
    erasures = page.locator("tr.entry.erasure").all_inner_texts()
    assert len(searches) == 2 and len(erasures) == 1, (searches, erasures)
    page.locator("tr.entry.erasure summary").click()
    assert rid in page.inner_text("tr.entry.erasure")
    page.select_option("#kind", "erasure")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert page.locator("tr.entry").count() == 1
    page.select_option("#kind", "")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    screenshot(page, "audit")
    assert tab.dialogs == [] and tab.foreign_requests() == []


def test_a_searcher_sees_no_erase_page_and_gets_403_from_its_endpoints(world, tab):
    tab.sign_in("searcher")
    assert "Erase" not in tab.menu()
    resp = tab.goto("/console/erase")
    assert resp.status == 403 and "may not use this page" in tab.page.inner_text("#problem")
    csrf = tab.page.get_attribute("input[name=csrf]", "value")
    status = tab.page.evaluate("""async (csrf) => (await fetch('/console/erase/scope', {method: 'POST',
        body: new URLSearchParams({csrf, kind: 'source', target: 'family', reference: 'R-1', confirm: 'yes'})}))
        .status""", csrf)
    assert status == 403
    api = httpx.post(world.url + "/v1/erasures", json={"source": "family"},
                     headers={"Authorization": f"Bearer {world.tokens['searcher']}"})
    assert api.status_code == 403
    assert tab.goto("/console/audit").status == 403 and tab.goto("/console/operations").status == 403


def test_injected_markup_from_a_crawled_page_never_runs(world, tab, photos):
    """The /xss/ page's title, alt text and image URL carry script aimed at the recorder: none of it runs or loads."""
    tab.sign_in("searcher")
    tab.search(photos["biden.jpg"])
    links = tab.page.locator("li.match a.url").all_inner_texts()
    injected = [u for u in links if "/xss/img/face.jpg" in u]
    assert injected, links  # the crawled image is there, with its hostile URL shown as text
    decoded = unquote(injected[0])  # the crawler percent-encodes URLs; the payload is still in them
    assert f"<script>fetch(`{world.recorder.base}/url`)</script>" in decoded and "javascript:fetch(" in decoded
    page = tab.page
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [world.url + "/console/static/console.js"]
    handlers = page.evaluate("""[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
        .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))""")
    assert handlers == []
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))], hrefs
    tab.sign_out()
    tab.sign_in("operator")
    tab.goto("/console/explain")
    page.fill("#url", injected[0])
    page.get_by_role("button", name="Explain").click()
    page.wait_for_selector("#explanation, #problem")
    assert "index" in page.inner_text("#decision-title")
    page.wait_for_timeout(500)  # anything injected would have fired by now
    assert tab.dialogs == [] and tab.foreign_requests() == [] and world.recorder.hits == []


def test_explain_shows_the_decision_and_every_signal(world, tab):
    tab.sign_in("auditor")
    url = f"{world.site.base}/family/img/biden.jpg"  # served with X-Robots-Tag: noimageai
    tab.goto("/console/explain?url=" + url)
    page = tab.page
    assert "refuse" in page.inner_text("#decision-title") and "noimageai" in page.inner_text("#decision-title")
    assert page.locator("#signals tbody tr").count() >= 3
    screenshot(page, "explain")
    assert tab.goto("/console/explain?url=http://127.0.0.1:1/never.jpg").status == 404


def test_operations_shows_sources_jobs_ingest_and_dlq_and_refreshes_by_itself(world, tab):
    tab.sign_in("operator")
    page = tab.page
    assert page.url.endswith("/console/explain") or page.url.endswith("/console/operations")
    tab.goto("/console/operations")
    sources = page.inner_text("#sources")
    assert "family" in sources and "consent" in sources and "gallery" in sources and "licence" in sources
    jobs = page.inner_text("#jobs")
    assert all(j["id"] in jobs for j in world.crawl) and "noai" in jobs
    ingest = dict(r.split("\t")[:2] for r in page.locator("#ingest tbody tr").all_inner_texts())
    assert int(ingest["records"]) == world.ingest["records"] and int(ingest["faces"]) == world.ingest["faces"]
    assert re.match(r"^\d+$", page.inner_text("#dlq-size"))
    before = page.inner_text("#refreshed")
    page.wait_for_function("(t) => document.querySelector('#refreshed').textContent !== t", arg=before, timeout=20_000)
    assert page.locator("#jobs").count() == 1  # the live part was replaced, not duplicated
    screenshot(page, "operations")


def test_every_page_passes_axe_and_sign_in_works_from_the_keyboard(world, tab, photos):
    page = tab.page
    tab.goto("/console/login")
    found: dict[str, list] = {"login": axe_violations(page)}
    for _ in range(6):  # skip link, then the token field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(world.tokens["searcher"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/search")
    found["search"] = axe_violations(page)
    tab.search(photos["t1.jpg"])
    assert page.locator("li.match").count() > 0
    found["search results"] = axe_violations(page)
    tab.sign_out()
    explain_t1 = f"/console/explain?url={world.site.base}/family/img/t1.jpg"
    for role, paths in (("privacy", ["/console/erase"]), ("auditor", ["/console/audit", "/console/explain"]),
                        ("operator", ["/console/operations", explain_t1])):
        tab.sign_in(role)
        for path in paths:
            tab.goto(path)
            found[path] = axe_violations(page)
        tab.sign_out()
    bad = {k: v for k, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1)
