"""Issue 17's ingest-side opt-outs on the in-memory rig and a real local site: the C2PA training-mining assertion
(images signed here with c2pa-python's Builder and a throwaway certificate) and the do-not-train lists (sha256,
perceptual hash, URL). Each is refused before any face is detected, counted by reason, and explained."""

from __future__ import annotations

from consentry.catalog.optouts import OptOutRegistry
from consentry.core.optouts import Entry
from consentry.core.records import Decision, sha256_hex
from consentry.imaging import decode, phash
from consentry.indexer.audit import AuditLog
from consentry.indexer.explain import Explainer
from tests.c2pa_images import signed, tampered
from tests.fakes import HashFaceModel

from .rig import make_rig
from .site import Route, noise_image, to_jpeg

JPEG = {"Content-Type": "image/jpeg"}


class CountingModel(HashFaceModel):
    """Counts the images it is asked to find faces in (its analyze_batch calls analyze per image)."""

    def __init__(self) -> None:
        self.images = 0

    def analyze(self, bgr):
        self.images += 1
        return super().analyze(bgr)


def serve(rig, site, routes):
    for path, body in routes.items():
        site.routes[path] = Route(body, headers=JPEG)
    rig.produce(*[rig.candidate(p) for p in routes])
    rig.drain()


def test_c2pa_opt_outs_are_refused_before_any_face_is_detected(site):
    model = CountingModel()
    rig = make_rig(site, model=model)
    rig.add_source("family")
    no = signed(to_jpeg(noise_image(21)), {"cawg.ai_generative_training": "notAllowed"})
    constrained = signed(to_jpeg(noise_image(22)), {"c2pa.data_mining": "constrained"}, label="c2pa.training-mining")
    serve(rig, site, {"/no.jpg": no, "/bad.jpg": tampered(no), "/constrained.jpg": constrained})
    assert model.images == 0  # nothing reached the face model
    for path, reason in (("/no.jpg", "c2pa-training-mining"), ("/bad.jpg", "c2pa-invalid"),
                         ("/constrained.jpg", "c2pa-training-mining")):
        prov = rig.prov(path)
        assert (prov.decision, prov.reason) == (Decision.REFUSE, reason), path
        assert rig.faces_for(path) == 0
    assert rig.worker.stats.snapshot()["refused_by_reason"] == {"c2pa-training-mining": 2, "c2pa-invalid": 1}
    e = Explainer(rig.provenance, AuditLog(rig.store)).explain(site.url("/no.jpg"))
    (c2pa,) = [s for s in e.signals if s["name"] == "c2pa-training-mining"]
    assert c2pa["value"] == "cawg.ai_generative_training: notAllowed" and "Throwaway Signer" in c2pa["detail"]


def test_an_allowed_assertion_is_indexed_and_reading_can_be_turned_off(site):
    rig = make_rig(site)
    rig.add_source("family")
    ok = signed(to_jpeg(noise_image(23)), {"cawg.ai_training": "allowed"})
    serve(rig, site, {"/ok.jpg": ok})
    prov = rig.prov("/ok.jpg")
    assert prov.decision is Decision.INDEX and rig.faces_for("/ok.jpg") == 1
    assert [(s.name, s.value, s.opt_out) for s in prov.signals if s.name.startswith("c2pa")] == [
        ("c2pa-training-mining", "cawg.ai_training: allowed", False)]
    off = make_rig(site, read_c2pa=False)
    off.add_source("family")
    serve(off, site, {"/no.jpg": signed(to_jpeg(noise_image(24)), {"cawg.ai_training": "notAllowed"})})
    assert off.prov("/no.jpg").decision is Decision.INDEX  # ingest_read_c2pa=false: the assertion is not read


def test_do_not_train_lists_match_sha256_near_perceptual_hashes_and_urls(site):
    model = CountingModel()
    rig = make_rig(site, model=model)
    rig.add_source("family")
    exact, near, listed_url, free = (to_jpeg(noise_image(n, size=128)) for n in (31, 32, 33, 34))
    near_copy = to_jpeg(near, quality=60)  # re-encoded: other bytes, the same picture
    entries = [Entry("sha256", sha256_hex(exact)), Entry("phash", phash(decode(near).rgb)),
               Entry("prefix", site.url("/listed/"))]
    OptOutRegistry(rig.store).put("spawning", "2026-11-30", entries)
    serve(rig, site, {"/exact.jpg": exact, "/near.jpg": near_copy, "/listed/x.jpg": listed_url, "/free.jpg": free})
    assert model.images == 1  # only the free image
    for path, kind in (("/exact.jpg", "sha256"), ("/near.jpg", "phash"), ("/listed/x.jpg", "prefix")):
        prov = rig.prov(path)
        assert (prov.decision, prov.reason) == (Decision.REFUSE, "do-not-train"), path
        (sig,) = [s for s in prov.signals if s.name == "do-not-train"]
        assert sig.value.startswith(f"spawning (2026-11-30): {kind} ") and sig.opt_out
    assert rig.prov("/free.jpg").decision is Decision.INDEX
    assert rig.worker.stats.snapshot()["refused_by_reason"] == {"do-not-train": 3}


def test_importing_a_list_erases_what_is_already_indexed_under_it_with_a_receipt(site):
    from consentry.indexer.erasure import Eraser
    from consentry.indexer.optouts import OptOutImporter

    rig = make_rig(site)
    rig.add_source("family")
    a, b, keep = (to_jpeg(noise_image(n)) for n in (41, 42, 43))
    serve(rig, site, {"/a.jpg": a, "/gone/b.jpg": b, "/keep.jpg": keep})
    assert all(rig.faces_for(p) == 1 for p in ("/a.jpg", "/gone/b.jpg", "/keep.jpg"))
    audit = AuditLog(rig.store)
    importer = OptOutImporter(OptOutRegistry(rig.store), rig.provenance,
                              Eraser(rig.index, rig.provenance, rig.store, audit, erasure_threshold=0.45), audit)
    entries = [Entry("sha256", sha256_hex(a)), Entry("prefix", site.url("/gone/"))]
    r = importer.import_list("dnt", "2026-11-30", entries, "privacy:test", "dnt.csv")
    assert sorted(m["url"] for m in r.matched) == [site.url("/a.jpg"), site.url("/gone/b.jpg")]
    assert r.faces_erased == 2 and all(m["erasure"].startswith("er-") for m in r.matched)
    assert rig.faces_for("/a.jpg") == rig.faces_for("/gone/b.jpg") == 0 and rig.faces_for("/keep.jpg") == 1
    assert OptOutRegistry(rig.store).get("dnt")["receipt"]["request_id"] == r.request_id
    e = Explainer(rig.provenance, audit).explain(site.url("/a.jpg"))
    assert e.status == "never-seen"  # erased by URL: nothing is kept (with tombstones wired, it says "erased")
    assert list(audit.entries())[-1]["action"] == "optout-import" and audit.verify().ok
    # once the worker's list cache expires (30 s; expired here), the same image is refused before any face work
    rig.worker.prepare.checks.after_bytes[-1].check.optouts.ttl_s = 0
    rig.produce(rig.candidate("/a.jpg"))
    rig.drain()
    assert rig.prov("/a.jpg").reason == "do-not-train" and rig.faces_for("/a.jpg") == 0
    importer.remove("dnt", "privacy:test")
    assert OptOutRegistry(rig.store).names() == []
