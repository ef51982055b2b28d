"""Fault injection on the real local servers: a stack of this module's own (servers get stopped),
a local image site, and an exact accounting of every candidate at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consentry.catalog import ProvenanceStore, SourceRegistry
from consentry.clients.broker import KafkaBroker, KafkaConfig
from consentry.clients.objectstore import S3Config, S3ObjectStore
from consentry.clients.vectors import MilvusVectorStore
from consentry.core.records import Basis, DeadLetter, Decision, ImageCandidate, Source, url_key
from consentry.core.retry import RetryPolicy
from consentry.core.settings import Settings, load_settings
from consentry.faceindex import FaceIndex, IndexConfig
from consentry.infra.stack import Stack
from tests.conftest import PORT_BASE, stack_env
from tests.ingest.site import Route, Site, noise_image

BASE = PORT_BASE + 3000
PNG = {"Content-Type": "image/png"}


def _explicit(env: dict[str, str]) -> dict[str, str]:
    """CONSENTRY_* variables as Settings keyword arguments (so no fixture has to touch os.environ)."""
    return {k[len("CONSENTRY_"):].lower(): v for k, v in env.items() if k.startswith("CONSENTRY_")
            and k != "CONSENTRY_TEST_PORT_BASE"}


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    """A stack of this module's own; its settings are passed explicitly (os.environ is left alone:
    a module fixture that patched it would undo what the session fixture set after it)."""
    env = {**stack_env(tmp_path_factory.mktemp("faults"), BASE),
           "CONSENTRY_MODEL_PACK": "tests.fakes:HashFaceModel",  # the faults are in the pipeline, not the model
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]),  # where the test model plugin is found
           "CONSENTRY_RETRY_MAX_ATTEMPTS": "3", "CONSENTRY_RETRY_BASE_DELAY_S": "0.2",
           "CONSENTRY_RETRY_MAX_DELAY_S": "1.0", "CONSENTRY_KAFKA_REQUEST_TIMEOUT_MS": "10000",
           "CONSENTRY_FETCH_TIMEOUT_S": "120"}  # images held in flight by the site (up to 60 s) do not time out
    st = Stack(load_settings(**_explicit(env)))
    try:
        st.up("embedded")
        yield st, {**os.environ, **env}
    finally:
        st.down()


@dataclass
class Run:
    """One fault scenario's world: its own topics, collection, bucket prefix-free store and site."""

    env: dict[str, str]
    settings: Settings
    site: Site
    candidates: list[ImageCandidate] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # url -> "indexed" | "refused" | "dlq"
    procs: list[subprocess.Popen] = field(default_factory=list)  # killed at teardown if a test left one running

    @property
    def store(self) -> S3ObjectStore:
        return S3ObjectStore(S3Config.from_settings(self.settings))

    def populate(self, good: int = 24, noai: int = 4, bad: int = 4, delay_s: float = 0.15) -> None:
        self.register_source()
        for k in range(good):
            self.add(f"/good/{k}.png", Route(noise_image(1000 + k), headers=PNG, delay_s=delay_s), "indexed")
        for k in range(noai):
            self.add(f"/noai/{k}.png", Route(noise_image(2000 + k), headers={**PNG, "X-Robots-Tag": "noai"},
                                             delay_s=delay_s), "refused")
        for k in range(bad):
            self.add(f"/bad/{k}.png", Route(b"<html>not an image</html>", headers=PNG, delay_s=delay_s), "dlq")

    def in_order(self, batch: int) -> None:
        """One partition and batches of ``batch`` records: the batches hold the candidates in the order added."""
        self.settings = self.settings.model_copy(update={"kafka_partitions": 1})
        self.env.update({"CONSENTRY_KAFKA_PARTITIONS": "1", "CONSENTRY_KAFKA_MAX_POLL_RECORDS": str(batch)})

    def register_source(self) -> None:
        SourceRegistry(self.store).put(Source(id="fam", match="127.0.0.1", basis=Basis.CONSENT, retention_days=30))

    def add(self, path: str, route: Route, outcome: str) -> None:
        """A candidate served at ``path``, expected to end ``outcome`` (indexed | refused | dlq)."""
        self.site.routes[path] = route
        url = self.site.url(path)
        self.candidates.append(ImageCandidate(url=url, page_url=self.site.url("/"), job_id="job-f", source_id="fam"))
        self.expected[url] = outcome

    def produce(self) -> None:
        b = KafkaBroker(KafkaConfig.from_settings(self.settings))
        b.ensure_topics([self.settings.topic_images, self.settings.topic_dlq])
        p = b.producer()
        for c in self.candidates:
            p.send(self.settings.topic_images, c.key.encode(), c.to_json())
        p.flush()
        p.close()

    def ingest(self, *extra: str, ray: bool = False) -> subprocess.Popen:
        """`consentry ingest run` in a subprocess (threads, or Ray actors on the cluster the environment names);
        its log goes to a file (a pipe could fill and block it)."""
        log = tempfile.NamedTemporaryFile("w+", prefix="ingest-", suffix=".log", delete=False)
        mode = [] if ray else ["--no-ray"]
        proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "-v", "ingest", "run", *mode,
                                 "--until-idle", "--idle-seconds", "6", "--interval", "2", "--json", *extra],
                                env=self.env, stdout=subprocess.PIPE, stderr=log, text=True)
        proc.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        self.procs.append(proc)
        return proc

    def progress(self) -> int:
        """Provenance records written so far (0 while S3 is unreachable)."""
        try:
            return sum(1 for _ in self.store.list("provenance/"))
        except Exception:
            return 0

    def wait_progress(self, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.progress() < n:
            assert proc.poll() is None, Path(proc.log_path).read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, f"no progress to {n} records"
            time.sleep(0.2)

    def wait_request(self, matches, proc: subprocess.Popen, timeout: float = 120) -> None:
        """Until the site has been asked for a path that ``matches``."""
        deadline = time.monotonic() + timeout
        while not any(matches(p) for p in list(self.site.requests) if p in self.site.routes):
            assert proc.poll() is None, Path(proc.log_path).read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "no request for a matching path"
            time.sleep(0.05)

    def wait_log(self, proc: subprocess.Popen, text: str, timeout: float = 180) -> None:
        """Until the ingest process has logged ``text`` (e.g. that it left records for redelivery)."""
        deadline = time.monotonic() + timeout
        while text not in Path(proc.log_path).read_text(errors="replace"):  # type: ignore[attr-defined]
            assert proc.poll() is None, Path(proc.log_path).read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"the ingest process never logged {text!r}"
            time.sleep(0.2)

    def finish(self, proc: subprocess.Popen, timeout: float = 300) -> dict:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            log = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
            tail = "\n".join(line for line in log.splitlines() if "kafka." not in line)[-6000:]
            raise AssertionError(f"ingest still running after {timeout:.0f}s; its log (kafka lines left out):\n"
                                 f"{tail}") from None
        self.log = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
        assert proc.returncode == 0, self.log[-3000:]
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(f"not JSON on stdout: {out[:3000]!r}\n{self.log[-3000:]}") from None

    def account(self) -> dict[str, int]:
        """Every candidate accounted for exactly once: indexed, refused with a reason, or in the DLQ."""
        prov = ProvenanceStore(self.store)
        dlq_keys = set()
        b = KafkaBroker(KafkaConfig.from_settings(self.settings))
        c = b.consumer(f"audit-{uuid.uuid4().hex[:6]}", [self.settings.topic_dlq])
        deadline, quiet = time.monotonic() + 60, 0
        while time.monotonic() < deadline and quiet < 4:
            msgs = c.poll(1.0)
            quiet = 0 if msgs else quiet + 1
            for m in msgs:
                d = DeadLetter.from_json(m.value)
                dlq_keys.add(ImageCandidate.from_json(d.payload).url)
        c.close()
        got: dict[str, str] = {}
        for cand in self.candidates:
            p = prov.get(url_key(cand.url))
            assert p is not None, f"lost: {cand.url}\n{getattr(self, 'log', '')[-6000:]}"
            if cand.url in dlq_keys:
                got[cand.url] = "dlq"
            elif p.decision is Decision.INDEX:
                got[cand.url] = "indexed"
            else:
                assert p.reason, cand.url
                got[cand.url] = "refused"
        assert got == self.expected
        index = FaceIndex(MilvusVectorStore(self.settings.milvus_uri), IndexConfig.from_settings(self.settings))
        faces = RetryPolicy(attempts=5, base_delay_s=1.0).call(index.count, "count faces")
        indexed = [prov.get(url_key(u)) for u, o in self.expected.items() if o == "indexed"]
        face_ids = [f for p in indexed for f in p.face_ids]
        if not len(face_ids) == len(set(face_ids)) == faces:  # no face twice, none missing, none extra
            stored = {r["face_id"] for b in index.store.iterate(index.spec, ["face_id"]) for r in b}
            missing = sorted(set(face_ids) - stored)
            urls = [p.url for p in indexed if set(p.face_ids) & set(missing)]
            raise AssertionError(f"faces: provenance names {len(face_ids)} ({len(set(face_ids))} distinct), "
                                 f"Milvus holds {faces}; missing from Milvus {len(missing)}, "
                                 f"not in provenance {len(stored - set(face_ids))}; missing e.g. "
                                 f"{[(u, url_key(u)) for u in urls[:5]]}")
        table = Counter(got.values())
        totals = {"candidates": len(self.candidates), "indexed": table["indexed"], "refused": table["refused"],
                  "dlq": table["dlq"], "faces": faces}
        assert totals["candidates"] == totals["indexed"] + totals["refused"] + totals["dlq"]
        return totals


@pytest.fixture
def run(fault_stack) -> Iterator[Run]:
    _st, env = fault_stack
    tag = uuid.uuid4().hex[:8]
    env = {**env, "CONSENTRY_TOPIC_PREFIX": f"f{tag}.", "CONSENTRY_MILVUS_COLLECTION": f"faces_{tag}",
           "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": f"supp_{tag}", "CONSENTRY_KAFKA_CONSUMER_GROUP": f"g{tag}",
           "CONSENTRY_S3_BUCKET": f"f-{tag}"}
    s = load_settings(**_explicit(env))
    S3ObjectStore(S3Config.from_settings(s)).ensure_bucket()
    site = Site().start()
    r = Run(env, s, site)
    try:
        yield r
    finally:
        for proc in r.procs:
            if proc.poll() is None:  # a failed test must not leave an ingest process behind
                kill(proc)
        site.close()


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
