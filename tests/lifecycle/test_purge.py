"""The purge stage's decisions, with a scripted Milvus (the real compaction is in test_erasure_scale.py)."""

from consentry.indexer.purge import Purger, RecordingStore
from tests.fakes import MemoryObjectStore


class ScriptedIndex:
    """compact() starts a job that is done at once; stored_rows() follows a script; count() is fixed."""

    def __init__(self, stored, live, supported=True):
        self.stored, self.live, self.supported, self.jobs = list(stored), live, supported, 0

    def compact(self):
        if not self.supported:
            return None
        self.jobs += 1
        return self.jobs

    def compaction_done(self, job):
        return True

    def stored_rows(self):
        return self.stored.pop(0) if len(self.stored) > 1 else self.stored[0]

    def count(self):
        return self.live


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def purger(index, timeout_s=10.0):
    clock = Clock()
    return Purger(index, MemoryObjectStore(), timeout_s=timeout_s, gc_drop_tolerance_s=3600, clock=clock,
                  sleep=clock.sleep)


def test_compaction_is_asked_again_until_no_deleted_row_is_left():
    index = ScriptedIndex(stored=[10, 10, 8], live=8)
    m = purger(index).milvus()
    assert m["state"] == "compacted" and m["compactions"] == 3 and m["deleted_rows_in_segments"] == 0
    assert m["files_removed_by"] > m["compacted_at"] and "dropTolerance" in m["note"]


def test_rows_still_held_after_the_timeout_are_reported_with_the_fix():
    m = purger(ScriptedIndex(stored=[10], live=8), timeout_s=3).milvus()
    assert m["state"] == "partial" and m["deleted_rows_in_segments"] == 2
    assert "DATACOORD_COMPACTION_SINGLE_RATIO_THRESHOLD" in m["note"] and m["compactions"] >= 2


def test_milvus_lite_says_unsupported_and_unversioned_s3_keeps_nothing():
    assert purger(ScriptedIndex([0], 0, supported=False)).milvus()["state"] == "unsupported"
    store = MemoryObjectStore()
    rec = RecordingStore(store)
    rec.put("a", b"1")
    rec.delete_many(["a", "b"])
    assert rec.deleted == {"a", "b"} and rec.rewritten == {"a"}
    s3 = Purger(ScriptedIndex([0], 0), store).s3(rec)
    assert s3["versioning"] == "off" and s3["old_versions_deleted"] == 0


def test_a_versioned_bucket_keeps_no_old_version_of_an_erased_object(settings):
    """SeaweedFS with versioning on: an erasure's deletes and rewrites leave versions; the purge removes them."""
    import uuid

    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    from consentry.clients.objectstore import S3Config, S3ObjectStore

    cfg = S3Config.from_settings(settings)
    store = S3ObjectStore(S3Config(cfg.endpoint, cfg.access_key, cfg.secret_key, bucket=f"v-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    store._c.set_bucket_versioning(store.bucket, VersioningConfig(ENABLED))
    assert store.versioning() == "enabled"
    store.put("provenance/a.json", b"v1 lists the face")
    store.put("provenance/b.json", b"v1 lists the face")
    rec = RecordingStore(store)
    rec.put("provenance/b.json", b"v2 redacted")  # redaction rewrites: v1 must go, v2 stays
    rec.delete_many(["provenance/a.json"])  # deletion: every version must go

    def versions(key):
        listed = store._c.list_objects(store.bucket, prefix=key, include_version=True)
        return [o for o in listed if o.object_name == key]

    assert len(versions("provenance/a.json")) == 2 and len(versions("provenance/b.json")) == 2
    s3 = Purger(ScriptedIndex([0], 0), store).s3(rec)
    assert s3["versioning"] == "enabled" and s3["old_versions_deleted"] == 3
    assert versions("provenance/a.json") == []
    assert store.get("provenance/b.json") == b"v2 redacted" and len(versions("provenance/b.json")) == 1
