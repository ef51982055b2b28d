"""The operations view: ingest counters read from a real ingest health server, the DLQ counted on the real
broker, and the operator-only API endpoints the console's page is built from."""

from __future__ import annotations

import socket
import uuid

from consentry.clients.broker import KafkaConfig
from consentry.clients.topiccount import TopicCounter
from consentry.core.records import DeadLetter
from consentry.indexer.operations import OperationsView, dead_letter_kind, parse_ingest_metrics
from consentry.ingest.health import HealthServer, prometheus_text

from .memory import memory_console

STATS = {"records": 12, "fetched": 10, "indexed": 7, "faces": 15, "refused": 3, "dlq": 2, "redelivered": 1,
         "commit_failures": 0, "refused_by_reason": {"noai": 2, "suppressed": 1},
         "errors_by_class": {"FetchError": 2}, "workers": 2, "workers_reachable": 2, "ready": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ingest_metrics_text_round_trips():
    got = parse_ingest_metrics(prometheus_text(STATS))
    assert {k: got[k] for k in ("records", "fetched", "indexed", "faces", "refused", "dlq", "redelivered")} == \
        {k: STATS[k] for k in ("records", "fetched", "indexed", "faces", "refused", "dlq", "redelivered")}
    assert got["refused_by_reason"] == STATS["refused_by_reason"] and got["errors_by_class"] == {"FetchError": 2}
    assert got["ready"] == 1 and got["workers"] == 2


def test_counters_are_summed_over_ingest_drivers_and_an_unreachable_one_is_named():
    mc = memory_console()
    with HealthServer("127.0.0.1", 0) as a, HealthServer("127.0.0.1", 0) as b:
        a.update(STATS)
        b.update({**STATS, "records": 5, "refused_by_reason": {"noai": 1}})
        down = f"http://127.0.0.1:{_free_port()}/metrics"
        ops = OperationsView(mc.app.state.operations.sources, mc.app.state.operations.jobs,
                             [f"http://127.0.0.1:{a.port}/metrics", f"http://127.0.0.1:{b.port}/metrics", down])
        out = ops.ingest()
    assert out["totals"]["records"] == 17 and out["totals"]["refused_by_reason"] == {"noai": 3, "suppressed": 1}
    assert [e["ok"] for e in out["endpoints"]] == [True, True, False] and "ConnectError" in out["endpoints"][2]["error"]
    assert out["dlq"] is None


def test_the_dlq_is_counted_by_reading_it_and_only_new_records_are_read_again(broker, settings):
    topic = f"dlq-{uuid.uuid4().hex[:8]}"
    broker.ensure_topics([topic])
    p = broker.producer()

    def send(n: int, stage: str, reason: str) -> None:
        for i in range(n):
            d = DeadLetter(stage=stage, error_class="FetchError", reason=reason, message="m", payload="{}")
            p.send(topic, f"{stage}{i}".encode(), d.to_json())
        p.flush()

    send(3, "ingest.fetch", "http-404")
    send(2, "ingest.decode", "truncated")
    p.send(topic, b"junk", b"not a dead letter")
    p.flush()
    counter = TopicCounter(KafkaConfig.from_settings(settings), topic, dead_letter_kind)
    try:
        first = counter.refresh(budget_s=15)
        assert first.error is None and first.caught_up and first.total == 6, first
        assert first.by_kind == {"ingest.fetch/http-404": 3, "ingest.decode/truncated": 2, "unreadable": 1}
        send(1, "ingest.fetch", "http-404")
        again = counter.refresh(budget_s=15)
        assert again.total == 7 and again.by_kind["ingest.fetch/http-404"] == 4
    finally:
        counter.close()
        p.close()


def test_an_unreachable_broker_is_reported_not_raised():
    cfg = KafkaConfig(bootstrap=f"127.0.0.1:{_free_port()}", request_timeout_ms=2000)
    got = TopicCounter(cfg, "x.dlq").refresh(budget_s=1)
    assert got.error and got.total == 0 and not got.caught_up


def test_operations_endpoints_are_for_operators_only():
    mc = memory_console()
    from consentry.core.records import Basis, Source

    mc.app.state.operations.sources.put(Source(id="family", match="http://photos.test/", basis=Basis.CONSENT))
    op = mc.api("operator")
    assert [s["id"] for s in op.get("/v1/sources").json()] == ["family"]
    assert op.get("/v1/jobs").json() == []
    assert op.get("/v1/ingest").json() == {"endpoints": [], "totals": {"refused_by_reason": {}, "errors_by_class": {}},
                                           "dlq": None}
    for role in ("searcher", "auditor", "privacy"):
        for path in ("/v1/sources", "/v1/jobs", "/v1/ingest"):
            assert mc.api(role).get(path).status_code == 403, (role, path)
    assert mc.browser().get("/v1/sources").status_code == 401
