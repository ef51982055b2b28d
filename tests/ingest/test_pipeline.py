"""The pipelined worker's offset rules, on the in-memory fakes: batches overlap (prepare N+1 | faces N |
writes N-1), offsets are committed in order only after the writes, a rewind discards what later batches of
the same partition did meanwhile, in-flight bytes stay bounded, and a graceful stop commits what it can."""

from __future__ import annotations

import threading

from consentry.core.errors import ObjectStoreError
from consentry.core.records import Decision
from consentry.ingest.offsets import plan
from consentry.ingest.outcomes import Transient, Written
from tests.fakes import MemoryObjectStore

from .rig import make_rig
from .site import Route, noise_image

PNG = {"Content-Type": "image/png"}


class HeldStore(MemoryObjectStore):
    """Provenance puts wait for ``release``; the put of ``fail_key`` fails ``fail_times`` times (S3 outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.release.set()
        self.fail_key: str | None = None
        self.fail_times = 0

    def put(self, key, data, content_type="application/octet-stream", metadata=None, tags=None):
        if key.startswith("provenance/"):
            self.release.wait(30)
            if self.fail_key and self.fail_key in key and self.fail_times > 0:
                self.fail_times -= 1
                raise ObjectStoreError("S3 down for this write (test)", transient=True)
        super().put(key, data, content_type, metadata, tags)


def _images(rig, site, n: int, seed: int = 300, size: int = 96) -> list:
    cands = []
    for k in range(n):
        site.routes[f"/{k}.png"] = Route(noise_image(seed + k, size=size), headers=PNG)
        cands.append(rig.candidate(f"/{k}.png"))
    rig.produce(*cands)
    return cands


def _watch_commits(rig) -> list[dict]:
    seen: list[dict] = []
    real = rig.worker.consumer.commit

    def commit(offsets):
        seen.append(dict(offsets))
        real(offsets)

    rig.worker.consumer.commit = commit
    return seen


def test_a_rewind_discards_what_later_batches_of_the_partition_did_and_redelivers_exactly(site):
    store = HeldStore()
    rig = make_rig(site, partitions=1, store=store, max_poll_records=2, max_in_flight=3)
    rig.add_source("family")
    cands = _images(rig, site, 8)
    store.fail_key, store.fail_times = cands[1].key, 3  # the second record's provenance put fails past its retries
    commits = _watch_commits(rig)
    store.release.clear()  # batch 1 waits in its writes ...
    w = rig.worker
    while w.in_flight < 3:  # ... while batch 2 is in the faces stage and batch 3 is being prepared
        w.pump()
    assert w.in_flight == 3 and w.rewinds.snapshot() == {}
    store.release.set()
    first = w.pump()
    while w.in_flight:
        first.add(w.pump())
    tp = ("u.images", 0)
    assert first.committed == {tp: 1} and first.redeliver == {tp: 1}  # record 0 committed; rewound to record 1
    assert all(max(c.values()) <= 1 for c in commits)  # batches 2 and 3 committed nothing past the rewound record
    assert rig.worker.stats.snapshot()["records"] == 1  # their writes were discarded, not counted
    assert w.pump().polled == 2  # the consumer really was rewound: records 1 and 2 come again
    while rig.committed() < 8:
        w.pump()
    w.finish()
    assert [max(c.values()) for c in commits] == sorted(max(c.values()) for c in commits)  # in order
    assert rig.committed() == 8 and rig.worker.stats.snapshot()["records"] == 8  # each counted once
    assert all(rig.prov(f"/{k}.png").decision is Decision.INDEX for k in range(8))
    assert rig.index.count() == 8
    assert site.requests.count("/1.png") == 2 and site.requests.count("/0.png") == 1  # exactly the rewound ones


def test_stages_overlap_and_a_graceful_stop_commits_the_batches_in_flight(site):
    rig = make_rig(site, partitions=1, max_poll_records=2, max_in_flight=3)
    rig.add_source("family")
    _images(rig, site, 6, seed=400)
    w = rig.worker
    while w.in_flight < 3:
        w.pump()  # three batches between poll and commit
    out = w.finish()
    assert out.records == 6 and out.committed == {("u.images", 0): 6} and w.in_flight == 0
    assert rig.committed() == 6 and rig.index.count() == 6


def test_in_flight_image_bytes_stay_bounded(site):
    size = 400  # 400x400 noise PNGs: ~480 kB bodies, 3 x 160k = 0.48 MB of pixels held per image
    limit = 2 * 1024 * 1024
    rig = make_rig(site, partitions=1, max_poll_records=4, max_in_flight=3, max_in_flight_bytes=limit,
                   max_bytes=8 << 20)
    rig.add_source("family")
    cands = _images(rig, site, 16, seed=500, size=size)
    w = rig.worker
    while rig.committed() < len(cands):
        w.pump()
    w.finish()
    per_image = len(noise_image(500, size=size)) + 3 * size * size
    assert w.budget.used == 0
    assert w.budget.peak <= limit + 4 * per_image  # the limit plus at most the oldest batch
    assert w.budget.peak < 12 * per_image  # three full batches were never held at once
    assert rig.index.count() == 16


def test_offset_plan_is_per_partition_in_order_and_stops_at_the_first_transient():
    from consentry.clients.broker import Message

    def m(p, o):
        return Message("t", p, o, None, b"")

    results = [Written(m(0, 5), "index", "allowed"), Transient(m(0, 6), "ingest.write"),
               Written(m(0, 7), "index", "allowed"), Written(m(1, 3), "refuse", "noai"),
               Written(m(1, 2), "dead-letter", "http-404")]
    p = plan(results)
    assert p.commit == {("t", 0): 6, ("t", 1): 4} and p.rewind == {("t", 0): 6}
    assert [w.msg.offset for w in p.done] == [5, 2, 3]
    later = plan([Written(m(0, 8), "index", "allowed"), Written(m(1, 4), "index", "allowed")],
                 rewound={("t", 0): 6})
    assert later.commit == {("t", 1): 5} and later.rewind == {}  # partition 0's results are discarded
