"""The circuit: consumption pauses while S3 or Milvus is down, resumes when it returns, loses nothing."""

import threading
import time

import httpx

from consentry.ingest.circuit import Circuit
from consentry.ingest.health import HealthServer
from consentry.ingest.runner import IdlePolicy, WorkerLoop, is_idle, summary

from .rig import make_rig
from .site import Route, noise_image

PNG = {"Content-Type": "image/png"}


def test_circuit_probes_with_backoff_until_everything_answers():
    answers = iter([{"s3": False, "milvus": True}, {"s3": False, "milvus": False}, {"s3": True, "milvus": True}])
    c = Circuit(lambda: next(answers), base_delay_s=0.001, max_delay_s=0.002)
    c.open("test")
    assert c.is_open and c.status()["circuit"] == "open"
    assert c.wait_closed(threading.Event()) is True
    assert not c.is_open and c.status() == {"circuit": "closed", "waiting_for": [], "circuit_openings": 1}
    stop = threading.Event()
    stop.set()
    c2 = Circuit(lambda: {"s3": False})
    c2.open("x")
    assert c2.wait_closed(stop) is False and c2.is_open


def test_loop_pauses_while_s3_is_down_and_resumes_without_loss(site):
    rig = make_rig(site)
    rig.add_source("family")
    for k in range(3):
        site.routes[f"/{k}.png"] = Route(noise_image(k), headers=PNG)
    rig.store.down = True  # S3 is down from the start: nothing can be written
    rig.produce(*(rig.candidate(f"/{k}.png") for k in range(3)))
    loop = WorkerLoop(rig.worker, circuit=Circuit(lambda: {"s3": rig.store.ping()}, 0.01, 0.05))
    stop = threading.Event()
    t = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while loop.status()["circuit"] != "open" and time.monotonic() < deadline:
        time.sleep(0.02)
    st = loop.status()
    assert st["circuit"] == "open" and st["waiting_for"] == ["s3"]
    assert summary([st])["ready"] is False
    with HealthServer("127.0.0.1", 0) as health:  # what `ingest run --http-port` serves, over real HTTP
        health.update(summary([st]))
        base = f"http://127.0.0.1:{health.port}"
        assert httpx.get(base + "/healthz").status_code == 200  # alive ...
        r = httpx.get(base + "/readyz")
        assert r.status_code == 503 and r.json()["waiting_for"] == ["s3"] and r.json()["circuits_open"] == 1
    polls_before = st["stats"].get("records", 0)
    time.sleep(0.3)
    assert loop.status()["stats"].get("records", 0) == polls_before == 0  # paused: nothing processed, nothing lost
    rig.store.down = False
    deadline = time.monotonic() + 10
    while loop.status()["stats"].get("records", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(10)
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
    assert rig.index.count() == 3 and rig.dead_letters() == []


def test_an_unsettled_consumer_is_never_idle(site):
    """While the group rejoins (kafka-python polls nothing then), the loop waits instead of counting idle time."""
    rig = make_rig(site)
    settled = {"now": False}
    rig.worker.consumer.settled = lambda: settled["now"]
    loop = WorkerLoop(rig.worker)
    stop = threading.Event()
    t = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    t.start()
    try:
        time.sleep(1.0)
        st = loop.status()
        assert st["settled"] is False and st["idle_s"] < 0.6 and not is_idle(st, IdlePolicy(idle_seconds=0.6))
        settled["now"] = True
        time.sleep(1.0)
        st = loop.status()
        assert st["settled"] is True and is_idle(st, IdlePolicy(idle_seconds=0.6))
    finally:
        stop.set()
        t.join(10)
