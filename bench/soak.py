"""Soak: `consentry ingest run` on the real model pack and real photos while every kind of fault hits it;
the accounting at the end is computed, not asserted.

A stack of its own (SeaweedFS, tansu, milvus-lite and the stack's Ray head with token auth, on loopback
ports from --port-base, state and RAY_TMPDIR in a fresh /tmp/soak.* folder) and an image site in its own
process. The candidates, in a seeded random order: distinct-byte copies of the demo photos
(consentry.demo.photos: face_recognition's obama/biden photos, insightface's t1.jpg, scikit-image's
astronaut) expected to be indexed; more copies served with ``X-Robots-Tag: noai``, expected to be refused
with reason ``noai``; and undecodable bodies (HTML, random bytes, truncated JPEGs), expected in the DLQ.
They are ingested by `consentry ingest run --workers 2 --until-idle` (two Ray actors on the stack's Ray
head, the default model pack unless --model-pack), started again whenever it exits or is killed.

The candidates go onto the images topic in waves, one wave per fault, and the site holds the responses
for a wave's images until its fault has begun (as tests/faults/ does; the fetch timeout is raised to
120 s for that), so every fault meets records in flight. The faults, in a seeded order: every kind at
least once, then random extra ones up to --faults: s3-outage (SeaweedFS stopped for a few seconds),
broker-restart (tansu), milvus-restart (milvus-lite stopped with SIGINT and started), milvus-crash
(milvus-lite SIGKILLed while records are being written, then started), ingest-sigkill (the `ingest run`
driver), ray-actor-kill (one IngestActor worker process). Each is logged with its time, the progress, the
records in flight, how long progress took to resume and how many of the held images were fetched again.
After the last wave: `consentry doctor --repair --json` (it re-publishes the images whose faces the
crash lost; printed), a last `ingest run`, `consentry doctor --json`.

Then the accounting, computed from S3, the DLQ topic and Milvus: candidates (and how many were
published); per expected outcome, how many ended that way; lost or never processed (no provenance
record); wrong outcome; DLQ entries; faces named by provenance vs faces in Milvus (distinct, missing,
extra, duplicated); face counts per photo across its copies; faults per kind; ingest processes;
redeliveries (as the runs that exited report them, circuit openings and group members replaced as the
actors logged them); stalls: no progress for --stall-s with work released, or a last `ingest run` not
idle after as long (the driver's and its actors' logs and the broker's view of the consumer group are
printed, the driver is SIGKILLed and started again; a second stall with no progress between ends the
fault phase); `ingest run --until-idle` exits that left released work undone (with their actors' logs);
seconds. ``balanced: yes`` only when every one of those checks holds. Exit 0 balanced, 1
not balanced (or aborted), 2 balanced but a fault kind could not be injected, 130 interrupted. Every
process it started is stopped at the end, also on error and Ctrl-C.

    .venv/bin/python bench/soak.py [--images 2000] [--faults 12] [--seed 7] [--port-base 43000] [--report FILE]

Not part of the test suite (5-10 minutes on 2 cores at the defaults, longer when it stalls); tests/faults/
checks each fault on its own, on a test model.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402
from ingest_env import PHOTOS, Feed, ImageSite, copies, free_port, stack_env, tagged_jpeg, to_jpeg  # noqa: E402

KINDS = ("s3-outage", "broker-restart", "milvus-restart", "milvus-crash", "ingest-sigkill", "ray-actor-kill")
#: how long the service stays down (seconds), drawn per fault from these ranges
DOWN_S = {"s3-outage": (3.0, 10.0), "broker-restart": (1.0, 5.0), "milvus-restart": (1.0, 4.0),
          "milvus-crash": (0.5, 2.0)}
WORKERS = 2
#: lines left out of the actors' log excerpts: connection chatter, one line per record
NOISE = ("kafka.net", "kafka.cluster", "httpx", "urllib3", "chttp2", "ingested url_key")
HELD = 5  # a fault waits for this many held image requests of its wave (an actor fetches 4 at a time: both fetch),
HELD_SETTLE_S = 5.0  # or for this long after the first one (a worker blocked on held fetches polls nothing, so a
#                      rebalance waits for it: holding for long would be a fault of the soak's own)

#: the image site: files from a folder; /noai/ paths answered with X-Robots-Tag: noai; /w<k>/ paths held until
#: the gate file says wave k is released; every GET path logged on arrival
SITE_SERVER = r"""
import re, sys, threading, time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

root, port, log_path, gate_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
log, lock = open(log_path, "a", buffering=1), threading.Lock()

def released():
    try:
        with open(gate_path) as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 0

class Handler(SimpleHTTPRequestHandler):
    def end_headers(self):
        if "/noai/" in self.path:
            self.send_header("X-Robots-Tag", "noai")
        super().end_headers()

    def do_GET(self):
        with lock:
            log.write(self.path + "\n")
        m = re.match(r"/w(\d+)/", self.path)
        while m and int(m.group(1)) > released():
            time.sleep(0.05)
        super().do_GET()

    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=root)).serve_forever()
"""


class Site(ImageSite):
    """The bench's image site (files in a folder, its own process), with X-Robots-Tag: noai on /noai/ paths, the
    images of wave k (/w<k>/...) held until :meth:`release` (k), and a log of every request."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder / "files"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.request_log = folder / "requests.log"
        self.gate = folder / "released"
        self.released = 0
        self.release(0)

    def start(self) -> Site:
        self.request_log.touch()
        self.serve([sys.executable, "-c", SITE_SERVER, str(self.dir), str(self.port), str(self.request_log),
                    str(self.gate)])
        return self

    def release(self, wave: int) -> None:
        """Serve the images of waves up to ``wave``."""
        tmp = self.gate.with_suffix(".tmp")
        tmp.write_text(str(wave))
        tmp.replace(self.gate)
        self.released = wave

    def requests(self) -> Counter[str]:
        try:
            return Counter(self.request_log.read_text().split())
        except OSError:
            return Counter()


