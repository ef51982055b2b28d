"""A whole crawl of the local test site through the real broker and object store.

One crawl (module fixture) over four hosts: the main site (every extraction form, every opt-out),
a host whose robots.txt answers 503, one without robots.txt (404), and a port nobody listens on.
The published records are read back from the real broker with a fresh consumer group; the refusals
and page visits from the durable crawl log in the object store, after the job dir is deleted.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from consentry import wiring
from consentry.catalog.crawllog import CrawlRefusal, PageVisit
from consentry.cli.main import main
from consentry.core.records import JobState, url_key

from .conftest import add_source, fresh_settings, read_topic, run_crawl
from .site import MAIN_NEVER, MAIN_PUBLISHED, MAX_PAGE_BYTES, OPT_OUT_PAGES, optout_image


@pytest.fixture(scope="module")
def crawl(stack, sites):
    sites.main.reset()
    sites.r500.reset()
    sites.r404.reset()
    s = fresh_settings(stack, crawl_max_page_bytes=MAX_PAGE_BYTES)
    add_source(s, "testsite", "127.0.0.1")
    job, rc = run_crawl(s, "testsite", [sites.main.url("/"), sites.r500.url("/"), sites.r404.url("/"),
                                        sites.unreachable + "/"], depth=3, max_pages=200)
    expected = len(MAIN_PUBLISHED) + 1
    records = read_topic(s, expected)
    jobdir = s.home / "jobs" / job.id
    assert (jobdir / "crawl.log").is_file() and not (jobdir / "records.pending.jsonl").exists()
    shutil.move(jobdir / "crawl.log", s.home / f"{job.id}.crawl.log")  # kept for the remote-console test
    shutil.rmtree(jobdir)  # as on Kubernetes, where the crawl pod's disk is gone with it
    lines = list(wiring.crawl_log(s).lines(job.id))
    refusals = [ln.model_dump(mode="json") for ln in lines if isinstance(ln, CrawlRefusal)]
    return s, job, rc, records, refusals


def main_paths(sites, records):
    base = sites.main.base
    return [r.url[len(base):] for r in records if r.url.startswith(base + "/")]


def test_job_finishes_and_every_allowed_image_is_published_exactly_once(crawl, sites):
    s, job, rc, records, _ = crawl
    assert rc == 0 and job.state is JobState.FINISHED, job.error
    counts = Counter(r.url for r in records)
    assert max(counts.values()) == 1, [u for u, n in counts.items() if n > 1]
    assert set(main_paths(sites, records)) == MAIN_PUBLISHED
    assert sites.r404.url("/img/r404.jpg") in counts  # robots.txt 404: the site is open to us
    assert len(records) == len(MAIN_PUBLISHED) + 1
    assert job.stats["published"] == len(records)


def test_refused_images_are_never_published(crawl, sites):
    _, _, _, records, _ = crawl
    published = set(main_paths(sites, records))
    assert not published & MAIN_NEVER
    urls = {r.url for r in records}
    assert sites.r500.url("/img/r500.jpg") not in urls
    assert sites.r500.url("/img/on-5xx-host.jpg") not in urls  # image URL checked against its host's robots.txt
    assert not any("example" in u for u in urls)


def test_each_refusal_is_counted_and_recorded_with_its_reason(crawl, sites):
    _, job, _, _, refusals = crawl
    by_url = {(r["url"], r["what"]): r["reason"] for r in refusals}
    for path, (_, _, reason) in OPT_OUT_PAGES.items():
        assert by_url[(sites.main.url(path), "page")] == reason, path
    assert by_url[(sites.main.url("/private/secret.html"), "request")] == "robots-txt"
    assert by_url[(sites.r500.url("/"), "request")] == "robots-txt"  # 5xx robots.txt: disallow all
    assert by_url[(sites.unreachable + "/", "request")] == "robots-txt"  # unreachable robots.txt: disallow all
    assert by_url[(sites.main.url("/img/blocked/robots.jpg"), "image")] == "robots-txt"
    assert by_url[(sites.main.url("/img/tdm/reserved.jpg"), "image")] == "tdm-reservation"
    assert by_url[("https://cdn.example.net/offsite.jpg", "image")] == "offsite-image"
    assert by_url[("http://169.254.169.254/latest/meta-data/", "request")] == "private-address"  # a redirect target
    assert by_url[("http://127.0.0.2:9/elsewhere.html", "request")] == "out-of-scope"
    assert by_url[("https://example.com/elsewhere.html", "link")] == "out-of-scope"  # a link never followed
    want = Counter(r["reason"] for r in refusals)
    assert job.refusals == dict(want)
    for reason in ("noai", "noimageai", "noindex", "noimageindex", "tdm-reservation", "robots-txt"):
        assert job.refusals[reason] >= 1


def test_the_servers_saw_only_what_we_may_fetch(crawl, sites):
    s, _, _, _, _ = crawl
    main = sites.main.paths()
    for never in ("/private/secret.html", "/only-via-nofollow.html", "/rel-nofollow.html", "/deep/4.html"):
        assert never not in main, never
    assert main.count("/robots.txt") == 1 and main.count("/.well-known/tdmrep.json") == 1
    assert [p for p in main if main.count(p) > 1] == []  # no page fetched twice
    assert set(sites.r500.paths()) == {"/robots.txt"}  # 503 (retried with backoff), then nothing else
    assert "/" in sites.r404.paths()
    agents = {h.user_agent for srv in (sites.main, sites.r500, sites.r404) for h in srv.hits}
    assert agents == {s.user_agent}
    assert "consentry" in s.user_agent.lower() and "+http" in s.user_agent  # honest, with a contact URL


def test_candidates_carry_page_context_and_allowed_signals(crawl, sites):
    _, job, _, records, _ = crawl
    by_path = {r.url[len(sites.main.base):]: r for r in records if r.url.startswith(sites.main.base)}
    plain = by_path["/img/plain.jpg"]
    assert plain.page_url == sites.main.url("/forms.html") or plain.page_url == sites.main.url("/more/page2.html")
    forms = by_path["/img/srcset-large.jpg"]
    assert (forms.page_url, forms.alt, forms.page_title, forms.licence_url) == (
        sites.main.url("/forms.html"), "Widths", "Forms", "https://creativecommons.org/licenses/by/4.0/")
    assert by_path["/img/og.jpg"].alt == "OG alt"
    assert all(r.job_id == job.id and r.source_id == "testsite" and r.key == url_key(r.url) for r in records)
    zero = by_path[optout_image("/allowed/tdm-zero.html")]
    assert ("tdm-reservation", "0", False) in {(x.name, x.value, x.opt_out) for x in zero.signals}
    for r in records:
        assert not any(x.opt_out for x in r.signals)
        assert ("robots.txt", "allowed") in {(x.name, x.value) for x in r.signals}


def test_status_counters_add_up(crawl, sites):
    _, job, _, records, refusals = crawl
    st = job.stats
    # every distinct image URL seen: published, refused on its own, or withheld with its opted-out page
    assert st["images_found"] == len(records) + st["refused_images"] + len(OPT_OUT_PAGES)
    assert st["images_withheld"] == len(OPT_OUT_PAGES)
    assert st["refused_pages"] == len(OPT_OUT_PAGES)
    assert st["refused_pages"] + st["refused_requests"] + st["refused_images"] + st["refused_links"] == len(refusals)
    assert st["pages"] >= 20


def test_the_crawl_log_says_where_and_by_which_signal(crawl, sites):
    """Each refusal names its signal and value and the page it came from; each page read lists its images."""
    s, job, _, _, refusals = crawl
    by_url = {r["url"]: r for r in refusals}
    img = by_url[sites.main.url("/img/blocked/robots.jpg")]
    assert img["page_url"] == sites.main.url("/forms.html") and img["job_id"] == job.id
    assert [(g["name"], g["opt_out"]) for g in img["signals"]] == [("robots.txt", True)]
    page = by_url[sites.main.url("/optout/xrt-noai.html")]
    assert (page["what"], page["reason"]) == ("page", "noai")
    assert [(g["name"], g["value"]) for g in page["signals"]] == [("x-robots-tag", "noai")]
    assert by_url["https://example.com/elsewhere.html"]["page_url"] == sites.main.url("/")
    assert by_url[sites.main.url("/private/secret.html")]["page_url"] == sites.main.url("/")  # the Referer
    visits = {v.url: v for v in wiring.crawl_log(s).lines(job.id) if isinstance(v, PageVisit)}
    assert len(visits) == job.stats["pages"]
    forms = visits[sites.main.url("/forms.html")]
    assert forms.decision.value == "index" and sites.main.url("/img/blocked/robots.jpg") in forms.images
    optout = visits[sites.main.url("/optout/xrt-noai.html")]
    assert optout.decision.value == "refuse"
    assert optout.images == [sites.main.url(optout_image("/optout/xrt-noai.html"))]


def test_the_crawl_process_opens_no_remote_console(crawl):
    """Scrapy's telnet console and (>= 2.19) its code-running remote-control HTTP server stay off."""
    s, job, *_ = crawl
    log = (s.home / f"{job.id}.crawl.log").read_text()
    assert "Spider opened" in log  # the log is the crawl's own
    assert "Remote control HTTP server listening" not in log and "Telnet console listening" not in log


