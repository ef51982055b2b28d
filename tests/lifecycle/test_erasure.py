import json

import pytest

from consentry.core.errors import NoFaceFound
from consentry.core.records import ErasureEvent
from consentry.indexer.erasure import Eraser
from consentry.indexer.explain import Explainer

SITE = "http://127.0.0.1:8/photos/"


def eraser(world, events=None, **kw):
    return Eraser(world.index, world.provenance, world.store, world.audit, erasure_threshold=0.45,
                  model_loader=lambda: world.model, publish=(events.append if events is not None else None), **kw)


def populate(world, photos):
    provs = {}
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "t1.jpg", "astronaut.png"):
        provs[name] = world.add(SITE + name, photos[name].read_bytes(), source="src-a")
    provs["obama3.jpg"] = world.add("http://127.0.0.1:8/other/obama3.jpg", photos["obama3.jpg"].read_bytes(),
                                    source="src-b", job="job-2")
    return provs


def test_forget_by_photo_removes_that_person_only(world, photos):
    provs = populate(world, photos)
    total = world.index.count()
    assert total == 1 + 1 + 1 + 6 + 1 + 1
    obama_ids = {f for n in ("obama.jpg", "obama2.jpg", "obama3.jpg") for f in provs[n].face_ids}
    events = []
    er = eraser(world, events)
    r = er.forget_photo(photos["obama.jpg"].read_bytes(), actor="privacy:test", reference="DSAR-2026-031")
    assert set(r.matched_face_ids) == obama_ids  # all three photos, across two sources
    assert r.deleted["milvus_faces"] == 3 and r.deleted["suppression_added"] == 1
    # a small collection is verified exactly before the answer: every remaining face of the model compared
    v = r.verification
    assert v["state"] == "done" and v["ok"] and v["remaining"] == 0 and v["caught"] == 0
    assert v["method"].startswith("exact: full scan") and v["compared"] == total - 3
    assert r.reference == "DSAR-2026-031" and r.status == "verified" and r.timings["erase_s"] > 0
    assert r.purge["s3"]["versioning"] == "off" and r.purge["s3"]["old_versions_deleted"] == 0
    assert world.index.count() == total - 3
    assert not world.index.get(sorted(obama_ids))
    # nobody else was touched
    for n in ("biden.jpg", "t1.jpg", "astronaut.png"):
        assert len(world.index.get(provs[n].face_ids)) == len(provs[n].face_ids)
    # provenance redacted, receipt stored (without the photo) and audit-logged, event published
    p = world.provenance.get(provs["obama2.jpg"].key)
    assert p.face_ids == [] and p.faces[0].erased and p.erased_by == [r.request_id]
    receipt = json.loads(world.store.get(f"receipts/{r.request_id}.json"))
    assert receipt["target"] == r.target and len(receipt["target"]) == 64 and receipt["reference"] == "DSAR-2026-031"
    last = list(world.audit.entries())[-1]
    assert last["action"] == "erasure" and last["details"]["request_id"] == r.request_id
    assert last["details"]["reference"] == "DSAR-2026-031"
    assert world.audit.verify().ok
    assert events and isinstance(events[0], ErasureEvent) and set(events[0].face_ids) == obama_ids
    # stage 3: the physical purge
    done = er.finish(r.request_id)
    assert done.verification == v and done.status == "purged"
    assert done.purge["milvus"]["state"] == "unsupported"  # milvus-lite / in-memory: no compaction API
    assert json.loads(world.store.get(f"receipts/{r.request_id}.json"))["status"] == "purged"
    fin = list(world.audit.entries())[-1]
    assert fin["action"] == "erasure-finished" and fin["details"]["reference"] == "DSAR-2026-031"
    # the reference embedding is on the suppression list
    from consentry.imaging import decode

    other = world.model.analyze(decode(photos["obama3.jpg"].read_bytes()).bgr)[0].embedding
    assert world.index.suppressed_score([other], world.model.model_id, strong=True)[0] >= 0.45
    exp = Explainer(world.provenance, world.audit).explain(SITE + "obama2.jpg")
    assert exp.faces_erased == provs["obama2.jpg"].face_ids and exp.erasures[0]["request_id"] == r.request_id


class MissingSearch:
    """A vector store whose similarity search never returns some faces (an index that missed them)."""

    def __init__(self, store, hidden):
        self._store, self.hidden = store, set(hidden)

    def __getattr__(self, name):
        return getattr(self._store, name)

    def search(self, spec, *a, **kw):
        return [[h for h in hits if h.id not in self.hidden] for hits in self._store.search(spec, *a, **kw)]


def test_exact_verification_erases_a_face_the_search_missed(world, photos):
    provs = populate(world, photos)
    missed = provs["obama2.jpg"].face_ids[0]
    world.index.store = MissingSearch(world.index.store, [missed])
    er = eraser(world, verify_inline_max_faces=0)  # a large collection: verified after the answer
    r = er.forget_photo(photos["obama.jpg"].read_bytes(), actor="privacy:test")
    assert missed not in r.matched_face_ids and len(r.matched_face_ids) == 2
    assert r.verification["state"] == "pending" and r.verification["ok"] is None
    assert world.index.get([missed])  # still there after the approximate stage
    done = er.finish(r.request_id)  # in another Eraser it would read the references back from suppression
    assert done.verification["ok"] and done.verification["caught"] == 1 and done.verification["remaining"] == 0
    assert missed in done.matched_face_ids and not world.index.get([missed])
    assert world.provenance.get(provs["obama2.jpg"].key).face_ids == []  # redacted too


def test_forget_by_photo_without_a_face_is_refused(world, photos):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(buf, "PNG")
    with pytest.raises(NoFaceFound):
        eraser(world).forget_photo(buf.getvalue(), actor="privacy:test")


def test_forget_by_source_removes_exactly_that_source(world, photos):
    provs = populate(world, photos)
    before_a = world.index.count(source_id="src-a")
    before_b = world.index.count(source_id="src-b")
    keys_b = world.provenance.keys_for_source("src-b")
    assert before_a == 10 and before_b == 1 and len(keys_b) == 1
    r = eraser(world).forget_source("src-a", actor="privacy:test")
    assert r.deleted["milvus_faces"] == 10 and r.deleted["provenance_deleted"] == 5
    assert r.verification["ok"] and r.verification["remaining"] == 0 and r.verification["state"] == "done"
    assert r.verification["method"].startswith("exact: count of faces with source_id") and r.status == "verified"
    assert world.index.count(source_id="src-a") == 0
    assert world.index.count(source_id="src-b") == before_b
    assert world.provenance.keys_for_source("src-a") == []
    assert world.provenance.keys_for_source("src-b") == keys_b
    assert world.provenance.get(provs["obama.jpg"].key) is None
    assert world.provenance.get(provs["obama3.jpg"].key) is not None


def test_forget_by_job_and_url(world, photos):
    provs = populate(world, photos)
    r = eraser(world).forget_job("job-2", actor="privacy:test")
    assert r.deleted["milvus_faces"] == 1 and world.index.count(job_id="job-2") == 0
    assert world.index.count() == 10
    r = eraser(world).forget_url(SITE + "t1.jpg", actor="privacy:test")
    assert r.deleted["milvus_faces"] == 6 and r.verification["ok"]
    assert world.index.count() == 4 and world.provenance.get(provs["t1.jpg"].key) is None