@dataclass
class Candidate:
    path: str
    url: str
    expected: str  # indexed | refused | dlq
    photo: str | None  # the demo photo it is a copy of (good and noai copies)
    wave: int


@dataclass
class Fault:
    n: int
    kind: str
    down_s: float
    pick: int  # which actor (ray-actor-kill)
    at_s: float = 0.0
    progress: int = 0
    in_flight: int = 0  # published, without a provenance record yet
    held: int = 0  # image requests of its wave held by the site when it began
    took_s: float = 0.0
    detail: str = ""
    injected: bool = False
    ended_at: float = 0.0
    resumed_after_s: float | None = None
    drained: bool = False  # every released record had its provenance record by the fault's end
    fetched_again: int = 0  # images of its wave fetched more than once (filled in at the end)


@dataclass
class Ingest:
    """One `consentry ingest run` process (the driver; its actors run on the stack's Ray head)."""

    n: int
    proc: subprocess.Popen
    log: Path
    out: Path
    started: float
    progress_at_start: int
    ended: float | None = None
    ended_by: str = ""  # idle exit | exit N | fault N (ingest-sigkill) | stall
    result: dict[str, Any] = field(default_factory=dict)
    actor_pids: set[int] = field(default_factory=set)  # every IngestActor process seen for it

    def poll(self) -> int | None:
        return self.proc.poll()

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stop(Exception):
    """SIGTERM: stop as on Ctrl-C."""


class GiveUp(Exception):
    """The run cannot go on (ingest keeps going idle with work left, or --timeout): account for what there is."""


