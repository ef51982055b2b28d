"""The consent and network policies of the crawl, component by component, built with real Scrapy settings.

No sockets: the private/metadata refusals go through the decision function with a fixed resolver.
"""

import asyncio

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.utils.test import get_crawler

from consentry.core.records import Basis, ImageCandidate
from consentry.crawler.extract import FoundImage
from consentry.crawler.hostfiles import HOST_FILE_META, HostFile
from consentry.crawler.middlewares import NOFOLLOW_META, SIGNALS_META
from consentry.crawler.middlewares.consentgate import ConsentGateMiddleware
from consentry.crawler.middlewares.netpolicy import NetworkPolicyMiddleware
from consentry.crawler.middlewares.robotstags import RobotsTagsMiddleware
from consentry.crawler.middlewares.robotstxt import RobotsTxtMiddleware, rules_from
from consentry.crawler.middlewares.scope import SourceScopeMiddleware
from consentry.crawler.middlewares.tdmrep import TdmRepMiddleware, TdmRepPolicy
from consentry.crawler.refusals import Refusals

ROBOTS = b"User-agent: *\nDisallow: /\n\nUser-agent: consentry\nDisallow: /private/\nCrawl-delay: 2\n"


def parse(body: bytes):
    return ProtegoRobotParser(body, None)


# --- robots.txt: RFC 9309 status rules --------------------------------------------------------------------
@pytest.mark.parametrize("status, error, mode", [
    (200, None, "parsed"),
    (404, None, "allow-all"), (401, None, "allow-all"), (403, None, "allow-all"), (410, None, "allow-all"),
    (301, None, "allow-all"),  # redirects past the limit: unavailable
    (429, None, "disallow-all"), (500, None, "disallow-all"), (503, None, "disallow-all"),
    (None, "ConnectionRefusedError", "disallow-all"),
    (None, "not fetched: network policy", "disallow-all"),
])
def test_robots_status_rules(status, error, mode):
    rules = rules_from(HostFile("http://h.test/robots.txt", status, ROBOTS, error), "consentry", parse)
    assert rules.mode == mode
    assert rules.allowed("http://h.test/page.html") is (mode != "disallow-all")


def test_robots_rules_use_our_token_and_crawl_delay():
    rules = rules_from(HostFile("http://h.test/robots.txt", 200, ROBOTS), "consentry", parse)
    assert rules.allowed("http://h.test/public/a.jpg")  # "*" disallows everything; our group does not
    assert not rules.allowed("http://h.test/private/a.jpg")
    assert rules.crawl_delay() == 2.0
    other = rules_from(HostFile("http://h.test/robots.txt", 200, ROBOTS), "otherbot", parse)
    assert not other.allowed("http://h.test/public/a.jpg")
    sig = rules.signal("http://h.test/private/a.jpg", scope="image")
    assert sig.opt_out and sig.name == "robots.txt" and sig.scope == "image"


# --- network policy -------------------------------------------------------------------------------------
def fixed_resolver(table):
    def resolve(host, port):
        if host not in table:
            raise OSError(f"{host}: Name or service not known")
        return table[host]
    return resolve


@pytest.mark.parametrize("host, addr, allow_private, reason", [
    ("metadata.internal", "169.254.169.254", True, "private-address"),  # metadata: refused even when private is allowed
    ("loop.test", "127.0.0.1", False, "private-address"),
    ("lan.test", "10.1.2.3", False, "private-address"),
    ("ll.test", "fe80::1", False, "private-address"),
    ("mixed.test", "93.184.216.34|192.168.1.1", False, "private-address"),
    ("public.test", "93.184.216.34", False, None),
    ("loop.test", "127.0.0.1", True, None),
])
def test_network_policy_decision(host, addr, allow_private, reason):
    mw = NetworkPolicyMiddleware(allow_private, Refusals(get_crawler().stats, None),
                                 resolver=fixed_resolver({host: addr.split("|")}))
    refusal = mw.verdict(f"http://{host}/page.html")
    assert (refusal.reason if refusal else None) == reason


def test_network_policy_refuses_other_schemes():
    mw = NetworkPolicyMiddleware(True, Refusals(get_crawler().stats, None), resolver=fixed_resolver({}))
    assert mw.verdict("ftp://h.test/a").reason == "bad-scheme"
    assert mw.verdict("http://unresolvable.test/a").reason == "dns"


# --- scope ---------------------------------------------------------------------------------------------
class Lines:
    """A recorder that keeps the crawl-log lines in a list."""

    def __init__(self):
        self.lines = []

    def add(self, line):
        self.lines.append(line)