# --- explain, after the crawl process and its job dir are gone (through the CLI) ----------------------
def explain(capsys, *args):
    rc = main(["explain", *args, "--json"])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.strip() else None), err


def test_explain_gives_the_crawl_time_decision_for_a_page_level_opt_out(crawl, sites, capsys):
    _, job, *_ = crawl
    page = sites.main.url("/optout/meta-noai.html")
    rc, e, err = explain(capsys, sites.main.url(optout_image("/optout/meta-noai.html")))
    assert rc == 0, err
    assert (e["status"], e["reason"], e["page_url"]) == ("refused-at-crawl", "noai", page)
    assert [(g["name"], g["value"], g["opt_out"]) for g in e["signals"]] == [("meta-robots", "noai", True)]
    assert e["crawl"][-1]["decision"] == "withheld" and e["crawl"][-1]["job_id"] == job.id
    assert page in e["summary"] and "noai" in e["summary"]


def test_explain_gives_the_crawl_time_decision_for_a_robots_disallowed_image(crawl, sites, capsys):
    rc, e, err = explain(capsys, sites.main.url("/img/blocked/robots.jpg"))
    assert rc == 0, err
    assert (e["status"], e["reason"]) == ("refused-at-crawl", "robots-txt")
    assert e["page_url"] == sites.main.url("/forms.html")
    assert e["signals"][0]["name"] == "robots.txt" and e["signals"][0]["value"].startswith("disallowed")
    assert e["crawl"][-1]["what"] == "image" and e["crawl"][-1]["at"]