class Soak:
    def __init__(self, args: argparse.Namespace, home: Path, stack: Any, site: Site, settings: Any) -> None:
        self.args = args
        self.home = home
        self.stack = stack
        self.site = site
        self.s = settings
        self.t0 = time.monotonic()
        self.deadline = time.monotonic() + args.timeout
        self.candidates: list[Candidate] = []
        self.wave_sizes: list[int] = []
        self.waves_published = 0
        self.ingests: list[Ingest] = []
        self.keep_ingesting = True
        self.idle_without_progress = 0
        self.faults: list[Fault] = []
        self.failed_injections: list[str] = []
        self.stalls: list[dict[str, Any]] = []
        self.ray_head_restarts = 0
        self.notes: list[str] = []
        self._progress = 0
        self._last_change = time.monotonic()
        self.stalls_in_a_row = 0  # stalls with no progress between them
        self.early_exits: list[dict[str, Any]] = []  # `ingest run --until-idle` exits with released work left
        from consentry import wiring

        self.store = wiring.object_store(settings)
        self.broker = wiring.broker(settings)

    # ------------------------------------------------------------------------------------- helpers
    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, msg: str) -> None:
        print(f"soak [+{self.now():6.1f}s] {msg}", flush=True)

    def progress(self) -> int:
        """Provenance records so far (every outcome writes one); the last value while S3 is unreachable."""
        try:
            n = sum(1 for _ in self.store.list("provenance/"))
        except Exception:
            return self._progress
        if n != self._progress:
            self._progress, self._last_change = n, time.monotonic()
            self.stalls_in_a_row = 0
        return n

    @property
    def total(self) -> int:
        return len(self.candidates)

    @property
    def published(self) -> int:
        return sum(self.wave_sizes[:self.waves_published])

    @property
    def released(self) -> int:
        """Candidates published whose images the site serves."""
        return sum(self.wave_sizes[:min(self.waves_published, self.site.released)])

    def held(self, wave: int) -> int:
        """Images of ``wave`` requested from the site so far."""
        prefix = f"/w{wave}/"
        return sum(1 for p in self.site.requests() if p.startswith(prefix))

    @property
    def current(self) -> Ingest | None:
        return self.ingests[-1] if self.ingests else None

    def running(self) -> Ingest | None:
        cur = self.current
        return cur if cur is not None and cur.poll() is None else None

    # ------------------------------------------------------------------------------------- candidates
    def prepare(self, photos: dict[str, Path], rng: random.Random, waves: int) -> None:
        """Every candidate's body served under its wave (seeded order, ``waves`` nearly equal waves)."""
        n_bad = max(1, self.args.images // 10)
        n_noai = max(1, self.args.images // 10)
        n_good = self.args.images - n_bad - n_noai
        bodies: dict[str, tuple[bytes, str, str | None]] = {}
        for tag, n, expected in (("good", n_good, "indexed"), ("noai", n_noai, "refused")):
            per = -(-n // len(PHOTOS))
            for path, body in list(copies(photos, tag, per).items())[:n]:
                photo = path.split("/")[3].removesuffix(".jpg")
                bodies[path] = (body, expected, photo)
        sample = to_jpeg(photos["obama.jpg"])
        for k in range(n_bad):
            path = f"/bad/{k}.jpg"
            kind = k % 3
            if kind == 0:
                body = f"<html><body>not an image {k}</body></html>".encode()
            elif kind == 1:
                body = random.Random(k).randbytes(2048)
            else:  # a JPEG cut in half: sniffed as JPEG, rejected as truncated
                whole = tagged_jpeg(sample, path)
                body = whole[: len(whole) // 2]
            bodies[path] = (body, "dlq", None)
        order = list(bodies)
        rng.shuffle(order)
        q, r = divmod(len(order), waves)
        self.wave_sizes = [q + (1 if k < r else 0) for k in range(waves)]
        Feed(self.s, self.site, source_id="soak")  # registers the source (basis: consent)
        at = 0
        for wave, size in enumerate(self.wave_sizes, 1):
            for path in order[at:at + size]:
                body, expected, of = bodies[path]
                served = f"/w{wave}{path}"
                self.candidates.append(Candidate(served, self.site.add(served, body), expected, of, wave))
            at += size
        self.say(f"{self.total} candidates: {n_good} good copies (expected indexed), {n_noai} noai copies "
                 f"(expected refused), {n_bad} undecodable (expected in the DLQ), in {waves} waves")

    def publish(self) -> None:
        """Put the next wave on the images topic (three tries: the broker may just have been restarted)."""
        from consentry.core.records import ImageCandidate

        wave = self.waves_published + 1
        batch = [c for c in self.candidates if c.wave == wave]
        def send() -> None:
            p = self.broker.producer()
            for c in batch:
                cand = ImageCandidate(url=c.url, page_url=self.site.url("/"), job_id="soak", source_id="soak")
                p.send(self.s.topic_images, cand.key.encode(), cand.to_json())
            p.flush()
            p.close()

        self.three_tries(send, lambda exc: f"publishing wave {wave} failed ({type(exc).__name__}: {exc})")
        self.waves_published = wave
        self.say(f"published wave {wave} ({len(batch)} candidates, {self.published}/{self.total}; "
                 f"{'held' if self.site.released < wave else 'served'} by the site)")

    # ------------------------------------------------------------------------------------- ingest
    def start_ingest(self) -> Ingest:
        n = len(self.ingests) + 1
        log, out = self.home / f"ingest-{n}.log", self.home / f"ingest-{n}.json"
        with open(log, "wb") as err, open(out, "wb") as stdout:
            proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "-v", "ingest", "run",
                                     "--workers", str(WORKERS), "--until-idle", "--json", "--interval", "10"],
                                    stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, env=dict(os.environ),
                                    start_new_session=True)
        ing = Ingest(n, proc, log, out, self.now(), self.progress())
        self.ingests.append(ing)
        self.say(f"ingest #{n} started (pid {proc.pid})")
        return ing

    def reap(self, ing: Ingest) -> None:
        """Record how a finished ingest process ended."""
        if ing.ended is not None:
            return
        rc = ing.poll()
        assert rc is not None
        ing.ended = self.now()
        if not ing.ended_by:
            ing.ended_by = "idle exit" if rc == 0 else f"exit {rc}"
        try:
            ing.result = json.loads(ing.out.read_text()) if rc == 0 else {}
        except ValueError:
            ing.result = {}
        extra = ""
        if ing.result:
            extra = (f": records {ing.result.get('records')}, redelivered {ing.result.get('redelivered')}, "
                     f"workers reachable {ing.result.get('workers_reachable')}/{ing.result.get('workers')}")
        self.say(f"ingest #{ing.n} ended ({ing.ended_by}) after {ing.ended - ing.started:.0f}s{extra}")
        if rc not in (0, -signal.SIGKILL):
            self.notes.append(f"ingest #{ing.n} exited {rc}: {ing.tail(1)}")
            self.say(f"ingest #{ing.n} exited {rc} (log {ing.log}): {ing.tail(1)}")
        prog = self.progress()
        if rc == 0 and prog < self.released:
            excerpt = self.actor_logs(ing)
            self.early_exits.append({"at_s": round(self.now(), 1), "ingest": ing.n, "progress": prog,
                                     "released": self.released, "log_excerpt": excerpt})
            self.say(f"ingest #{ing.n} went idle (exit 0) with {self.released - prog} released candidates without a "
                     f"provenance record; the ends of its actors' logs:\n{excerpt}")
        if rc == 0 and prog == ing.progress_at_start and prog < self.released:
            self.idle_without_progress += 1
        elif prog > ing.progress_at_start:
            self.idle_without_progress = 0

    def sigkill(self, ing: Ingest, why: str) -> None:
        ing.ended_by = why
        with contextlib.suppress(ProcessLookupError):
            os.kill(ing.proc.pid, signal.SIGKILL)
        ing.proc.wait(30)
        self.reap(ing)

    def actors(self, ing: Ingest) -> list[int]:
        """This driver's IngestActor worker processes on the Ray head (started after the driver)."""
        out = []
        driver_start = _start_ticks(ing.proc.pid)
        for pid in self.stack.ray.processes():
            try:
                if "IngestAct" in Path(f"/proc/{pid}/comm").read_text() and _start_ticks(pid) >= driver_start:
                    out.append(pid)
            except OSError:
                continue
        ing.actor_pids.update(out)
        return sorted(out)

    def actor_logs(self, ing: Ingest, lines: int = 12) -> str:
        """The last lines of each of the driver's actors' logs (Ray keeps them in its session folder), without
        kafka-python's connection chatter."""
        out = []
        for pid in sorted(ing.actor_pids):
            for path in sorted(self.home.glob(f"cray-*/session_latest/logs/worker-*-{pid}.err")):
                keep = [ln for ln in path.read_text(errors="replace").splitlines()
                        if ln.strip() and not any(n in ln for n in NOISE)]
                out.append(f"--- {path}\n" + "\n".join(ln[:300] for ln in keep[-lines:]))
        return "\n".join(out)

    def actor_log_counts(self) -> dict[str, int]:
        """Events every actor logged over the run (Ray's session folders)."""
        counts = {"circuit": 0, "replaced": 0}
        for path in self.home.glob("cray-*/session_2*/logs/worker-*.err"):
            text = path.read_text(errors="replace")
            counts["circuit"] += text.count("left for redelivery): pausing consumption")
            counts["replaced"] += text.count("replacing it with a new group member")
        return counts

    def group_state(self) -> str:
        """The broker's view of the ingest consumer group: tansu keeps it in its S3 bucket (best effort)."""
        from consentry import wiring
        from consentry.infra.stack import TANSU_BUCKET

        group = self.s.kafka_consumer_group
        try:
            store = wiring.object_store(self.s.model_copy(update={"s3_bucket": TANSU_BUCKET}))
            st = json.loads(store.get(f"clusters/tansu_cluster/groups/consumers/{group}.json"))
        except Exception as exc:
            return f"(tansu's state of group {group} not readable: {type(exc).__name__})"
        members = sorted(st.get("members", {}))
        state = st.get("state", {})
        name = next(iter(state), "?") if isinstance(state, dict) else str(state)
        leader = state.get(name, {}).get("leader") if isinstance(state, dict) else None
        return (f"tansu's state of group {group}: {name}, generation {st.get('generation_id')}, leader {leader} "
                f"({'a member' if leader in members else 'NOT a member'}), members {members}")

    def stalled(self, ing: Ingest, what: str) -> None:
        """Record and print a stall of ``ing`` (its own log, its actors' logs, the group's state), then SIGKILL it."""
        self.actors(ing)
        excerpt = f"{ing.tail(3)}\n{self.actor_logs(ing)}\n{self.group_state()}"
        self.stalls.append({"at_s": round(self.now(), 1), "progress": self.progress(), "ingest": ing.n,
                            "what": what, "log": str(ing.log), "log_excerpt": excerpt})
        self.say(f"STALL: {what} (ingest #{ing.n}, log {ing.log}); the ends of its log and its actors' logs:\n"
                 f"{excerpt}\nSIGKILLing it")
        self.sigkill(ing, "stall")
        self.stalls_in_a_row += 1

    # ------------------------------------------------------------------------------------- the watch
    def tick(self) -> int:
        """Housekeeping, about once a second: an ingest process running (started again when it exits), the Ray
        head up, stalls caught. Returns the progress."""
        prog = self.progress()
        if self.stack.ray.proc.pid() is None:
            self.ray_head_restarts += 1
            self.say(f"the Ray head is gone (log {self.stack.ray.proc.log_file}); starting it again")
            self.restart("ray")
        cur = self.current
        if cur is not None and cur.poll() is not None:
            self.reap(cur)
        if self.keep_ingesting and self.running() is None:
            if self.idle_without_progress >= 3:
                raise GiveUp(f"ingest went idle {self.idle_without_progress} times in a row with "
                             f"{self.released - prog} released candidates without a provenance record")
            self.start_ingest()
        ing = self.running()
        if ing is not None:
            self.actors(ing)
        if ing is not None and prog < self.released and time.monotonic() - self._last_change > self.args.stall_s:
            self.stalled(ing, f"no progress for {self.args.stall_s:.0f}s at {prog}/{self.released} released")
            self._last_change = time.monotonic()
            if self.stalls_in_a_row >= 2:
                raise GiveUp(f"a new ingest process stalled too ({self.stalls_in_a_row} stalls, no progress between)")
        if time.monotonic() > self.deadline:
            raise GiveUp(f"--timeout {self.args.timeout:.0f}s reached at {prog}/{self.total}")
        return prog

    def wait_for(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            self.tick()
            if done():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)

    # ------------------------------------------------------------------------------------- faults
    def schedule(self, rng: random.Random) -> None:
        kinds = list(KINDS) + [rng.choice(KINDS) for _ in range(max(0, self.args.faults - len(KINDS)))]
        rng.shuffle(kinds)
        for k, kind in enumerate(kinds):
            lo, hi = DOWN_S.get(kind, (0.0, 0.0))
            self.faults.append(Fault(k + 1, kind, round(rng.uniform(lo, hi), 1), rng.randrange(WORKERS)))

    def restart(self, name: str) -> None:
        """Start a stack service again (a start can fail on a busy machine, e.g. SeaweedFS's leveldb lock
        while the old process is still exiting): three tries."""
        self.three_tries(lambda: self.stack.start_service(name),
                         lambda exc: f"{name} did not start ({str(exc).splitlines()[0]})")

    def three_tries(self, action: Callable[[], None], failed: Callable[[Exception], str]) -> None:
        """``action``, tried again after 5 s and 10 s; the third failure is raised."""
        for attempt in range(1, 4):
            try:
                action()
                return
            except Exception as exc:
                if attempt == 3:
                    raise
                self.say(f"{failed(exc)}; trying again")
                time.sleep(5.0 * attempt)

    def inject(self, f: Fault, wave: int) -> None:
        """Fault ``f`` while the site holds the images of ``wave`` (released once the fault has begun)."""
        f.at_s, f.progress = self.now(), self.progress()
        f.in_flight, f.held = self.published - f.progress, self.held(wave)
        self.say(f"fault {f.n}/{len(self.faults)}: {f.kind} (progress {f.progress}/{self.total}, "
                 f"{f.in_flight} published and not done, {f.held} image requests held)")
        t = time.monotonic()
        if f.kind in ("s3-outage", "broker-restart", "milvus-restart"):
            service = {"s3-outage": "seaweedfs", "broker-restart": "tansu", "milvus-restart": "milvus"}[f.kind]
            self.stack.stop_service(service, timeout_s=3 if service == "tansu" else 60)
            stopped = time.monotonic() - t
            self.site.release(wave)  # the held records meet the outage
            time.sleep(f.down_s)
            self.restart(service)
            f.detail = (f"{service} stopped in {stopped:.1f}s, down {f.down_s:.1f}s more, started again "
                        f"({time.monotonic() - t:.1f}s in all)")
            f.injected = True
        elif f.kind == "milvus-crash":
            self.site.release(wave)  # writes resume ...
            before = self.progress()
            writing = self.wait_for(lambda: self.progress() > before, 120)  # ... and are going on
            pid = self.stack.procs["milvus"].pid()
            t = time.monotonic()
            self.stack.procs["milvus"].stop(signal.SIGKILL, 10)
            time.sleep(f.down_s)
            self.restart("milvus")
            f.detail = (f"milvus-lite (pid {pid}) SIGKILLed at progress {self._progress}"
                        f"{'' if writing else ' (no write seen for 120s before it)'}, started again after "
                        f"{time.monotonic() - t:.1f}s")
            f.injected = True
        elif f.kind in ("ingest-sigkill", "ray-actor-kill"):
            ing = self.running()
            pids = self.actors(ing) if ing is not None else []
            if ing is None or not pids:
                f.detail = "no ingest driver with actors running"
            elif f.kind == "ingest-sigkill":
                self.sigkill(ing, f"fault {f.n} (ingest-sigkill)")
                f.detail = f"ingest #{ing.n} (pid {ing.proc.pid}; actors {pids}) SIGKILLed"
                f.injected = True
            else:
                pid = pids[f.pick % len(pids)]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                f.detail = f"IngestActor pid {pid} of ingest #{ing.n} SIGKILLed (its actors: {pids})"
                f.injected = True
            self.site.release(wave)
        self.site.release(wave)
        f.took_s = time.monotonic() - t
        f.ended_at = self.now()
        if not f.injected:
            self.failed_injections.append(f"{f.kind}: {f.detail}")
        self.say(f"fault {f.n} {'done' if f.injected else 'NOT injected'}: {f.detail}")

    # ------------------------------------------------------------------------------------- the run
    def run(self) -> None:
        """Wave k is published, its images held; fault k when its records are being fetched; release; wait
        until progress resumes; the next wave. After the last fault, the last wave, released."""
        try:
            self.publish()
            self.start_ingest()
            for k, f in enumerate(self.faults, 1):
                if not self.wait_held(k, min(HELD, self.wave_sizes[k - 1])):
                    self.notes.append(f"fault {f.n}: no image request of its wave within 300s")
                self.inject(f, k)
                after = self.progress()
                self._last_change = time.monotonic()  # the fault's own time is not a stall
                if self.wait_for(lambda: self.progress() > after or after >= self.released,  # noqa: B023
                                 2 * self.args.stall_s):
                    f.drained = after >= self.released
                    if not f.drained:
                        f.resumed_after_s = round(self.now() - f.ended_at, 1)
                        self.say(f"progress resumed {f.resumed_after_s:.1f}s after fault {f.n} ({f.kind}): "
                                 f"{self._progress}/{self.total}")
                else:
                    self.notes.append(f"progress never resumed after fault {f.n} ({f.kind})")
                self.publish()
            self.site.release(len(self.wave_sizes))
            self.say(f"wave {len(self.wave_sizes)} released; waiting for every candidate")
            self.wait_for(lambda: self.progress() >= self.total, self.args.timeout)
        except GiveUp as exc:
            self.say(f"giving up: {exc}")
            self.notes.append(str(exc))
        self.site.release(len(self.wave_sizes))
        self.keep_ingesting = False
        ing = self.running()
        if ing is not None:
            self.wait(ing, self.args.stall_s)

    def wait(self, ing: Ingest, timeout_s: float) -> None:
        """Until ``ing`` exits (--until-idle); a stall if it has not after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while ing.poll() is None and time.monotonic() < deadline:
            self.actors(ing)
            time.sleep(1.0)
        if ing.poll() is None:
            self.stalled(ing, f"did not go idle within {timeout_s:.0f}s with nothing left to ingest")
        self.reap(ing)

    def wait_held(self, wave: int, need: int, timeout_s: float = 300.0) -> int:
        """Until the site holds ``need`` image requests of ``wave``, or HELD_SETTLE_S after the first one; returns
        how many it holds."""
        first: float | None = None
        deadline = time.monotonic() + timeout_s
        while True:
            self.tick()
            n = self.held(wave)
            if first is None and n:
                first = time.monotonic()
            if n >= need or (first is not None and time.monotonic() - first >= HELD_SETTLE_S) \
                    or time.monotonic() > deadline:
                return n
            time.sleep(0.25)

    def cli(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "consentry.cli.main", *argv], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ))

    def repair(self) -> dict[str, Any]:
        """doctor --repair, a last ingest run for what it re-published, then doctor (check)."""
        out: dict[str, Any] = {}
        doc = self.cli("doctor", "--repair", "--json")
        try:
            rep = json.loads(doc.stdout)
        except ValueError:
            rep = {}
        out["repair_rc"] = doc.returncode
        missing = rep.get("provenance_missing_faces", {})
        out["faces_without_provenance"] = len(rep.get("faces_without_provenance", []))
        out["images_missing_faces"] = len(missing)
        out["faces_missing"] = sum(len(v) for v in missing.values())
        out["repaired"] = rep.get("repaired", {})
        self.say(f"doctor --repair (exit {doc.returncode}): {out['faces_without_provenance']} faces without "
                 f"provenance, {len(missing)} images missing {out['faces_missing']} faces; repaired {out['repaired']}"
                 + (f"; e.g. {sorted(missing)[:3]}" if missing else "")
                 + (f"\n{doc.stderr[-1500:]}" if doc.returncode else ""))
        ing = self.start_ingest()
        self.wait(ing, self.args.stall_s)
        out["final_ingest"] = {"ended_by": ing.ended_by, "records": ing.result.get("records"),
                               "faces": ing.result.get("faces"), "seconds": ing.result.get("seconds")}
        check = self.cli("doctor", "--json")
        try:
            out["doctor_ok"] = bool(json.loads(check.stdout).get("ok")) and check.returncode == 0
        except ValueError:
            out["doctor_ok"] = False
        self.say(f"doctor (check) after the last ingest: {'ok' if out['doctor_ok'] else 'NOT ok'} "
                 f"(exit {check.returncode})" + ("" if out["doctor_ok"] else f"\n{check.stdout[-1500:]}"))
        return out

    # ------------------------------------------------------------------------------------- accounting
    def dead_letters(self) -> list[str]:
        """URLs of every entry on the DLQ topic (read with a group of its own, from the start)."""
        from consentry import wiring
        from consentry.core.records import DeadLetter, ImageCandidate

        consumer = wiring.broker(self.s).consumer(f"soak-audit-{os.getpid()}-{int(time.time())}",
                                                  [self.s.topic_dlq])
        urls: list[str] = []
        start = time.monotonic()
        quiet = 0
        try:
            while time.monotonic() - start < 90:
                msgs = consumer.poll(1.0)
                quiet = 0 if msgs else quiet + 1
                for m in msgs:
                    letter = DeadLetter.from_json(m.value)
                    try:
                        urls.append(ImageCandidate.from_json(letter.payload).url)
                    except Exception:
                        urls.append(f"<unparsable payload at {m.partition}@{m.offset}>")
                if quiet >= 5 and (urls or time.monotonic() - start > 20):
                    break
        finally:
            consumer.close()
        return urls

    def account(self) -> dict[str, Any]:
        from consentry import wiring
        from consentry.core.records import Decision, url_key
        from consentry.core.retry import RetryPolicy

        prov = wiring.provenance(self.s, self.store)
        dlq_urls = self.dead_letters()
        in_dlq = set(dlq_urls)
        by_expected: dict[str, Counter[str]] = {e: Counter() for e in ("indexed", "refused", "dlq")}
        wrong: list[str] = []
        lost: list[str] = []
        face_ids: list[str] = []
        per_photo: dict[str, Counter[int]] = {}
        refusal_reasons: Counter[str] = Counter()
        published = [c for c in self.candidates if c.wave <= self.waves_published]
        for c in published:
            p = prov.get(url_key(c.url))
            if p is None:
                got = "lost"
                lost.append(c.url)
            elif c.url in in_dlq:
                got = "dlq"
            elif p.decision is Decision.INDEX:
                got = "indexed"
            else:
                refusal_reasons[p.reason or "(none)"] += 1
                got = "refused" if p.reason == "noai" else f"refused ({p.reason or 'no reason'})"
            by_expected[c.expected][got] += 1
            if got != c.expected and got != "lost":
                wrong.append(f"{c.url}: expected {c.expected}, got {got}")
            if p is not None and got == "indexed":
                face_ids += p.face_ids
                if c.photo:
                    per_photo.setdefault(c.photo, Counter())[len(p.face_ids)] += 1
        index = wiring.face_index(self.s)
        retry = RetryPolicy(attempts=5, base_delay_s=1.0)
        stored_rows = retry.call(lambda: [r["face_id"] for b in index.store.iterate(index.spec, ["face_id"])
                                          for r in b], "list faces")
        counted = retry.call(index.count, "count faces")
        named, stored = set(face_ids), set(stored_rows)
        inconsistent = {photo: dict(counts) for photo, counts in per_photo.items() if len(counts) > 1}
        requests = self.site.requests()
        n_bad = sum(1 for c in published if c.expected == "dlq")
        t = {
            "candidates": self.total, "published": len(published),
            "expected": {e: sum(1 for c in published if c.expected == e) for e in by_expected},
            "as_expected": {e: by_expected[e][e] for e in by_expected},
            "outcomes": {e: dict(v) for e, v in by_expected.items()},
            "lost": len(lost), "lost_urls": lost[:20],
            "wrong": len(wrong), "wrong_examples": wrong[:20],
            "refusal_reasons": dict(refusal_reasons),
            "dlq_entries": len(dlq_urls), "dlq_distinct": len(in_dlq),
            "dlq_not_expected": len(in_dlq - {c.url for c in published if c.expected == "dlq"}),
            "dlq_expected_missing": n_bad - len(in_dlq & {c.url for c in published if c.expected == "dlq"}),
            "faces_named": len(face_ids), "faces_named_distinct": len(named),
            "faces_named_twice": len(face_ids) - len(named),
            "milvus_rows": len(stored_rows), "milvus_distinct": len(stored), "milvus_count": counted,
            "milvus_duplicate_ids": len(stored_rows) - len(stored),
            "faces_missing_from_milvus": len(named - stored), "faces_in_milvus_unnamed": len(stored - named),
            "faces_per_photo": {photo: max(counts, key=lambda k: counts[k]) for photo, counts in per_photo.items()},
            "photos_with_inconsistent_face_counts": inconsistent,
            "images_fetched_more_than_once": sum(1 for c in published if requests[c.path] >= 2),
            "fetches": sum(requests[c.path] for c in published),
        }
        return t


def _resumed(f: Fault) -> str:
    if f.drained:
        return "(drained)"  # nothing released was left to resume
    return "never" if f.resumed_after_s is None else f"{f.resumed_after_s:.1f}s"


def _start_ticks(pid: int) -> int:
    """When a process started (clock ticks after boot), from /proc/<pid>/stat; 0 if unknown."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def checks(t: dict[str, Any], soak: Soak, repair: dict[str, Any]) -> list[tuple[str, bool]]:
    """What "balanced" means: each of these holds."""
    return [
        ("every candidate was published", t["published"] == t["candidates"]),
        ("every candidate has a provenance record (0 lost)", t["lost"] == 0),
        ("every candidate ended as expected (0 wrong)", t["wrong"] == 0 and t["as_expected"] == t["expected"]),
        ("indexed + refused + DLQ = candidates", sum(t["as_expected"].values()) == t["candidates"]),
        ("the DLQ holds exactly the undecodable candidates", t["dlq_not_expected"] == 0
         and t["dlq_expected_missing"] == 0),
        ("no face id named twice by provenance", t["faces_named_twice"] == 0),
        ("no face id twice in Milvus", t["milvus_duplicate_ids"] == 0 and t["milvus_count"] == t["milvus_distinct"]),
        ("Milvus holds exactly the faces provenance names", t["faces_missing_from_milvus"] == 0
         and t["faces_in_milvus_unnamed"] == 0),
        ("every copy of a photo has the same number of faces", not t["photos_with_inconsistent_face_counts"]),
        ("doctor finds nothing after the repair and the last ingest", bool(repair.get("doctor_ok"))),
        ("no `ingest run --until-idle` went idle with released work left", not soak.early_exits),
        ("no stall", not soak.stalls),
    ]


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000,
                    help="candidates: 80%% photo copies, 10%% noai copies, 10%% undecodable")
    ap.add_argument("--faults", type=int, default=12, help="faults to inject (at least one of each of the 6 kinds)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("CONSENTRY_SOAK_PORT_BASE", "43000")),
                    help="S3 base..base+9, Kafka base+92, Milvus base+540, Ray base+700..base+899")
    ap.add_argument("--model-pack", help="default: the settings' default (buffalo_s)")
    ap.add_argument("--stall-s", type=float, default=180.0,
                    help="no progress for this long with work left (outside a fault) is a stall")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up the fault phase after this long")
    ap.add_argument("--keep", action="store_true", help="keep the state folder (always kept when not balanced)")
    report.add_args(ap)
    args = ap.parse_args()
    if args.images < 10:
        ap.error("--images must be at least 10")
    rng = random.Random(args.seed)

    # hold the port range the way the test suite does (tests/conftest.py): a test run will not pick it meanwhile
    lock = open(Path(tempfile.gettempdir()) / f"consentry-test-ports-{args.port_base}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"soak: ports from {args.port_base} are held by a test run or another soak; pass --port-base",
              file=sys.stderr)
        return 1

    from consentry.core.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="soak.", dir="/tmp"))
    pack = args.model_pack or Settings.model_fields["model_pack"].default
    for k in ("CONSENTRY_CONFIG", "CONSENTRY_MODEL_PACK", "RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH",
              "RAY_AUTH_TOKEN", "CONSENTRY_RAY_ADDRESS"):
        os.environ.pop(k, None)
    os.environ.update(stack_env(home, args.port_base, CONSENTRY_STACK_RAY="true", CONSENTRY_TOPIC_PREFIX="soak.",
                                CONSENTRY_MODEL_PACK=pack, RAY_TMPDIR=str(home),
                                # the site holds a wave's images until its fault has begun (up to ~40 s)
                                CONSENTRY_FETCH_TIMEOUT_S="120"))

    import pymilvus  # noqa: F401  (it configures its loggers when imported)

    from consentry.core.errors import StackError
    from consentry.core.settings import load_settings
    from consentry.demo.photos import cache_dir, ensure_photos
    from consentry.infra.stack import Stack

    # pymilvus logs a traceback (WARNING) each time this process's own Milvus client reconnects after a restart
    logging.getLogger("pymilvus").setLevel(logging.ERROR)

    def on_term(_signum: int, _frame: Any) -> None:
        raise Stop()

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C stops the soak even when it was started with SIGINT ignored (a background job), and the servers it
    # starts then get the default SIGINT, on which `consentry stack down` stops milvus-lite (it flushes)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = Stack(load_settings())
    site = Site(home / "site")
    soak: Soak | None = None
    rc = 1
    balanced = False
    print(f"soak: {args.images} candidates, {max(args.faults, len(KINDS))} faults, seed {args.seed}, model pack "
          f"{pack}, state in {home}", flush=True)
    try:
        photos = ensure_photos()
        t = time.monotonic()
        for attempt in range(1, 4):  # the ports are inside Linux's ephemeral range: a client socket may hold one
            try:
                stack.up("embedded")
                break
            except StackError as exc:
                if "already in use" not in str(exc) or attempt == 3:
                    raise
                print(f"soak: {exc}; trying again in 10s", flush=True)
                time.sleep(10)
        site.start()
        s = load_settings()  # with the stack's generated S3 credentials
        soak = Soak(args, home, stack, site, s)
        soak.say(f"stack up (SeaweedFS, tansu, milvus-lite, Ray head) in {time.monotonic() - t:.0f}s; photos from "
                 f"{cache_dir()}")
        from consentry.wiring import prepare_ingest

        prepare_ingest(s)  # topics, bucket, collections: as `ingest run` does
        soak.schedule(rng)
        soak.prepare(photos, rng, waves=len(soak.faults) + 1)
        soak.say("fault schedule: " + ", ".join(f"{f.n}:{f.kind}" for f in soak.faults))
        soak.run()
        repair = soak.repair()
        totals = soak.account()
        requests = site.requests()
        for f in soak.faults:
            f.fetched_again = sum(1 for c in soak.candidates if c.wave == f.n and requests[c.path] >= 2)
        elapsed = soak.now()
        injected = Counter(f.kind for f in soak.faults if f.injected)
        missing_kinds = [k for k in KINDS if not injected[k]]
        ok = checks(totals, soak, repair)
        balanced = all(v for _, v in ok)
        redelivered = sum(int(i.result.get("redelivered") or 0) for i in soak.ingests)
        events = soak.actor_log_counts()
        exits = Counter(i.ended_by for i in soak.ingests)
        rows: list[tuple[str, Any]] = [("candidates (published)", f"{totals['candidates']} ({totals['published']})")]
        for e, label in (("indexed", "good copies indexed"), ("refused", "noai copies refused (reason noai)"),
                         ("dlq", "undecodable in the DLQ")):
            rows.append((label, f"{totals['as_expected'][e]} of {totals['expected'][e]}"))
        rows += [
            ("indexed + refused + DLQ", sum(totals["as_expected"].values())),
            ("lost or never processed (no provenance record)", totals["lost"]),
            ("wrong outcome", totals["wrong"]),
            ("DLQ entries (distinct URLs)", f"{totals['dlq_entries']} ({totals['dlq_distinct']})"),
            ("faces named by provenance (distinct)", f"{totals['faces_named']} ({totals['faces_named_distinct']})"),
            ("faces in Milvus (distinct)", f"{totals['milvus_rows']} ({totals['milvus_distinct']})"),
            ("faces missing from Milvus / unnamed in Milvus",
             f"{totals['faces_missing_from_milvus']} / {totals['faces_in_milvus_unnamed']}"),
            ("duplicate face ids (provenance / Milvus)",
             f"{totals['faces_named_twice']} / {totals['milvus_duplicate_ids']}"),
            ("faces per photo", ", ".join(f"{p} {n}" for p, n in sorted(totals["faces_per_photo"].items()))),
            ("copies with another face count", sum(sum(c.values()) - max(c.values()) for c in
                                                   totals["photos_with_inconsistent_face_counts"].values())),
            ("faults injected", f"{sum(injected.values())} of {len(soak.faults)}"),
            *[(f"  {k}", injected[k]) for k in KINDS],
            ("doctor --repair: images re-published",
             f"{repair['repaired'].get('images_republished', 0)} ({repair['faces_missing']} faces missing)"),
            ("doctor after the last ingest", "ok" if repair.get("doctor_ok") else "NOT ok"),
            ("ingest processes started", len(soak.ingests)),
            ("  how they ended", ", ".join(f"{k} x{v}" for k, v in sorted(exits.items()))),
            ("redeliveries (reported by runs that exited)", redelivered),
            ("circuit opened, records left for redelivery (actor logs)", events["circuit"]),
            ("group members replaced, unsettled 60 s (actor logs)", events["replaced"]),
            ("images fetched more than once", totals["images_fetched_more_than_once"]),
            ("ingest runs idle with released work left", len(soak.early_exits)),
            ("stalls", len(soak.stalls)),
            ("Ray head restarts (not a fault)", soak.ray_head_restarts),
            ("seconds", round(elapsed, 1)),
        ]
        print("\nsoak fault log")
        for f in soak.faults:
            resumed = _resumed(f)
            print(f"  {f.n:>2}  +{f.at_s:6.1f}s  progress {f.progress:>5}/{totals['candidates']}  "
                  f"in flight {f.in_flight:>4}  held {f.held:>2}  {f.kind:<15}  resumed after {resumed:>6}  "
                  f"fetched again {f.fetched_again:>3}  {f.detail}")
        print("\nsoak accounting")
        print(table(rows))
        print("\nchecks")
        print("\n".join(f"  [{'ok' if v else 'FAILED'}] {name}" for name, v in ok))
        if totals["wrong_examples"] or totals["lost_urls"]:
            print("  e.g. " + "\n       ".join(totals["wrong_examples"][:10] + totals["lost_urls"][:10]))
        if soak.failed_injections:
            print("faults not injected: " + "; ".join(soak.failed_injections))
        print(f"\nbalanced: {'yes' if balanced else 'NO'}", flush=True)

        kinds_note = "all 6 kinds" if not missing_kinds else f"missing {', '.join(missing_kinds)}"
        dup = totals["faces_named_twice"] + totals["milvus_duplicate_ids"]
        headline = (f"soak: {totals['candidates']} candidates, {sum(injected.values())} faults ({kinds_note}), "
                    f"{'balanced' if balanced else 'NOT balanced'}, {totals['lost']} lost, {dup} duplicated faces"
                    + ("" if balanced else f" (failed: {'; '.join(name for name, v in ok if not v)})"))
        md = (f"`consentry ingest run --workers {WORKERS} --until-idle` (Ray actors on the stack's Ray head, token "
              f"auth) on the real model pack **{pack}** over distinct-byte copies of the demo photos "
              f"({', '.join(PHOTOS)}; from consentry.demo.photos: face_recognition 1.3.0's sdist, insightface's "
              f"wheel, scikit-image), plus noai-refused copies and undecodable bodies, seed {args.seed}, "
              f"{os.cpu_count()} CPUs. Candidates published in waves, one per fault, the site holding a wave's "
              "images until its fault had begun (fetch timeout 120 s for that); a stall is no progress for "
              f"{args.stall_s:.0f} s with work released, or a last `ingest run` not idle after as long:\n\n"
              "| # | at s | progress | in flight | requests held | fault | progress resumed after | "
              "held images fetched again | what |\n|---|---|---|---|---|---|---|---|---|\n"
              + "".join(f"| {f.n} | {f.at_s:.0f} | {f.progress} | {f.in_flight} | {f.held} | {f.kind} | "
                        f"{_resumed(f)} | "
                        f"{f.fetched_again} | {f.detail} |\n"
                        for f in soak.faults)
              + "\n| accounting | |\n|---|---|\n"
              + "".join(f"| {name.strip()} | {value} |\n" for name, value in rows)
              + "\n" + "".join(f"- [{'x' if v else ' '}] {name}\n" for name, v in ok)
              + f"\n**balanced: {'yes' if balanced else 'NO'}**\n")
        report.write(args, title="Soak with faults", markdown=md, headline=headline, stand_in=None if ":" not in pack
                     else f"model plugin {pack}",
                     data={"totals": totals, "repair": repair, "checks": dict(ok), "balanced": balanced,
                           "faults": [f.__dict__ for f in soak.faults], "failed_injections": soak.failed_injections,
                           "ingests": [{"n": i.n, "started_s": round(i.started, 1), "ended_by": i.ended_by,
                                        "result": i.result} for i in soak.ingests],
                           "stalls": soak.stalls, "early_exits": soak.early_exits, "notes": soak.notes,
                           "actor_log_events": events,
                           "seconds": round(elapsed, 1), "model_pack": pack, "photos": str(cache_dir())})
        rc = 0 if balanced and not missing_kinds else (1 if not balanced else 2)
    except (KeyboardInterrupt, Stop):
        print("\nsoak: interrupted; stopping everything it started", file=sys.stderr, flush=True)
        rc = 130
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"soak: aborted: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleaning up: a second Ctrl-C must not leave servers behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for ing in soak.ingests if soak else []:
            if ing.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(ing.proc.pid, signal.SIGKILL)
                ing.proc.wait(30)
        site.close()
        stack.down()
        if rc == 0 and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"soak: state and logs kept in {home}", file=sys.stderr)
        lock.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
