"""Issue 17's crawl-side signals on a local site, through a real crawl: robots.txt groups for AI crawlers, ai.txt
(rules and failure), X-Robots-Tag `none`, `unavailable_after`, a TDM policy a licence names (and one it does not),
and a do-not-train list — each counted by reason, recorded, and explained after the job dir is gone."""

from __future__ import annotations

import json
import shutil

import pytest

from consentry import wiring
from consentry.catalog.optouts import OptOutRegistry
from consentry.cli.main import main
from consentry.core.optouts import Entry
from consentry.core.records import JobState

from .conftest import add_source, fresh_settings, read_topic, run_crawl
from .site import SiteServer, html, text

pytestmark = pytest.mark.slow  # one real crawl of the whole opt-out site (~40 s) shared by the module

POLICY_A, POLICY_B = "https://rights.example/policy-a.json", "https://rights.example/policy-b.json"
ROBOTS = "User-agent: *\nAllow: /\n\nUser-agent: GPTBot\nUser-agent: CCBot\nDisallow: /ai-no/\n"
AITXT = "# Spawning ai.txt\nUser-Agent: *\nDisallow: *.gif\nDisallow: /aitxt-page/\n"
PAGES = {  # path -> (head, headers, the page's refusal reason or None)
    "/none.html": ("", {"X-Robots-Tag": "none"}, "none"),
    "/expired.html": ('<meta name="robots" content="unavailable_after: Friday, 25-Jun-10 15:00:00 PST">', {},
                      "unavailable-after"),
    "/ai-no/page.html": ("", {}, "robots-txt-ai-crawlers"),
    "/aitxt-page/page.html": ("", {}, "ai-txt"),
    "/tdm-a.html": ("", {"tdm-reservation": "1", "tdm-policy": POLICY_A}, None),  # the licence names policy A
    "/tdm-b.html": ('<meta name="tdm-reservation" content="1"><meta name="tdm-policy" content="' + POLICY_B + '">',
                    {}, "tdm-reservation"),
}


def img(path: str) -> str:
    return "/img" + path.replace(".html", ".jpg")


@pytest.fixture(scope="module")
def optcrawl(stack):
    site = SiteServer({"/robots.txt": text(ROBOTS), "/ai.txt": text(AITXT)}).start()
    down = SiteServer({"/robots.txt": text("User-agent: *\nAllow: /\n"), "/ai.txt": text("busy", status=503),
                       "/": html('<img src="/img/on-ai503.jpg">')}).start()
    links = [*PAGES, "/listed/page.html", down.url("/")]
    site.routes["/"] = html("".join(f'<a href="{p}">x</a>' for p in links)
                            + '<img src="/img/ok.jpg"><img src="/img/anim.gif"><img src="/ai-no/photo.jpg">'
                              '<img src="/listed/photo.jpg">')
    for path, (head, headers, _) in PAGES.items():
        site.routes[path] = html(f'<img src="{img(path)}">', head=head, headers=headers)
    site.routes["/listed/page.html"] = html('<img src="/img/never.jpg">')
    s = fresh_settings(stack)
    store = wiring.object_store(s)
    registry = OptOutRegistry(store)
    list_name = f"t-{s.topic_prefix.strip('.')}"
    registry.put(list_name, "2026-11-30", [Entry("prefix", site.url("/listed/"))])
    add_source(s, "optsite", "127.0.0.1", basis="licence", evidence=f"licence L-7 covering {POLICY_A}")
    try:
        job, rc = run_crawl(s, "optsite", [site.url("/")], depth=2)
        records = read_topic(s, 3)
        shutil.rmtree(s.home / "jobs" / job.id)
        yield s, site, down, job, rc, records, list_name
    finally:
        registry.remove(list_name)
        site.stop()
        down.stop()


def explain(capsys, *args):
    rc = main(["explain", *args, "--json"])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


