"""The circuit: consumption pauses while S3 or Milvus is down, resumes when it returns, loses nothing.

The loops are stepped by the test (``WorkerLoop.step``) on an injected clock: no sleeps, no timing."""

import threading

import httpx

from consentry.ingest.circuit import Circuit
from consentry.ingest.health import HealthServer
from consentry.ingest.runner import IdlePolicy, WorkerLoop, all_idle, is_idle, summary

from .rig import make_rig
from .site import Route, noise_image

PNG = {"Content-Type": "image/png"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def steps_until(loop: WorkerLoop, done, stop: threading.Event, limit: int = 2000) -> None:
    for _ in range(limit):
        if done():
            return
        loop.step(stop)
    raise AssertionError(f"not reached in {limit} steps: {loop.status()}")


def test_circuit_probes_with_backoff_until_everything_answers():
    answers = iter([{"s3": False, "milvus": True}, {"s3": False, "milvus": False}, {"s3": True, "milvus": True}])
    c = Circuit(lambda: next(answers), base_delay_s=0.001, max_delay_s=0.002)
    c.open("test")
    assert c.is_open and c.status()["circuit"] == "open"
    assert c.try_close() is False and c.status()["waiting_for"] == ["s3"]
    assert c.try_close() is False and c.status()["waiting_for"] == ["milvus", "s3"]
    assert 0 <= c.delay() <= 0.002
    assert c.try_close() is True
    assert not c.is_open and c.status() == {"circuit": "closed", "waiting_for": [], "circuit_openings": 1}
    stop = threading.Event()
    stop.set()
    c2 = Circuit(lambda: {"s3": False})
    c2.open("x")
    assert c2.wait_closed(stop) is False and c2.is_open


def test_an_open_circuit_says_what_it_waits_for_every_30_s(caplog):
    now = [100.0]
    c = Circuit(lambda: {"s3": False, "kafka": True}, clock=lambda: now[0])
    c.open("test")
    with caplog.at_level("WARNING", logger="consentry.ingest.circuit"):
        for t in (101, 110, 125, 131, 140, 162):
            now[0] = t
            assert c.try_close() is False
    said = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert said == ["circuit open for 1s: still waiting for s3", "circuit open for 31s: still waiting for s3",
                    "circuit open for 62s: still waiting for s3"]


def test_loop_pauses_while_s3_is_down_and_resumes_without_loss(site):
    rig = make_rig(site)
    rig.add_source("family")
    for k in range(3):
        site.routes[f"/{k}.png"] = Route(noise_image(k), headers=PNG)
    rig.store.down = True  # S3 is down from the start: nothing can be written
    rig.produce(*(rig.candidate(f"/{k}.png") for k in range(3)))
    loop = WorkerLoop(rig.worker, clock=Clock(), circuit=Circuit(lambda: {"s3": rig.store.ping()}, 0.0001, 0.0002))
    stop = threading.Event()
    steps_until(loop, lambda: loop.status()["waiting_for"] == ["s3"], stop)  # opened, then probed
    st = loop.status()
    assert st["circuit"] == "open" and st["waiting_for"] == ["s3"]
    assert summary([{**st, "running": True}])["ready"] is False
    with HealthServer("127.0.0.1", 0) as health:  # what `ingest run --http-port` serves, over real HTTP
        health.update(summary([{**st, "running": True}]))
        base = f"http://127.0.0.1:{health.port}"
        assert httpx.get(base + "/healthz").status_code == 200  # alive ...
        r = httpx.get(base + "/readyz")
        assert r.status_code == 503 and r.json()["waiting_for"] == ["s3"] and r.json()["circuits_open"] == 1
    polled = rig.broker.committed["g1"].copy()
    for _ in range(50):  # paused: probing, polling nothing
        loop.step(stop)
    assert loop.status()["stats"]["records"] == 0 and loop.status()["circuit"] == "open"
    assert rig.broker.committed["g1"] == polled
    rig.store.down = False
    steps_until(loop, lambda: loop.status()["stats"]["records"] == 3, stop)
    loop.worker.finish()
    st = loop.status()
    assert st["stats"]["records"] == 3 and st["stats"]["indexed"] == 3 and st["circuit"] == "closed"
    with HealthServer("127.0.0.1", 0) as health:
        health.update(summary([{**st, "running": True}]))  # ready while the loop runs with its circuit closed
        base = f"http://127.0.0.1:{health.port}"
        assert httpx.get(base + "/readyz").status_code == 200
        metrics = httpx.get(base + "/metrics").text
        assert "consentry_ingest_indexed_total 3" in metrics and "consentry_ingest_commit_failures_total 0" in metrics
        assert httpx.get(base + "/nope").status_code == 404
    assert st["circuit_openings"] == 1
    assert all(rig.prov(f"/{k}.png") is not None for k in range(3))
    assert rig.index.count() == 3 and rig.dead_letters() == [] and rig.committed() == 3


def test_an_unsettled_consumer_is_never_idle(site):
    """While the group rejoins (kafka-python polls nothing then), the loop waits instead of counting idle time."""
    rig = make_rig(site)
    settled = {"now": False}
    rig.worker.consumer.settled = lambda: settled["now"]
    clock = Clock()
    loop = WorkerLoop(rig.worker, clock=clock)
    loop.running = True
    stop = threading.Event()
    policy = IdlePolicy(idle_seconds=0.6)
    for _ in range(5):
        loop.step(stop)
        clock.now += 0.5
    st = loop.status()
    assert st["settled"] is False and st["idle_s"] <= 0.5 and not is_idle(st, policy)
    settled["now"] = True
    for _ in range(5):
        loop.step(stop)
        clock.now += 0.5
    st = loop.status()
    assert st["settled"] is True and st["idle_s"] >= 0.6 and is_idle(st, policy)


def test_a_group_in_which_no_member_holds_a_partition_is_not_idle():
    """Seen on tansu after an S3 outage: every member got an empty assignment (no partition metadata); the run
    must wait for the partitions, not stop with the topic undrained."""
    policy = IdlePolicy(idle_seconds=1.0, join_grace_s=1.0)
    quiet = {"running": True, "circuit": "closed", "broker_ok": True, "busy": False, "idle_s": 5.0, "uptime_s": 60.0}
    assert all_idle([{**quiet, "assigned": 2}, {**quiet, "assigned": 0}], policy)  # more workers than partitions
    assert not all_idle([{**quiet, "assigned": 0}, {**quiet, "assigned": 0}], policy)
    assert not all_idle([{**quiet, "assigned": 2}, None], policy)  # a worker that does not answer
