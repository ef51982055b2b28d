import time

import numpy as np

from consentry.core.records import Face, ImageCandidate, sha256_hex
from consentry.indexer.reconcile import Reconciler

SITE = "http://127.0.0.1:8/photos/"


def test_doctor_finds_and_repairs_both_kinds_of_drift(world, photos):
    good = world.add(SITE + "t1.jpg", photos["t1.jpg"].read_bytes())
    broken = world.add(SITE + "obama.jpg", photos["obama.jpg"].read_bytes())
    world.index.delete(broken.face_ids)  # provenance says indexed, Milvus lost it
    sha = sha256_hex("orphan")
    orphan = Face(face_id=Face.make_id(sha, (1, 2, 3, 4), "m"), embedding=list(np.ones(512)), image_sha256=sha,
                  url_key=sha256_hex("http://nowhere/x.jpg"), bbox=(1, 2, 3, 4), det_score=0.9, source_id="src-a",
                  job_id="job-1", model_id=world.model.model_id, ingested_at=int(time.time()),
                  expires_at=int(time.time()) + 60)
    world.index.upsert([orphan])  # in Milvus with no provenance
    crop = world.provenance.crop_key(orphan.face_id)
    world.provenance.store.put(crop, b"\xff\xd8 a crop", content_type="image/jpeg")  # and its crop

    republished: list[ImageCandidate] = []
    doc = Reconciler(world.index, world.provenance, republished.append)
    rep = doc.run()
    assert not rep.ok and rep.faces_checked == 7 and rep.provenance_checked == 2
    assert rep.faces_without_provenance == [orphan.face_id]
    assert rep.provenance_missing_faces == {SITE + "obama.jpg": broken.face_ids}
    assert republished == []  # report only

    rep = doc.run(repair=True)
    assert rep.repaired == {"orphan_faces_deleted": 1, "orphan_crops_deleted": 1, "images_republished": 1}
    assert not world.provenance.store.exists(crop)
    assert [c.url for c in republished] == [SITE + "obama.jpg"]
    assert world.index.count() == len(good.face_ids)
    assert doc.run().faces_without_provenance == []
