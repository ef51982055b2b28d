"""Crawl throughput: Consentry's crawler next to bare Scrapy, on the same local 1,000-page site, in one run.

    .venv/bin/python bench/crawl_bench.py [--pages 1000] [--images 3] [--concurrency 8] [--repeat 1]

Starts a private local stack (S3 + Kafka-compatible broker, ports from --port-base) and a threaded
HTTP site on 127.0.0.1, then crawls it

- with bare Scrapy: a minimal spider (follow every link, yield every <img src>) under the same
  politeness settings (user agent, robots.txt, per-domain concurrency, delay, AutoThrottle, retries),
  without our middlewares, pipeline or JOBDIR;
- with Consentry: ``CrawlRunner`` via the CLI's launcher — network policy, scope, robots.txt per
  RFC 9309, TDMRep, robots tags, the consent gate, JOBDIR persistence, every candidate
  published to Kafka with acks=all, and the durable crawl log (every page read and every refusal,
  stored in the object store in batches).

Each crawl runs in its own process; times are Scrapy's own crawl time (engine open → close), so
process start-up is not counted. Prints a table with pages/s, candidates/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402


# ----------------------------------------------------------------------------------------------- the site
def make_site(pages: int, images: int, fanout: int = 5) -> dict[str, bytes]:
    """A tree of ``pages`` pages (each links its ``fanout`` children and the home page), ``images`` images each."""
    site: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nAllow: /\n"}
    for i in range(pages):
        kids = [k for k in range(i * fanout + 1, i * fanout + fanout + 1) if k < pages]
        links = "".join(f'<a href="/p/{k}.html">page {k}</a> ' for k in kids) + '<a href="/p/0.html">home</a>'
        imgs = "".join(f'<img src="/img/{i}-{j}.jpg" alt="photo {i}-{j}">' for j in range(images))
        site[f"/p/{i}.html"] = (f"<!doctype html><html><head><title>Page {i}</title></head><body>"
                                f"<h1>Page {i}</h1>{links}{imgs}<p>{'lorem ipsum ' * 40}</p></body></html>").encode()
    return site


def serve(site: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = site.get(self.path)
            self.send_response(200 if body is not None else 404)
            ctype = "text/plain" if self.path.endswith(".txt") or body is None else "text/html; charset=utf-8"
            body = body if body is not None else b"not found"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ----------------------------------------------------------------------------------------------- bare Scrapy
def bare_child(seed: str, settings_file: str) -> None:
    """Child process: crawl with a minimal spider; print pages, items and Scrapy's elapsed time as JSON."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class BareSpider(scrapy.Spider):
        name = "bare"

        async def start(self):
            yield scrapy.Request(seed, callback=self.parse)  # filtered like every other URL: each page once

        def parse(self, response):
            self.crawler.stats.inc_value("bench/pages")
            for src in response.css("img::attr(src)").getall():
                yield {"url": response.urljoin(src), "page_url": response.url}
            yield from response.follow_all(css="a", callback=self.parse)

    settings = json.loads(Path(settings_file).read_text())
    settings.update(LOG_LEVEL="WARNING")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler)
    process.start()
    st = crawler.stats.get_stats()
    print(json.dumps({"pages": st.get("bench/pages", 0), "candidates": st.get("item_scraped_count", 0),
                      "seconds": st.get("elapsed_time_seconds")}))