def test_the_crawl_publishes_only_what_no_signal_refuses(optcrawl):
    s, site, down, job, rc, records, _ = optcrawl
    assert rc == 0 and job.state is JobState.FINISHED, job.error
    assert {r.url for r in records} == {site.url("/img/ok.jpg"), site.url(img("/tdm-a.html"))}
    tdm_a = next(r for r in records if r.url == site.url(img("/tdm-a.html")))
    (sig,) = [g for g in tdm_a.signals if g.name == "tdm-reservation"]
    assert (sig.opt_out, sig.policy) == (False, POLICY_A) and "licensed" in sig.detail
    assert "/listed/page.html" not in site.paths()  # a listed page is never fetched
    assert site.paths().count("/ai.txt") == 1


def test_each_new_signal_is_counted_by_reason(optcrawl):
    _, _, _, job, *_ = optcrawl
    want = {"none": 1, "unavailable-after": 1, "robots-txt-ai-crawlers": 2, "ai-txt": 3, "tdm-reservation": 1,
            "do-not-train": 2}
    assert {k: job.refusals.get(k) for k in want} == want


@pytest.mark.parametrize("path, status, reason, signal", [
    ("/img/anim.gif", "refused-at-crawl", "ai-txt", ("ai.txt", "disallowed (Disallow: *.gif)")),
    ("/ai-no/photo.jpg", "refused-at-crawl", "robots-txt-ai-crawlers", ("robots.txt-ai-crawlers", None)),
    ("/listed/photo.jpg", "refused-at-crawl", "do-not-train", ("do-not-train", None)),
    (img("/none.html"), "refused-at-crawl", "none", ("x-robots-tag", "none")),
    (img("/expired.html"), "refused-at-crawl", "unavailable-after", ("meta-robots", None)),
    (img("/ai-no/page.html"), "refused-at-crawl", "robots-txt-ai-crawlers", ("robots.txt-ai-crawlers", None)),
    (img("/aitxt-page/page.html"), "refused-at-crawl", "ai-txt", ("ai.txt", "disallowed (Disallow: /aitxt-page/)")),
    (img("/tdm-b.html"), "refused-at-crawl", "tdm-reservation", ("tdm-reservation", "1")),
])
def test_explain_names_the_signal_and_its_value(optcrawl, capsys, path, status, reason, signal):
    s, site, *_ = optcrawl
    rc, e, err = explain(capsys, site.url(path))
    assert rc == 0, err
    assert (e["status"], e["reason"]) == (status, reason)
    names = {g["name"]: g for g in e["signals"]}
    assert signal[0] in names and names[signal[0]]["opt_out"]
    if signal[1]:
        assert names[signal[0]]["value"] == signal[1]
    if reason == "do-not-train":
        assert names[signal[0]]["value"].startswith(f"{optcrawl[-1]} (2026-11-30): prefix ")
    if path == img("/tdm-b.html"):
        assert names["tdm-reservation"]["policy"] == POLICY_B  # recorded, and not the licence's policy


def test_an_unreachable_ai_txt_withholds_the_site(optcrawl, capsys):
    s, site, down, job, *_ = optcrawl
    rc, e, _ = explain(capsys, down.url("/img/on-ai503.jpg"))
    assert (e["status"], e["reason"]) == ("refused-at-crawl", "ai-txt")
    assert e["signals"][0]["value"] == "disallowed (ai.txt answered 503)"


def test_a_listed_page_and_the_report(optcrawl, capsys):
    s, site, _, job, *_ = optcrawl
    rc, p, _ = explain(capsys, "--page", site.url("/listed/page.html"))
    assert p["status"] == "refused-at-crawl" and p["refusals"][0]["reason"] == "do-not-train"
    assert main(["crawl", "report", job.id, "--reason", "ai-txt", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["refusals"]
    assert {r["url"] for r in rows} == {site.url("/img/anim.gif"), site.url("/aitxt-page/page.html"),
                                        optcrawl[2].url("/")}
