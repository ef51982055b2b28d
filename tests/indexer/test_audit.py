import json
import threading

import pytest

from consentry.core.errors import AuditTampered
from consentry.indexer.audit import AuditLog
from tests.fakes import MemoryObjectStore


@pytest.fixture(params=["s3", "memory"])
def log(request):
    if request.param == "memory":
        return AuditLog(MemoryObjectStore())
    store = request.getfixturevalue("object_store")
    for k in list(store.list("audit/")):
        store.delete(k)
    return AuditLog(store)


def test_chain_appends_and_verifies(log):
    for i in range(5):
        log.append("search", "alice", purpose="case work", result_face_ids=[f"f{i}"])
    rep = log.verify()
    assert rep.ok and rep.entries == 5
    entries = list(log.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(entries[i]["prev"] == entries[i - 1]["hash"] for i in range(1, 5))


def test_edited_entry_is_named(log):
    for i in range(4):
        log.append("search", "alice", n=i)
    e = json.loads(log.store.get(log.key(3)))
    e["details"]["n"] = 99
    log.store.put(log.key(3), json.dumps(e).encode())
    rep = log.verify()
    assert not rep.ok and rep.entry == 3 and "modified" in rep.problem
    with pytest.raises(AuditTampered) as ei:
        log.check()
    assert ei.value.entry == 3


def test_removed_and_reordered_entries_detected(log):
    for i in range(4):
        log.append("erasure", "privacy-bot", n=i)
    two, three = log.store.get(log.key(2)), log.store.get(log.key(3))
    log.store.put(log.key(2), three)
    log.store.put(log.key(3), two)
    rep = log.verify()
    assert not rep.ok and rep.entry == 2
    log.store.put(log.key(2), two)
    log.store.put(log.key(3), three)
    assert log.verify().ok
    log.store.delete(log.key(2))
    rep = log.verify()
    assert not rep.ok and rep.entry == 2 and "missing" in rep.problem
    log.store.put(log.key(2), two)
    log.store.delete(log.key(4))
    rep = log.verify()
    assert not rep.ok and "removed" in rep.problem


def test_concurrent_writers_never_fork_the_chain(log):
    def writer(name):
        for i in range(5):
            log.append("search", name, n=i)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rep = log.verify()
    assert rep.ok and rep.entries == 15