def run_bare(settings_dict: dict, seed: str, tmp: Path) -> dict:
    path = tmp / "bare-settings.json"
    path.write_text(json.dumps(settings_dict))
    out = subprocess.run([sys.executable, __file__, "--bare-child", seed, str(path)], capture_output=True, text=True,
                         timeout=900, check=False)
    if out.returncode != 0:
        raise SystemExit(f"bare Scrapy crawl failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------- ours
def run_ours(settings, seed: str, match: str, pages: int, depth: int) -> dict:
    from consentry import wiring
    from consentry.core.records import JobState, Source

    store = wiring.object_store(settings)
    wiring.sources(settings, store).put(Source.build(id="bench", match=match, basis="own-archive"))
    launcher = wiring.crawl_launcher(settings, store)
    job = launcher.plan("bench", [seed], max_pages=pages, depth=depth)
    job, rc = launcher.wait(job.id, launcher.spawn(job.id))
    if job.state is not JobState.FINISHED:
        raise SystemExit(f"Consentry crawl {job.state.value}: {job.error}; see {launcher.view(job).jobdir.log_file}")
    st = job.stats
    batches = len(wiring.crawl_log(settings, store).batches(job.id))  # the durable record is on: say so
    return {"pages": st["pages"], "candidates": st["published"], "seconds": st["elapsed_ms"] / 1000,
            "crawl_log_batches": batches}


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare-child":
        bare_child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--images", type=int, default=3, help="distinct images per page")
    ap.add_argument("--concurrency", type=int, default=8, help="per-domain concurrency (both crawlers)")
    ap.add_argument("--delay", type=float, default=0.001, help="download delay, seconds (both crawlers)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the two crawlers this many times; report the best")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("CONSENTRY_BENCH_PORT_BASE", "32100")))
    report.add_args(ap)
    args = ap.parse_args()

    import scrapy

    from consentry.core.records import CrawlJob
    from consentry.core.settings import load_settings
    from consentry.crawler.runner import politeness_settings
    from consentry.infra.stack import Stack

    tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-"))
    base = args.port_base
    env = {"CONSENTRY_HOME": str(tmp / "home"), "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{base}",
           "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{base + 92}",
           "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{base + 540}",
           "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true", "CONSENTRY_TOPIC_PREFIX": "bench.",
           "CONSENTRY_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    os.environ.pop("CONSENTRY_CONFIG", None)
    stack = Stack(load_settings())
    server = serve(make_site(args.pages, args.images))
    port = server.server_address[1]
    seed = f"http://127.0.0.1:{port}/p/0.html"
    try:
        print(f"starting a private stack on ports {base}+ …", file=sys.stderr)
        stack.up("embedded")
        results: dict[str, list[dict]] = {"bare Scrapy": [], "Consentry": []}
        for n in range(args.repeat):
            settings = load_settings(topic_prefix=f"bench{n}.", crawl_concurrency_per_domain=args.concurrency,
                                     crawl_download_delay=args.delay)
            job = CrawlJob.build(id="bench", source_id="bench", seeds=[seed], max_pages=args.pages, depth=50,
                                 concurrency_per_domain=args.concurrency, download_delay=args.delay)
            print(f"run {n + 1}/{args.repeat}: bare Scrapy …", file=sys.stderr)
            results["bare Scrapy"].append(run_bare(politeness_settings(settings, job), seed, tmp))
            print(f"run {n + 1}/{args.repeat}: Consentry …", file=sys.stderr)
            results["Consentry"].append(run_ours(settings, seed, f"127.0.0.1:{port}", args.pages, 50))
    finally:
        server.shutdown()
        stack.down()
        shutil.rmtree(tmp, ignore_errors=True)

    best = {name: min(runs, key=lambda r: r["seconds"]) for name, runs in results.items()}
    rates = {name: (r["pages"] / r["seconds"], r["candidates"] / r["seconds"]) for name, r in best.items()}
    ours, bare = rates["Consentry"], rates["bare Scrapy"]
    head = (f"local site: {args.pages} pages, {args.images} images each; per-domain concurrency {args.concurrency}, "
            f"delay {args.delay}s, AutoThrottle on; Scrapy {scrapy.__version__}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs; best of {args.repeat} alternating runs")
    rows = ["| crawler | pages | candidates | seconds | pages/s | candidates/s |", "|---|---|---|---|---|---|"]
    rows += [f"| {name} | {r['pages']} | {r['candidates']} | {r['seconds']:.2f} | {rates[name][0]:.0f} | "
             f"{rates[name][1]:.0f} |" for name, r in best.items()]
    text = "\n".join([head, "", *rows, "",
                      f"**Consentry / bare Scrapy: {ours[0] / bare[0]:.2f}× pages/s** — with robots, TDM, noai, ai.txt "
                      "and AI-crawler checks, the network policy, acks=all publishing and the durable crawl log "
                      f"({best['Consentry']['crawl_log_batches']} batch object(s) in S3) included."])
    print("\n" + text)
    report.write(args, title="Crawl: Consentry vs bare Scrapy", markdown=text,
                 headline=f"{ours[0]:.0f} pages/s, **{ours[0] / bare[0]:.2f}×** bare Scrapy on the same local site "
                          f"({bare[0]:.0f} pages/s), every consent check and the durable crawl log included",
                 data={"best": best, "runs": results, "ratio_pages": round(ours[0] / bare[0], 3)},
                 stand_in="a generated local site on loopback (no network latency)")


if __name__ == "__main__":
    main()
