"""`consentry demo`: the whole pipeline on the bundled demo site, through the real CLI.

Every step runs the same `consentry` command an operator would type (shown as ``$ consentry …``)
against the local stack, in a namespace of its own (bucket ``consentry-demo``, topics
``demo-<run>.*``, collections ``demo_faces``/``demo_suppressed``) that is reset at the start.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from ..core.errors import ConsentryError
from ..core.settings import Settings, load_settings
from ..infra.process import ManagedProcess, port_free, port_open, wait_until
from ..infra.stack import Stack
from .photos import ensure_photos
from .site import DemoSite

DEMO_BUCKET = "consentry-demo"
QUERY_PHOTO = "obama3.jpg"  # the person to search for; this photo itself is not on the crawled pages


CONSOLE_ROLES = ("searcher", "privacy", "auditor", "operator")


class DemoFailed(ConsentryError):
    pass


class Demo:
    def __init__(self, settings: Settings, keep: bool = False, echo=click.echo) -> None:
        self.s = settings
        self.keep = keep
        self.echo = echo
        self.run_id = uuid.uuid4().hex[:8]
        self.env: dict[str, str] = {}
        self.step_no = 0
        self.t0 = time.monotonic()

    # ------------------------------------------------------------------ helpers
    def step(self, title: str) -> None:
        self.step_no += 1
        self.echo(click.style(f"\n[{self.step_no}] {title}", bold=True) + f"   (+{time.monotonic() - self.t0:.0f}s)")

    def consentry(self, *args: str, expect: int = 0, json_out: bool = False, show: bool = True) -> Any:
        """Run one CLI command like an operator would; stream its output unless it is JSON."""
        self.echo(click.style("$ consentry " + " ".join(shlex.quote(a) for a in args), fg="cyan"))
        cmd = [sys.executable, "-m", "consentry.cli.main", *args]
        if json_out:
            proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=900)
        else:
            proc = subprocess.run(cmd, env=self.env, stdout=None if show else subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, timeout=900)
        if proc.returncode != expect:
            raise DemoFailed(f"`consentry {' '.join(args)}` exited {proc.returncode} (expected {expect}): "
                             f"{(proc.stderr or '').strip()[-500:]}")
        if proc.stderr and (expect != 0 or not json_out):
            for line in proc.stderr.strip().splitlines()[-6:]:
                self.echo("  " + line)
        return json.loads(proc.stdout) if json_out else proc

    # ------------------------------------------------------------------ the walk-through
    def run(self) -> dict[str, Any]:
        stack = Stack(self.s)
        self.step("Start the local stack (SeaweedFS S3, tansu Kafka, milvus-lite, a Ray head)")
        stack.up("embedded", ray=True)  # `ingest run` below runs its workers on the stack's Ray
        try:
            return self._run_with_stack()
        finally:
            if self.keep:
                self.echo("\nThe stack is still up (demo namespace: bucket consentry-demo, topics "
                          f"demo-{self.run_id}.*). Stop it with: consentry demo --stop")
            else:
                self.step("Stop the local stack")
                stack.down()

    def _run_with_stack(self) -> dict[str, Any]:
        s = load_settings(home=self.s.home, config=self.s.config)  # with the stack's generated credentials
        photos = ensure_photos()
        self._reset(s)
        self.env = {**os.environ, "CONSENTRY_HOME": str(s.home), "CONSENTRY_S3_BUCKET": DEMO_BUCKET,
                    "CONSENTRY_TOPIC_PREFIX": f"demo-{self.run_id}.", "CONSENTRY_MILVUS_COLLECTION": "demo_faces",
                    "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": "demo_suppressed",
                    "CONSENTRY_KAFKA_CONSUMER_GROUP": f"demo-{self.run_id}",
                    # the demo site is on 127.0.0.1: the demo turns private networks on, explicitly
                    "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true",
                    "CONSENTRY_CRAWL_DOWNLOAD_DELAY": "0.05", "CONSENTRY_INGEST_IDLE_SECONDS": "4",
                    "RAY_USAGE_STATS_ENABLED": "0"}
        if self.s.config:
            self.env["CONSENTRY_CONFIG"] = str(self.s.config)
        summary: dict[str, Any] = {}
        with DemoSite(photos) as site:
            fam, press, unknown = f"{site.base}/family/", f"{site.base}/press/", f"{site.base}/unknown/"
            self.step(f"Serve the demo site on {site.base} and register its sources")
            self.consentry("source", "add", "demo-family", "--match", fam, "--basis", "consent",
                           "--evidence", "DEMO-CONSENT-FORMS-2026", "--retention-days", "365")
            self.consentry("source", "add", "demo-press", "--match", press, "--basis", "licence",
                           "--evidence", "CC-BY-4.0", "--retention-days", "90")
            self.consentry("source", "add", "demo-unknown", "--match", unknown, "--basis", "none")

            self.step("Crawl: a source without a consent basis is refused")
            self.consentry("crawl", "start", "--source", "demo-unknown", "--seed", unknown, expect=1)

            self.step("Crawl the consented sources (robots.txt, noai pages and TDM reservations honoured)")
            jobs = []
            for name, seed in (("demo-family", fam), ("demo-press", press)):
                out = self.consentry("crawl", "start", "--source", name, "--seed", seed, "--json", json_out=True)
                jobs.append(out)
                stats = out.get("stats", {})
                self.echo(f"  job {out['id']}: {out['state']}, pages {stats.get('pages', '?')}, images found "
                          f"{stats.get('images_found', '?')}, published {stats.get('published', '?')}, "
                          f"refused {out.get('refusals') or {}}")
            summary["crawl"] = jobs
            if "/unknown/" in " ".join(site.hits):
                raise DemoFailed("the crawler touched the basis-none source")

            self.step("Ingest: Ray workers fetch, validate, decide consent, detect and embed faces")
            self.consentry("ingest", "run", "--until-idle", "--workers", "1")

            self.step(f"Search by photo ({QUERY_PHOTO}, a photo that is not on the site)")
            found = self._search(photos[QUERY_PHOTO])
            urls = sorted({h["image"]["url"] for q in found["query_faces"] for h in q["hits"]})
            if not urls:
                raise DemoFailed("the search found nothing; the person's two photos should have matched")
            summary["search_before"] = urls

            self.step("Explain refused images")
            self.consentry("explain", f"{fam}img/biden.jpg")
            self.consentry("explain", f"{press}img/keynote.jpg")

            self.step("Forget that person (by photo): delete, redact, suppress, verify")
            receipt = self.consentry("forget", str(photos[QUERY_PHOTO]), "--json", json_out=True)
            self.echo(f"  receipt {receipt['request_id']}: {len(receipt['matched_face_ids'])} faces matched, "
                      f"deleted {receipt['deleted']}, verification "
                      f"{'ok' if receipt['verification']['ok'] else 'FAILED'}")
            summary["forget"] = receipt

            self.step("Search again: nothing left for that person")
            after = self._search(photos[QUERY_PHOTO])
            left = [h for q in after["query_faces"] for h in q["hits"]]
            self.echo(f"  {len(left)} match(es)")
            if left:
                raise DemoFailed("the person is still searchable after forget")
            summary["search_after"] = left

            self.step("Audit: every search, erasure and consent change is hash-chained")
            self.consentry("audit", "verify")
        if self.keep:  # the console reads the demo's topics (the DLQ): they stay with the stack
            self.step("Serve the web console on the demo data")
            summary["console"] = self.serve_console()
        else:
            self._cleanup_topics(s)
        self.echo(click.style(f"\nDemo complete in {time.monotonic() - self.t0:.0f}s.", bold=True, fg="green"))
        if self.keep:
            c = summary["console"]
            self.echo(click.style(f"\nThe console: {c['url']}", bold=True) + f"   (API pid {c['pid']}, log {c['log']})")
            self.echo("Sign in with one of these tokens (shown only now; the role decides which pages you see):")
            for role, token in c["tokens"].items():
                self.echo(f"  {role:<9} {token}")
            self.echo("Stop the console and the stack with: consentry demo --stop")
        return summary

    def serve_console(self) -> dict[str, Any]:
        """`consentry api serve` on the demo namespace, in the background, and a token per role to sign in with."""
        tokens = {role: self.consentry("token", "create", f"demo-{role}", "--role", role, "--json",
                                       json_out=True)["token"] for role in CONSOLE_ROLES}
        host = "127.0.0.1"
        port = next((p for p in range(self.s.api_port, self.s.api_port + 100) if port_free(host, p)), None)
        if port is None:
            raise DemoFailed(f"no free port for the console from {self.s.api_port}")
        proc = console_process(self.s)
        proc.stop()  # a console left by an earlier `demo --keep`
        self.echo(click.style(f"$ consentry api serve --host {host} --port {port}   (in the background)", fg="cyan"))
        pid = proc.start([sys.executable, "-m", "consentry.cli.main", "api", "serve", "--host", host,
                          "--port", str(port)], env=self.env)
        if not wait_until(lambda: port_open(host, port) or proc.exited_early(), 60) or proc.exited_early():
            raise DemoFailed(f"the API did not start: {proc.log_tail()}")
        return {"url": f"http://{host}:{port}/console", "pid": pid, "tokens": tokens, "log": str(proc.log_file)}

    def _search(self, photo: Path) -> dict[str, Any]:
        out = self.consentry("search", str(photo), "--purpose", "demo: find the photos of this person",
                             "--case", "DEMO-1", "--json", json_out=True)
        for q in out["query_faces"]:
            for h in q["hits"]:
                self.echo(f"  score {h['score']:.3f}  {h['source_id']:<12} {h['image']['url']}  "
                          f"(page {h['image']['page_url']})")
        return out

    # ------------------------------------------------------------------ namespace
    def _reset(self, s: Settings) -> None:
        """Start from an empty demo namespace: bucket emptied, demo collections dropped."""
        from .. import wiring

        demo = s.model_copy(update={"s3_bucket": DEMO_BUCKET, "milvus_collection": "demo_faces",
                                    "milvus_suppression_collection": "demo_suppressed"})
        store = wiring.object_store(demo)
        store.ensure_bucket()
        store.delete_many(list(store.list("")))
        index = wiring.face_index(demo)
        index.store.drop(index.spec)
        index.store.drop(index.suppression)

    def _cleanup_topics(self, s: Settings) -> None:
        from .. import wiring

        try:
            broker = wiring.broker(s)
            broker.delete_topics([t for t in broker.topics() if t.startswith(f"demo-{self.run_id}.")])
        except Exception:
            pass


def run_demo(settings: Settings, keep: bool = False) -> dict[str, Any]:
    return Demo(settings, keep=keep).run()


def console_process(settings: Settings) -> ManagedProcess:
    """The API (with the console) that `consentry demo --keep` leaves running."""
    return ManagedProcess("demo-console", settings.stack_dir)


def stop_demo(settings: Settings) -> list[str]:
    """Stop what `consentry demo --keep` left running: the console, then the stack. Returns what was stopped."""
    stopped = ["console"] if console_process(settings).stop() else []
    return stopped + Stack(settings).down()
