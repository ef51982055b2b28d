import json
import threading
import uuid

import pytest

from consentry.core.errors import AuditTampered
from consentry.indexer.audit import HEAD, AuditLog, entry_hash
from consentry.indexer.checkpoints import Checkpoints, DirectorySink, Signer
from tests.fakes import MemoryObjectStore


def checkpoints(path, key=None):
    return Checkpoints(DirectorySink(path), Signer(private=key or Signer.generate()))


@pytest.fixture(params=["s3", "memory"])
def store(request):
    if request.param == "memory":
        return MemoryObjectStore()
    # a bucket of its own: these tests cut and rewrite the log, which must not touch the session's audit log
    # (its checkpoints, under the session's home, would then no longer match it)
    from consentry.clients.objectstore import S3Config, S3ObjectStore

    settings = request.getfixturevalue("settings")
    cfg = S3Config.from_settings(settings.model_copy(update={"s3_bucket": f"audit-{uuid.uuid4().hex[:12]}"}))
    store = S3ObjectStore(cfg)
    store.ensure_bucket()
    return store


@pytest.fixture
def log(store, tmp_path):
    return AuditLog(store, checkpoints=checkpoints(tmp_path / "checkpoints"))


def test_chain_appends_and_verifies(log):
    for i in range(5):
        log.append("search", "alice", purpose="case work", result_face_ids=[f"f{i}"])
    log.flush()
    rep = log.verify()
    assert rep.ok and rep.entries == 5 and rep.checkpoint_seq == 5 and rep.checkpoints.startswith("file://")
    entries = list(log.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(entries[i]["prev"] == entries[i - 1]["hash"] for i in range(1, 5))


def test_edited_entry_is_named(log):
    for i in range(4):
        log.append("search", "alice", n=i)
    log.flush()
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
    log.flush()
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


def test_truncation_with_the_head_hint_is_detected_by_the_signed_checkpoint(log):
    """Deleting the newest entries *and* audit/head.json leaves a valid-looking chain; the checkpoint
    kept outside the bucket says the log went further."""
    for i in range(6):
        log.append("search", "alice", n=i)
    log.flush()
    for seq in (5, 6):
        log.store.delete(log.key(seq))
    log.store.delete(HEAD)
    rep = log.verify()
    assert not rep.ok and rep.entries == 4 and rep.entry == 5 and rep.checkpoint_seq == 6
    assert "were removed" in rep.problem
    # the same check without checkpoints: the truncated chain is intact as far as it goes (the old gap)
    assert AuditLog(log.store).verify().ok


def test_a_rewritten_log_no_longer_matches_the_checkpoint(log):
    """An attacker with write access rewrites an entry and re-chains everything after it: every hash in
    the bucket checks out, but not against the signed checkpoint."""
    for i in range(4):
        log.append("erasure", "privacy-bot", n=i)
    log.flush()
    prev = json.loads(log.store.get(log.key(1)))["hash"]
    for seq in (2, 3, 4):
        e = json.loads(log.store.get(log.key(seq)))
        e["details"]["n"] = -1
        e["prev"] = prev
        e["hash"] = entry_hash(e)
        prev = e["hash"]
        log.store.put(log.key(seq), json.dumps(e).encode())
    assert AuditLog(log.store).verify().ok  # the chain alone cannot tell
    rep = log.verify()
    assert not rep.ok and rep.entry == 2 and "rewritten" in rep.problem  # erasures are checkpointed each


def test_a_checkpoint_signed_with_another_key_is_refused(store, tmp_path):
    log = AuditLog(store, checkpoints=checkpoints(tmp_path / "cp"))
    log.append("search", "alice")
    log.flush()
    forger = checkpoints(tmp_path / "cp")  # same place, a key of the forger's own
    forger.write(1, json.loads(store.get(log.key(1)))["hash"], "2026-01-01T00:00:00+00:00", archive=True)
    rep = log.verify()
    assert not rep.ok and "not signed by this deployment's audit key" in rep.problem


def test_an_append_is_one_conditional_put(tmp_path):
    class Counting(MemoryObjectStore):
        def __init__(self):
            super().__init__()
            self.calls = []

        def get(self, key):
            self.calls.append(("get", key))
            return super().get(key)

        def put_if_absent(self, key, data, content_type="application/json"):
            self.calls.append(("put_if_absent", key))
            return super().put_if_absent(key, data, content_type)

    store = Counting()
    log = AuditLog(store, checkpoints=checkpoints(tmp_path / "cp"))
    log.append("search", "alice")
    log.flush()
    store.calls.clear()
    log.append("search", "alice")
    assert [c for c in store.calls if c[1].startswith("audit/entries/")] == [
        ("put_if_absent", "audit/entries/000000000002.json")]
    # another writer (a second replica) appended meanwhile: the loser reads forward and takes the next number
    other = AuditLog(store, checkpoints=log.checkpoints)
    other.append("search", "bob")
    e = log.append("search", "alice")
    assert e["seq"] == 4 and e["prev"] == json.loads(store.get(log.key(3)))["hash"]
    log.flush()
    other.flush()
    assert log.verify().ok


def test_concurrent_writers_never_fork_the_chain(store, tmp_path):
    replicas = [AuditLog(store, checkpoints=checkpoints(tmp_path / "cp", key=b"k" * 32)) for _ in range(2)]

    def writer(log, name):
        for i in range(5):
            log.append("search", name, n=i)

    threads = [threading.Thread(target=writer, args=(replicas[i % 2], f"w{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.flush()
    rep = replicas[0].verify()
    assert rep.ok and rep.entries == 20 and rep.checkpoint_seq == 20
