"""Fault-injection on the real servers; each ends with an exact accounting of every candidate.

The scenarios of issue 9: the broker restarted while ingesting, the S3 server stopped for 20 s
during ingest, Milvus (server mode) restarted during ingest, the whole ingest process SIGKILLed
and restarted. (A Ray worker SIGKILLed mid-batch: tests/ingest/test_ray.py; the broker lost and
the crawler killed mid-crawl: tests/crawler.)
"""

import time

from .conftest import kill


def test_broker_restarted_while_ingesting(fault_stack, run):
    stack, _ = fault_stack
    run.populate()
    run.produce()
    proc = run.ingest()
    run.wait_progress(6, proc)
    stack.stop_service("tansu", timeout_s=3)
    time.sleep(5)
    stack.start_service("tansu")
    run.finish(proc)
    assert run.account() == {"candidates": 32, "indexed": 24, "refused": 4, "dlq": 4, "faces": 24}


def test_s3_stopped_for_20s_during_ingest(fault_stack, run):
    stack, _ = fault_stack
    run.populate()
    run.produce()
    proc = run.ingest()
    run.wait_progress(6, proc)
    stack.stop_service("seaweedfs")
    time.sleep(20)
    assert proc.poll() is None  # still alive, paused, not crashed
    stack.start_service("seaweedfs")
    totals = run.finish(proc)
    assert totals["redelivered"] >= 1  # work was left for redelivery while S3 was away
    assert run.account() == {"candidates": 32, "indexed": 24, "refused": 4, "dlq": 4, "faces": 24}


def test_whole_ingest_process_killed_and_restarted(fault_stack, run):
    run.populate(delay_s=0.3)
    run.produce()
    proc = run.ingest()
    run.wait_progress(5, proc)
    kill(proc)  # SIGKILL: no graceful anything
    done = run.progress()
    assert done < 32
    run.finish(run.ingest())  # a new process resumes from the committed offsets
    assert run.account() == {"candidates": 32, "indexed": 24, "refused": 4, "dlq": 4, "faces": 24}


def test_milvus_server_restarted_during_ingest(fault_stack, run, milvus_server_stack):
    run.env["CONSENTRY_MILVUS_URI"] = milvus_server_stack.s.milvus_uri
    run.settings = run.settings.model_copy(update={"milvus_uri": milvus_server_stack.s.milvus_uri})
    run.populate()
    run.produce()
    proc = run.ingest()
    run.wait_progress(6, proc)
    milvus_server_stack.stop_service("milvus")
    time.sleep(3)
    milvus_server_stack.start_service("milvus")
    run.finish(proc)
    assert run.account() == {"candidates": 32, "indexed": 24, "refused": 4, "dlq": 4, "faces": 24}


def test_embedded_milvus_restarted_during_ingest(fault_stack, run):
    stack, _ = fault_stack
    run.populate()
    run.produce()
    proc = run.ingest()
    run.wait_progress(6, proc)
    stack.stop_service("milvus")
    time.sleep(3)
    stack.start_service("milvus")
    run.finish(proc)
    assert run.account() == {"candidates": 32, "indexed": 24, "refused": 4, "dlq": 4, "faces": 24}