def test_scope_refuses_requests_outside_the_source_and_counts_them():
    crawler = get_crawler()
    recorded = Lines()
    refusals = Refusals(crawler.stats, recorded, "job-1", "src")
    mw = SourceScopeMiddleware(["https://h.test/events/"], refusals)
    assert mw.process_request(Request("https://h.test/events/2024/a.html")) is None
    assert mw.process_request(Request("https://h.test/robots.txt", meta={HOST_FILE_META: True})) is None
    with pytest.raises(IgnoreRequest):
        mw.process_request(Request("https://h.test/private/a.html"))
    with pytest.raises(IgnoreRequest):
        mw.process_request(Request("https://evil.test/robots.txt", meta={HOST_FILE_META: True}))
    assert crawler.stats.get_value("crawler/refused/out-of-scope") == 2
    assert [(r.url, r.what, r.reason) for r in recorded.lines] == [
        ("https://h.test/private/a.html", "request", "out-of-scope"), ("https://evil.test/robots.txt", "request",
                                                                       "out-of-scope")]


# --- robots tags and TDM on pages --------------------------------------------------------------------
def page(url="http://h.test/p.html", head="", headers=None):
    req = Request(url)
    body = f"<html><head>{head}</head><body></body></html>".encode()
    return req, HtmlResponse(url, body=body, headers=headers or {}, request=req, encoding="utf-8")


@pytest.mark.parametrize("head, headers, opt_out, value", [
    ('<meta name="robots" content="noai">', {}, True, "noai"),
    ('<meta name="ROBOTS" content="noimageai, nofollow">', {}, True, "noimageai"),
    ('<meta name="consentry" content="noimageindex">', {}, True, "noimageindex"),
    ('<meta name="robots" content="consentry: noindex">', {}, True, "noindex"),
    ('<meta name="googlebot" content="noai">', {}, None, None),
    ('<meta name="robots" content="googlebot: noai">', {}, False, "allowed"),
    ("", {"X-Robots-Tag": "noai, noimageai"}, True, "noai,noimageai"),
    ("", {"X-Robots-Tag": "consentry: none"}, True, "none"),
    ("", {"X-Robots-Tag": "otherbot: noai"}, False, "allowed"),
    ("", {}, None, None),
])
def test_robots_tags(head, headers, opt_out, value):
    req, resp = page(head=head, headers=headers)
    RobotsTagsMiddleware("consentry").process_response(req, resp)
    signals = resp.meta.get(SIGNALS_META, [])
    if opt_out is None:
        assert signals == []
    else:
        assert [(s.value, s.opt_out) for s in signals] == [(value, opt_out)]


def test_nofollow_is_noted_for_the_spider():
    req, resp = page(head='<meta name="robots" content="nofollow">')
    RobotsTagsMiddleware("consentry").process_response(req, resp)
    assert resp.meta[NOFOLLOW_META] is True
    assert not any(s.opt_out for s in resp.meta[SIGNALS_META])


def test_tdm_header_meta_and_tdmrep_rules():
    crawler = get_crawler()
    policy = TdmRepPolicy(crawler)
    tdmrep = b'[{"location": "/reserved/*", "tdm-reservation": 1}, {"location": "/*", "tdm-reservation": 0}]'

    class SiteFiles:  # what HostFiles hands back once the site's tdmrep.json is downloaded
        async def get(self, url, path):
            assert path == "/.well-known/tdmrep.json"
            return HostFile("http://h.test" + path, 200, tdmrep)

    policy.files = SiteFiles()
    assert asyncio.run(policy.rules("http://h.test/any.html")) == [("/reserved/*", True, None), ("/*", False, None)]
    mw = TdmRepMiddleware(policy)
    cases = [("/open.html", "", {}, [("tdmrep.json", "0", False)]),
             ("/reserved/a.html", "", {}, [("tdmrep.json", "1", True)]),
             ("/h.html", "", {"tdm-reservation": "1"}, [("tdm-reservation", "1", True), ("tdmrep.json", "0", False)]),
             ("/m.html", '<meta name="tdm-reservation" content="1">', {},
              [("tdm-reservation", "1", True), ("tdmrep.json", "0", False)])]
    for path, head, headers, want in cases:
        req, resp = page("http://h.test" + path, head, headers)
        mw.process_response(req, resp)
        assert [(s.name, s.value, s.opt_out) for s in resp.meta[SIGNALS_META]] == want, path


# --- the consent gate ------------------------------------------------------------------------------------
async def _items(*items):
    for i in items:
        yield i


def _gate_run(gate, resp, *items):
    async def go():
        return [o async for o in gate.process_spider_output(resp, _items(*items))]
    return asyncio.run(go())


