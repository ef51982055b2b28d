"""Decision logic and offset-commit rules of IngestWorker, on the in-memory fakes and a real local site."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest

from consentry.core.errors import BrokerError
from consentry.core.records import Basis, Decision, Signal, url_key
from consentry.faces import DetectedFace
from consentry.imaging import decode
from tests.fakes import HashFaceModel

from .rig import DLQ, TOPIC, make_rig
from .site import Route, flat_image, jpeg_with_xmp, noise_image, to_jpeg

PNG = {"Content-Type": "image/png"}


def only_system_keys(store) -> bool:
    """No image bytes kept: only sources, provenance (JSON), and markers (by-bytes index, by source/job)."""
    bad = [k for k in store.objects if not ((k.startswith(("sources/", "provenance/")) and k.endswith(".json"))
                                            or k.startswith(("by-source/", "by-job/"))
                                            or (k.startswith("images/") and store.objects[k][0].isdigit()))]
    assert bad == []
    return True


def test_allowed_image_is_indexed_with_a_full_provenance(site):
    rig = make_rig(site)
    rig.add_source("family", retention_days=30)
    site.routes["/a.png"] = Route(noise_image(1), headers=PNG)
    rig.produce(rig.candidate("/a.png"))
    assert rig.drain() == 1
    prov = rig.prov("/a.png")
    assert prov.decision is Decision.INDEX and prov.reason == "allowed"
    assert prov.http_status == 200 and prov.content_type == "image/png" and prov.bytes == len(noise_image(1))
    assert prov.width == prov.height == 96 and len(prov.sha256) == 64 and len(prov.phash) == 16
    assert {s.name for s in prov.signals} == {"basis", "source-match", "iptc-datamining"}
    assert prov.model_id == "hashface-test" and len(prov.faces) == 1 and prov.duplicate_of is None
    rows = rig.index.get(prov.face_ids)
    assert len(rows) == 1 and rows[0]["url_key"] == prov.key and rows[0]["source_id"] == "family"
    assert rows[0]["expires_at"] - rows[0]["ingested_at"] == 30 * 86400
    assert prov.expires_at - prov.fetched_at < timedelta(days=30, seconds=5)
    assert rig.committed() == 1 and rig.dead_letters() == []
    assert any("ConsentryBot" in ua for ua in site.user_agents)
    assert only_system_keys(rig.store)


@pytest.mark.parametrize("case, reason, fetched", [
    ("basis-none", "basis-none", False),
    ("page-noai", "noai", False),
    ("header-noai", "noai", True),
    ("header-tdm", "tdm-reservation", True),
    ("iptc", "iptc-datamining-prohibited", True),
])
def test_refused_images_keep_no_faces_and_no_bytes(site, case, reason, fetched):
    rig = make_rig(site)
    rig.add_source("family")
    rig.add_source("nobasis", basis=Basis.NONE)
    body = to_jpeg(noise_image(2))
    headers = {"Content-Type": "image/jpeg"}
    source, signals = "family", []
    if case == "basis-none":
        source = "nobasis"
    elif case == "page-noai":
        signals = [Signal(name="meta-robots", value="noai", opt_out=True, scope="page")]
    elif case == "header-noai":
        headers["X-Robots-Tag"] = "noai, noimageai"
    elif case == "header-tdm":
        headers["tdm-reservation"] = "1"
    elif case == "iptc":
        body = jpeg_with_xmp(body)
    site.routes["/r.jpg"] = Route(body, headers=headers)
    rig.produce(rig.candidate("/r.jpg", source=source, signals=signals))
    rig.drain()
    prov = rig.prov("/r.jpg")
    assert prov.decision is Decision.REFUSE and prov.reason == reason
    assert prov.faces == [] and prov.model_id is None
    assert rig.faces_for("/r.jpg") == 0 and rig.index.count() == 0
    assert ("/r.jpg" in site.requests) is fetched  # basis and page opt-outs: never downloaded
    assert only_system_keys(rig.store)
    assert rig.committed() == 1 and rig.dead_letters() == []
    if case.startswith("header"):
        assert prov.sha256 is None  # opted out in the headers: not even decoded
    if case == "iptc":
        assert any(s.name == "iptc-datamining" and s.value == "DMI-PROHIBITED-AIMLTRAINING" for s in prov.signals)


def test_permanent_failures_go_to_the_dlq_with_provenance(site):
    rig = make_rig(site)
    rig.add_source("family")
    site.routes["/ok.png"] = Route(noise_image(3), headers=PNG)
    rig.produce(rig.candidate("/missing.jpg"), rig.candidate("/ok.png", source="nosuchsource"),
                b"{not json", rig.candidate("/ok.png"))
    assert rig.drain() == 4
    dls = {d.reason: d for d in rig.dead_letters()}
    assert set(dls) == {"http-404", "unknown-source", "invalid-record"}
    assert dls["http-404"].stage == "ingest.fetch" and dls["http-404"].error_class == "FetchError"
    assert dls["unknown-source"].stage == "ingest.source"
    assert dls["invalid-record"].stage == "ingest.parse" and dls["invalid-record"].payload == "{not json"
    assert dls["http-404"].topic == TOPIC and dls["http-404"].offset is not None
    assert rig.prov("/missing.jpg").reason == "http-404" and rig.prov("/missing.jpg").http_status == 404
    # the good record after them (same URL, right source) is indexed; its provenance replaced the refusal
    assert rig.prov("/ok.png").decision is Decision.INDEX and rig.faces_for("/ok.png") == 1
    assert rig.committed() == 4
    assert rig.worker.stats.snapshot()["dlq"] == 3


@pytest.mark.parametrize("what", ["vectors", "objects"])
def test_dependency_outage_leaves_offsets_uncommitted_and_redelivers(site, what):
    rig = make_rig(site)
    rig.add_source("family")
    for k in range(4):
        site.routes[f"/{k}.png"] = Route(noise_image(10 + k), headers=PNG)
    rig.produce(*[rig.candidate(f"/{k}.png") for k in range(4)])
    getattr(rig, "vectors" if what == "vectors" else "store").down = True
    out = rig.worker.poll_once()
    msgs = rig.broker.messages(TOPIC)
    first = {}
    for m in msgs:
        first.setdefault((m.topic, m.partition), m.offset)
    assert out.records == 4 and out.committed == {} and out.redeliver == first  # rewound to the first record
    assert rig.committed() == 0 and rig.worker.poll_once().records == 4  # the consumer really was rewound
    getattr(rig, "vectors" if what == "vectors" else "store").down = False
    assert rig.drain() == 4  # redelivered from the uncommitted offsets
    assert rig.committed() == 4
    assert rig.index.count() == 4 and len(list(rig.provenance.keys())) == 4
    assert all(rig.prov(f"/{k}.png").decision is Decision.INDEX for k in range(4))


class FlakyProducer:
    def __init__(self, inner):
        self.inner, self.failing = inner, True

    def send(self, topic, key, value):
        if not self.failing:
            self.inner.send(topic, key, value)

    def flush(self, timeout_s=30.0):
        if self.failing:
            raise BrokerError("broker unreachable (test)")
        self.inner.flush()

    def close(self):
        self.inner.close()


def test_dead_letter_not_flushed_means_not_committed(site):
    rig = make_rig(site)
    rig.add_source("family")
    flaky = FlakyProducer(rig.broker.producer())
    rig.worker.writer.dlq.new_producer = lambda: flaky
    rig.produce(rig.candidate("/missing.jpg"))
    out = rig.worker.poll_once()
    assert out.committed == {} and rig.committed() == 0 and rig.dead_letters() == []
    assert rig.prov("/missing.jpg") is None  # provenance follows the DLQ write
    flaky.failing = False
    rig.drain()
    assert rig.committed() == 1 and len(rig.dead_letters()) == 1 and rig.prov("/missing.jpg") is not None


def test_same_bytes_at_two_urls_are_embedded_once(site):
    class Counting(HashFaceModel):
        calls = 0

        def analyze_batch(self, images):
            Counting.calls += len(images)
            return super().analyze_batch(images)

    rig = make_rig(site, model=Counting())
    rig.add_source("family")
    body = noise_image(5)
    for p in ("/one.png", "/two.png", "/three.png"):
        site.routes[p] = Route(body, headers=PNG)
    rig.produce(rig.candidate("/one.png"), rig.candidate("/two.png"))  # same batch
    rig.drain()
    rig.produce(rig.candidate("/three.png"))  # a later batch
    rig.drain()
    one, two, three = rig.prov("/one.png"), rig.prov("/two.png"), rig.prov("/three.png")
    assert Counting.calls == 1
    assert rig.index.count() == 1
    assert one.face_ids == two.face_ids == three.face_ids and len(one.face_ids) == 1
    # one and two sit on different partitions of one batch: whichever came first is the original
    first, second = (one, two) if one.duplicate_of is None else (two, one)
    assert first.duplicate_of is None and second.duplicate_of == first.url and three.duplicate_of == first.url
    assert one.sha256 == two.sha256 == three.sha256
    assert rig.provenance.image_urls(one.sha256) == [first.key, second.key, three.key]


def test_suppressed_faces_are_not_indexed(site):
    class TwoFaces:
        model_id, dim = "two-faces", 512

        def analyze_batch(self, images):
            out = []
            for img in images:
                faces = []
                for k in range(2):
                    e = np.random.default_rng(int(img[0, 0, 0]) * 10 + k).normal(size=512).astype(np.float32)
                    faces.append(DetectedFace(bbox=(10.0 * k, 0, 10.0 * k + 40, 40), score=0.9,
                                              embedding=e / np.linalg.norm(e)))
                out.append(faces)
            return out

        def analyze(self, img):
            return self.analyze_batch([img])[0]

    model = TwoFaces()
    rig = make_rig(site, model=model)
    rig.add_source("family")
    body_a, body_b = noise_image(6), noise_image(7)
    site.routes["/a.png"] = Route(body_a, headers=PNG)
    site.routes["/b.png"] = Route(body_b, headers=PNG)
    faces_a = model.analyze(decode(body_a).bgr)
    faces_b = model.analyze(decode(body_b).bgr)
    rig.index.suppress([f.embedding for f in faces_a], model.model_id, "req-1")  # both of a's faces
    rig.index.suppress([faces_b[0].embedding], model.model_id, "req-2")  # one of b's
    rig.produce(rig.candidate("/a.png"), rig.candidate("/b.png"))
    rig.drain()
    a, b = rig.prov("/a.png"), rig.prov("/b.png")
    assert a.decision is Decision.REFUSE and a.reason == "suppressed" and a.faces == []
    assert b.decision is Decision.INDEX and len(b.faces) == 1
    assert any(s.name == "suppressed" and s.value == "1 of 2 faces" and not s.opt_out for s in b.signals)
    assert rig.faces_for("/a.png") == 0 and rig.faces_for("/b.png") == 1
    assert rig.worker.stats.snapshot()["refused_by_reason"] == {"suppressed": 1}


def test_replay_changes_nothing(site):
    rig = make_rig(site)
    rig.add_source("family")
    for k in range(3):
        site.routes[f"/{k}.png"] = Route(noise_image(20 + k), headers=PNG)
    site.routes["/flat.png"] = Route(flat_image(), headers=PNG)
    rig.produce(*[rig.candidate(f"/{k}.png") for k in range(3)], rig.candidate("/flat.png"))
    rig.drain()
    before_ids = sorted(rig.vectors.collections["faces"])
    before_keys = sorted(rig.store.objects)
    assert len(before_ids) == 3 and rig.prov("/flat.png").faces == []  # no face: indexed with none
    rig.broker.committed["g1"].clear()  # reset the group: every record is consumed again
    rig.worker.consumer.close()
    assert rig.drain() == 4
    assert sorted(rig.vectors.collections["faces"]) == before_ids
    assert sorted(rig.store.objects) == before_keys


def test_retention_is_capped_and_crops_are_kept_when_enabled(site):
    rig = make_rig(site, store_crops=True, retention_max_days=100)
    rig.add_source("family", retention_days=36500)
    site.routes["/c.png"] = Route(noise_image(9), headers=PNG)
    rig.produce(rig.candidate("/c.png"))
    rig.drain()
    prov = rig.prov("/c.png")
    row = rig.index.get(prov.face_ids)[0]
    assert row["expires_at"] - row["ingested_at"] == 100 * 86400
    crop = rig.store.get(f"crops/{prov.face_ids[0][:2]}/{prov.face_ids[0]}.jpg")
    assert decode(crop).width == decode(crop).height == 112  # the stored crop: 112x112 around the face box


def test_a_slow_site_does_not_reorder_commits(site):
    rig = make_rig(site)
    rig.add_source("family")
    site.routes["/slow.png"] = Route(noise_image(30), headers=PNG, delay_s=0.3)
    site.routes["/fast.png"] = Route(noise_image(31), headers=PNG)
    c1, c2 = rig.candidate("/slow.png"), rig.candidate("/fast.png")
    rig.produce(c1, c2)
    t = time.monotonic()
    rig.drain()
    assert time.monotonic() - t < 5
    msgs = rig.broker.messages(TOPIC)
    committed = rig.broker.committed["g1"]
    for m in msgs:
        assert committed[(m.topic, m.partition)] > m.offset
    assert rig.dead_letters() == [] and rig.broker.messages(DLQ) == []
    assert url_key(c1.url) in set(rig.provenance.keys())


def test_a_person_suppressed_while_the_batch_is_in_flight_is_not_left_indexed(site):
    """Erasure by photo suppresses first, then deletes: the worker re-checks after its upsert."""
    rig = make_rig(site)
    rig.add_source("family")
    body = noise_image(40)
    site.routes["/e.png"] = Route(body, headers=PNG)
    emb = rig.model.analyze(decode(body).bgr)[0].embedding
    stage, real = rig.worker.faces, rig.worker.faces.suppressed
    calls = []

    def suppressed(embeddings):
        out = real(embeddings)
        calls.append(out)
        if len(calls) == 1:  # the eraser runs right after our first check
            rig.index.suppress([emb], rig.model.model_id, "req-race")
        return out

    stage.suppressed = rig.worker.writer.suppressed = suppressed
    rig.produce(rig.candidate("/e.png"))
    rig.drain()
    assert calls == [[False], [True]]
    prov = rig.prov("/e.png")
    assert prov.decision is Decision.REFUSE and prov.reason == "suppressed" and prov.faces == []
    assert rig.index.count() == 0 and rig.committed() == 1


def test_prometheus_counters_are_namespaced_and_counted(site):
    from prometheus_client import REGISTRY

    def val(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (val("consentry_ingest_fetched_total"), val("consentry_ingest_indexed_total"),
              val("consentry_ingest_refused_total", reason="noai"),
              val("consentry_ingest_errors_total", error_class="FetchError"), val("consentry_ingest_faces_total"))
    rig = make_rig(site)
    rig.add_source("family")
    site.routes["/ok.png"] = Route(noise_image(50), headers=PNG)
    site.routes["/no.png"] = Route(noise_image(51), headers={**PNG, "X-Robots-Tag": "noai"})
    rig.produce(rig.candidate("/ok.png"), rig.candidate("/no.png"), rig.candidate("/gone.png"))
    rig.drain()
    after = (val("consentry_ingest_fetched_total"), val("consentry_ingest_indexed_total"),
             val("consentry_ingest_refused_total", reason="noai"),
             val("consentry_ingest_errors_total", error_class="FetchError"), val("consentry_ingest_faces_total"))
    assert [a - b for a, b in zip(after, before)] == [2, 1, 1, 1, 1]
    snap = rig.worker.stats.snapshot()
    assert (snap["records"], snap["fetched"], snap["indexed"], snap["faces"], snap["dlq"]) == (3, 2, 1, 1, 1)
    assert snap["refused_by_reason"] == {"noai": 1} and snap["errors_by_class"] == {"FetchError": 1}


def test_records_of_a_source_erased_in_flight_are_dropped_but_later_crawls_are_not(site):
    from datetime import timedelta

    from consentry.catalog import Tombstones
    from consentry.core.records import utcnow

    rig = make_rig(site, store_crops=True)
    rig.add_source("family")
    site.routes["/old.png"] = Route(noise_image(71), headers=PNG)
    site.routes["/new.png"] = Route(noise_image(72), headers=PNG)
    old = rig.candidate("/old.png").model_copy(update={"discovered_at": utcnow() - timedelta(minutes=5)})
    Tombstones(rig.store).mark("source", "family", utcnow() - timedelta(minutes=1), "er-test")
    new = rig.candidate("/new.png")  # discovered after the erasure: a new crawl, indexed as usual
    rig.produce(old, new)
    assert rig.drain() == 2
    assert rig.prov("/old.png") is None and rig.faces_for("/old.png") == 0  # written, then undone
    assert rig.prov("/new.png").decision.value == "index" and rig.faces_for("/new.png") == 1
    crops = sorted(rig.store.list("crops/"))  # the erased record's crop went with its face
    assert [k.rsplit("/", 1)[-1].removesuffix(".jpg") for k in crops] == rig.prov("/new.png").face_ids
    assert rig.worker.stats.snapshot()["refused_by_reason"] == {"erased": 1}
    assert rig.dead_letters() == []


def test_a_candidate_whose_page_is_outside_its_source_is_never_fetched(site):
    rig = make_rig(site)
    from consentry.catalog.sources import SourceRegistry
    from consentry.core.records import Source

    SourceRegistry(rig.store).put(Source(id="family", match="https://photos.example.org/", basis=Basis.CONSENT))
    site.routes["/x.png"] = Route(noise_image(81), headers=PNG)
    rig.produce(rig.candidate("/x.png"))  # page on 127.0.0.1, source covers photos.example.org
    assert rig.drain() == 1
    p = rig.prov("/x.png")
    assert (p.decision.value, p.reason) == ("refuse", "outside-source") and p.faces == []
    assert "/x.png" not in site.requests


def test_a_failed_commit_is_counted_and_the_durable_writes_stand(site):
    """The broker fails the commit after the writes: nothing is undone, the failure is counted, and
    the records come again (replay is idempotent) until a commit succeeds."""
    rig = make_rig(site)
    rig.add_source("family")
    for k in range(2):
        site.routes[f"/{k}.png"] = Route(noise_image(40 + k), headers=PNG)
    rig.produce(*[rig.candidate(f"/{k}.png") for k in range(2)])
    consumer = rig.worker.consumer
    real_commit = consumer.commit

    def failing_commit(offsets):
        raise BrokerError("commit: coordinator unavailable (simulated)")

    consumer.commit = failing_commit
    out = rig.worker.poll_once()
    assert out.records == 2 and out.committed == {}
    assert rig.worker.stats.snapshot()["commit_failures"] == 1
    assert rig.committed() == 0 and rig.prov("/0.png") is not None and rig.index.count() == 2  # writes stand
    consumer.commit = real_commit
    rig.broker.committed["g1"].clear()
    rig.worker.consumer.close()
    assert rig.drain() == 2 and rig.committed() == 2 and rig.index.count() == 2  # same faces, now committed