def test_explain_gives_the_crawl_time_decision_for_an_out_of_scope_link(crawl, sites, capsys):
    rc, e, err = explain(capsys, "https://example.com/elsewhere.html")
    assert rc == 0, err
    assert (e["status"], e["reason"], e["page_url"]) == ("refused-at-crawl", "out-of-scope", sites.main.url("/"))
    assert e["crawl"][-1]["what"] == "link"


def test_explain_says_published_for_an_allowed_image_and_never_seen_otherwise(crawl, sites, capsys):
    rc, e, _ = explain(capsys, sites.main.url("/img/plain.jpg"))
    assert rc == 0 and e["status"] == "published"  # nothing ingested in this test: handed to ingest, no provenance
    rc, e, err = explain(capsys, sites.main.url("/img/nobody-linked-this.jpg"))
    assert rc == 1 and e["status"] == "never-seen" and "no provenance" in err


def test_explain_page_lists_every_image_found_and_the_decision_for_each(crawl, sites, capsys):
    rc, p, err = explain(capsys, "--page", sites.main.url("/forms.html"))
    assert rc == 0, err
    assert p["status"] == "crawled-page" and p["visits"][0]["decision"] == "index"
    images = {i["url"]: (i["status"], i["reason"]) for i in p["images"]}
    assert images[sites.main.url("/img/blocked/robots.jpg")] == ("refused-at-crawl", "robots-txt")
    assert images[sites.main.url("/img/tdm/reserved.jpg")] == ("refused-at-crawl", "tdm-reservation")
    assert images["https://cdn.example.net/offsite.jpg"] == ("refused-at-crawl", "offsite-image")
    assert images[sites.main.url("/img/srcset-large.jpg")] == ("published", "allowed")
    rc, p, _ = explain(capsys, "--page", sites.main.url("/optout/xrt-noindex.html"))
    assert rc == 0 and p["visits"][0]["reason"] == "noindex"
    assert [i["status"] for i in p["images"]] == ["refused-at-crawl"]
    rc, p, _ = explain(capsys, "--page", sites.main.url("/private/secret.html"))  # never fetched
    assert rc == 0 and p["status"] == "refused-at-crawl" and p["refusals"][0]["reason"] == "robots-txt"
    assert main(["explain", "--page", sites.main.url("/forms.html")]) == 0  # the table people read
    out = capsys.readouterr().out
    assert "images found on the page" in out and "robots-txt" in out


def test_crawl_report_lists_the_refusals_by_reason_and_exports_them(crawl, sites, capsys, tmp_path):
    import csv

    _, job, _, _, refusals = crawl
    assert main(["crawl", "report", job.id, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["job_id"] == job.id and rep["refusals_by_reason"] == job.refusals
    assert len(rep["refusals"]) == len(refusals)
    row = next(r for r in rep["refusals"] if r["url"] == sites.main.url("/img/blocked/robots.jpg"))
    assert (row["what"], row["reason"], row["page_url"]) == ("image", "robots-txt", sites.main.url("/forms.html"))
    assert row["signals"].startswith("robots.txt: disallowed")

    out = tmp_path / "refusals.csv"
    assert main(["crawl", "report", job.id, "--csv", "--output", str(out), "--reason", "noai"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["reason"] for r in rows} == {"noai"} and len(rows) == job.refusals["noai"]
    assert set(rows[0]) == {"at", "job_id", "source_id", "what", "url", "page_url", "reason", "signals", "detail"}

    capsys.readouterr()
    assert main(["crawl", "report", job.id]) == 0
    text = capsys.readouterr().out
    assert f"{len(refusals)} refusals" in text and "refused because" in text and "out-of-scope" in text
    assert main(["crawl", "report", "no-such-job"]) == 1