def test_gate_withholds_images_of_opted_out_pages_and_counts_once():
    crawler = get_crawler()
    recorded = Lines()
    gate = ConsentGateMiddleware(job_id="job-1", source_id="src", basis=Basis.CONSENT, allowed=["h.test"],
                                 stats=crawler.stats, refusals=Refusals(crawler.stats, recorded, "job-1", "src"),
                                 robots=None, tdmrep=None, recorder=recorded)
    req, resp = page(head='<meta name="robots" content="noai">')
    RobotsTagsMiddleware("consentry").process_response(req, resp)
    follow = Request("http://h.test/next.html")
    out = _gate_run(gate, resp, FoundImage("http://h.test/a.jpg", resp.url, "img"),
                    FoundImage("http://h.test/b.jpg", resp.url, "img"), follow)
    assert out == [follow]  # links still followed; no image leaves an opted-out page
    assert crawler.stats.get_value("crawler/refused/noai") == 1
    assert crawler.stats.get_value("crawler/images_withheld") == 2
    refusal, visit = recorded.lines  # the page's refusal, then the page read, with every image found on it
    assert (refusal.what, refusal.reason, [g.name for g in refusal.signals]) == ("page", "noai", ["meta-robots"])
    assert (visit.url, visit.decision.value, visit.images) == (resp.url, "refuse", ["http://h.test/a.jpg",
                                                                                   "http://h.test/b.jpg"])


def test_gate_builds_candidates_and_refuses_offsite_images(tmp_path):
    crawler = get_crawler()
    gate = ConsentGateMiddleware(job_id="job-1", source_id="src", basis=Basis.CONSENT, allowed=["h.test"],
                                 stats=crawler.stats, refusals=Refusals(crawler.stats, None), robots=None, tdmrep=None)
    req, resp = page(headers={"X-Robots-Tag": "googlebot: noai"})
    RobotsTagsMiddleware("consentry").process_response(req, resp)
    out = _gate_run(gate, resp, FoundImage("http://cdn.h.test/a.jpg", resp.url, "img", alt="A", page_title="T",
                                           licence_url="http://h.test/l"),
                    FoundImage("http://other.test/x.jpg", resp.url, "img"),
                    FoundImage("http://other.test/x.jpg", resp.url, "img"))
    assert len(out) == 1 and isinstance(out[0], ImageCandidate)
    c = out[0]
    assert (c.url, c.page_url, c.job_id, c.source_id, c.alt, c.page_title, c.licence_url) == (
        "http://cdn.h.test/a.jpg", resp.url, "job-1", "src", "A", "T", "http://h.test/l")
    assert [(s.name, s.value, s.opt_out) for s in c.signals] == [("x-robots-tag", "allowed", False)]
    assert crawler.stats.get_value("crawler/refused/offsite-image") == 1  # counted once per URL


def test_ai_crawler_groups_follow_the_setting():
    body = b"User-agent: *\nAllow: /\n\nUser-agent: GPTBot\nDisallow: /photos/\n"
    on = rules_from(HostFile("http://h.test/robots.txt", 200, body), "consentry", parse)
    off = rules_from(HostFile("http://h.test/robots.txt", 200, body), "consentry", parse, honour_ai_groups=False)
    assert on.allowed("http://h.test/photos/a.jpg") and off.allowed("http://h.test/photos/a.jpg")  # our group: allowed
    assert on.ai_signal("http://h.test/photos/a.jpg", "image").opt_out
    assert off.ai_signal("http://h.test/photos/a.jpg") is None
    req, resp = page("http://h.test/photos/index.html")
    mw = RobotsTxtMiddleware.__new__(RobotsTxtMiddleware)
    mw.policy = type("P", (), {"cached": lambda self, url: on})()
    mw.process_response(req, resp)
    assert [(s.name, s.opt_out) for s in resp.meta[SIGNALS_META]] == [("robots.txt-ai-crawlers", True)]


def test_gate_refuses_listed_and_ai_txt_images_and_lets_a_licensed_tdm_policy_through():
    from consentry.core.aicrawlers import ai_txt
    from consentry.core.consent import tdm_header_signal
    from consentry.crawler.middlewares.optouts import OptOutUrls

    class AiTxtRules:
        async def rules(self, url):
            return ai_txt(200, b"User-Agent: *\nDisallow: *.gif\n", None, ["consentry"])

    crawler = get_crawler()
    policy = "https://r.test/policy.json"
    gate = ConsentGateMiddleware(job_id="job-1", source_id="src", basis=Basis.LICENCE, allowed=["h.test"],
                                 stats=crawler.stats, refusals=Refusals(crawler.stats, None), robots=None, tdmrep=None,
                                 aitxt=AiTxtRules(), optouts=OptOutUrls([("dnt", "2026-11-30", "prefix",
                                                                          "http://h.test/listed/")]),
                                 evidence=f"licence L-1 names {policy}")
    req, resp = page()
    resp.meta[SIGNALS_META] = [tdm_header_signal("1", policy=policy)]
    out = _gate_run(gate, resp, *(FoundImage(f"http://h.test/{p}", resp.url, "img")
                                  for p in ("listed/a.jpg", "b.gif", "c.jpg")))
    assert [c.url for c in out] == ["http://h.test/c.jpg"]
    (tdm,) = [g for g in out[0].signals if g.name == "tdm-reservation"]
    assert not tdm.opt_out and tdm.policy == policy and "licensed" in tdm.detail
    assert crawler.stats.get_value("crawler/refused/do-not-train") == 1
    assert crawler.stats.get_value("crawler/refused/ai-txt") == 1
