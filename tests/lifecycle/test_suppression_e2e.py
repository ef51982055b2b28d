"""Issue 6 end to end on the real servers: ingest → forget by photo → re-ingest the same images.

The person is gone from every image and stays gone (suppressed on re-ingest, `explain` says so);
everyone else is indexed again; the receipt is in S3 and in the audit log.
"""

import json

import pytest

from consentry.core.records import ImageCandidate, url_key
from consentry.indexer.explain import Explainer
from consentry.wiring import eraser
from tests.ingest.site import Route, Site
from tests.ingest.stackhelp import Env, settings_for

PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "t1.jpg", "astronaut.png")


@pytest.mark.slow
def test_forget_then_reingest_keeps_the_person_out(stack, photos):
    env = Env(settings_for(stack))
    site = Site().start()
    try:
        env.add_sources(site)
        for name in PHOTOS:
            ctype = "image/png" if name.endswith(".png") else "image/jpeg"
            site.routes[f"/img/{name}"] = Route(photos[name].read_bytes(), headers={"Content-Type": ctype})
        cands = [ImageCandidate(url=site.url(f"/img/{n}"), page_url=site.url("/gallery.html"), job_id="job-1",
                                source_id="family") for n in PHOTOS]
        env.produce(cands)
        env.run_threads()
        assert env.index.count() == 1 + 1 + 1 + 6 + 1
        faces_of = {n: env.provenance.get(url_key(site.url(f"/img/{n}"))).face_ids for n in PHOTOS}

        er = eraser(env.s)
        receipt = er.forget_photo(photos["obama3.jpg"].read_bytes(), actor="privacy:test")
        assert set(receipt.matched_face_ids) == set(faces_of["obama.jpg"] + faces_of["obama2.jpg"])
        assert er.finish(receipt.request_id).verification["ok"] and env.index.count() == 8
        stored = json.loads(env.store.get(f"receipts/{receipt.request_id}.json"))
        assert stored["deleted"]["milvus_faces"] == 2
        audit = Explainer(env.provenance, eraser(env.s).audit)
        assert [e["details"]["request_id"] for e in audit.audit.entries() if e["action"] == "erasure"] == \
            [receipt.request_id]

        # the same images crawled again: a fresh consumer group replays every record
        again = env.with_(kafka_consumer_group=env.s.kafka_consumer_group + "-again")
        again.run_threads()
        assert env.index.count() == 8  # nobody else lost, the person not back
        for n in ("obama.jpg", "obama2.jpg"):
            exp = audit.explain(site.url(f"/img/{n}"))
            assert (exp.decision, exp.reason, exp.faces_indexed) == ("refuse", "suppressed", [])
            assert any(s["name"] == "suppressed" and s["opt_out"] for s in exp.signals)
        for n in ("biden.jpg", "t1.jpg", "astronaut.png"):
            exp = audit.explain(site.url(f"/img/{n}"))
            assert exp.decision == "index" and sorted(exp.faces_indexed) == sorted(faces_of[n])
    finally:
        site.close()
