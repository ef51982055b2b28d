"""End to end on the real servers: a local site → ImageCandidates on Kafka → ingest → Milvus + S3.

Workers run as threads here (fast); tests/ingest/test_ray.py runs the same path on Ray actors.
"""

from __future__ import annotations

import pytest

from consentry.core.records import Decision, ImageCandidate, url_key

from .site import Route, jpeg_with_xmp, png_bomb, to_jpeg
from .stackhelp import Env, settings_for

JPEG = {"Content-Type": "image/jpeg"}
#: path -> (photo, source, expected decision, reason, faces in Milvus with this url_key)
SITE = {
    "/img/obama.jpg": ("obama.jpg", "family", "index", "allowed", 1),
    "/img/obama2.jpg": ("obama2.jpg", "family", "index", "allowed", 1),
    "/img/biden.jpg": ("biden.jpg", "family", "index", "allowed", 1),
    "/img/t1.jpg": ("t1.jpg", "family", "index", "allowed", 6),
    "/img/biden-copy.jpg": ("biden.jpg", "family", "index", "allowed", 0),  # same bytes: faces reused
    "/img/noai.jpg": ("obama3.jpg", "family", "refuse", "noai", 0),  # X-Robots-Tag on the image response
    "/img/iptc.jpg": ("astronaut.png", "family", "refuse", "iptc-datamining-prohibited", 0),  # XMP in the file
    "/other/obama3.jpg": ("obama3.jpg", "nobasis", "refuse", "basis-none", 0),  # source basis none
}


def serve(site, photos) -> list[ImageCandidate]:
    for path, (photo, _source, *_rest) in SITE.items():
        body = photos[photo].read_bytes()
        headers = dict(JPEG)
        if path == "/img/noai.jpg":
            headers["X-Robots-Tag"] = "noai"
        if path == "/img/iptc.jpg":
            body = jpeg_with_xmp(to_jpeg(photos[photo]))
        site.routes[path] = Route(body, headers=headers)
    return [ImageCandidate(url=site.url(p), page_url=site.url("/gallery.html"), job_id="job-e2e", source_id=src)
            for p, (_ph, src, *_r) in SITE.items()]


@pytest.fixture(scope="module")
def ingested(stack, photos):
    """The site ingested once (the replay test consumes the same records again)."""
    from .site import Site

    site = Site().start()
    env = Env(settings_for(stack))
    env.add_sources(site)
    cands = serve(site, photos)
    env.produce(cands)
    totals = env.run_threads(workers=1)
    yield env, site, cands, totals
    site.close()


def test_end_to_end_on_real_servers(ingested):
    env, site, cands, totals = ingested
    assert totals["records"] == len(SITE) and totals["dlq"] == 0
    assert totals["faces"] == 10 and totals["indexed"] == 5  # the copy reuses biden's face (counted again)
    assert totals["refused_by_reason"] == {"noai": 1, "iptc-datamining-prohibited": 1, "basis-none": 1}
    assert env.index.count() == 9  # t1 has 6; obama, obama2, biden 1 each; the copy adds none
    for path, (_photo, _src, decision, reason, faces) in SITE.items():
        prov = env.provenance.get(url_key(site.url(path)))
        assert prov is not None, path
        assert (prov.decision.value, prov.reason) == (decision, reason), path
        if "biden" not in path:  # the biden pair: the rows carry the url_key of whichever came first
            assert env.index.count(url_key=prov.key) == faces, path
        if decision == "refuse":
            assert prov.faces == [] and prov.model_id is None  # nothing embedded
    copy, biden = (env.provenance.get(url_key(site.url(p))) for p in ("/img/biden-copy.jpg", "/img/biden.jpg"))
    if copy.duplicate_of is None:  # whichever of the two was processed first is the original
        copy, biden = biden, copy
    assert copy.duplicate_of == biden.url and copy.face_ids == biden.face_ids and copy.sha256 == biden.sha256
    assert env.index.count(url_key=biden.key) == 1 and env.index.count(url_key=copy.key) == 0
    t1 = env.provenance.get(url_key(site.url("/img/t1.jpg")))
    assert len(t1.faces) == 6 and t1.model_id.startswith("buffalo_s-") and t1.width == 1280 and t1.phash
    rows = env.index.get(t1.face_ids)
    assert {r["source_id"] for r in rows} == {"family"} and {r["job_id"] for r in rows} == {"job-e2e"}
    assert all(r["expires_at"] - r["ingested_at"] == 30 * 86400 for r in rows)
    assert "/other/obama3.jpg" not in site.requests  # basis none: never downloaded
    assert env.provenance.get(url_key(site.url("/img/noai.jpg"))).sha256 is None  # refused before decoding
    objects = list(env.store.list(""))
    crops = [k for k in objects if k.startswith("crops/")]  # one 112x112 JPEG per indexed face, by default
    assert len(crops) == 9 and all(env.store.get(k)[:3] == b"\xff\xd8\xff" for k in crops)
    assert all(k.endswith(".json") or k.startswith(("by-source/", "by-job/", "images/", "crops/")) for k in objects)
    assert all(env.store.get(k).isdigit() for k in objects if k.startswith("images/"))  # markers, no image bytes
    assert env.dead_letters() == []


@pytest.mark.slow
def test_replay_leaves_milvus_and_s3_unchanged(ingested):
    env, site, cands, _ = ingested
    before = env.snapshot()
    assert len(before[0]) == 9 and len(before[1]) == len(SITE)
    again = env.with_(kafka_consumer_group=env.s.kafka_consumer_group + "-replay")  # a new group: from offset 0
    totals = again.run_threads(workers=1)
    assert totals["records"] == len(SITE)
    assert env.snapshot() == before  # same face ids, same provenance decisions and faces, same objects


HOSTILE = {
    "/bad/bomb.png": ("ingest.decode", "decompression-bomb"),
    "/bad/truncated.jpg": ("ingest.decode", "truncated"),
    "/bad/empty.jpg": ("ingest.fetch", "empty"),
    "/bad/page.jpg": ("ingest.fetch", "html-not-image"),
    "/bad/logo.svg": ("ingest.fetch", "svg-not-raster"),
    "/bad/metadata-redirect.jpg": ("ingest.fetch", "private-address"),
    "/bad/huge.jpg": ("ingest.fetch", "too-large"),
    "/bad/huge-chunked.jpg": ("ingest.fetch", "too-large"),
    "/bad/missing.jpg": ("ingest.fetch", "http-404"),
}


@pytest.mark.slow
def test_hostile_inputs_end_in_the_dlq_and_the_worker_keeps_going(stack, site, photos):
    env = Env(settings_for(stack, fetch_max_bytes=1_000_000))
    env.add_sources(site)
    obama = photos["obama.jpg"].read_bytes()
    site.routes.update({
        "/bad/bomb.png": Route(png_bomb(100_000, 100_000), headers={"Content-Type": "image/png"}),
        "/bad/truncated.jpg": Route(obama[: len(obama) // 2], headers=JPEG),
        "/bad/empty.jpg": Route(b"", headers=JPEG),
        "/bad/page.jpg": Route(b"<!doctype html><html><body>Not here</body></html>", headers=JPEG),
        "/bad/logo.svg": Route(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
                               headers={"Content-Type": "image/svg+xml"}),
        "/bad/metadata-redirect.jpg": Route(status=302, headers={"Location": "http://169.254.169.254/latest/"}),
        "/bad/huge.jpg": Route(b"\xff\xd8\xff" + b"\0" * 2_000_000, headers=JPEG),
        "/bad/huge-chunked.jpg": Route(b"\xff\xd8\xff" + b"\0" * 2_000_000, headers=JPEG, chunked=True),
        "/good/obama.jpg": Route(obama, headers=JPEG),
    })
    cands = [ImageCandidate(url=site.url(p), page_url=site.url("/"), job_id="job-h", source_id="family")
             for p in [*HOSTILE, "/good/obama.jpg"]]
    env.produce(cands)
    totals = env.run_threads(workers=1)
    assert totals["records"] == len(cands) and totals["dlq"] == len(HOSTILE) and totals["indexed"] == 1
    good = env.provenance.get(url_key(site.url("/good/obama.jpg")))
    assert good.decision is Decision.INDEX and len(good.faces) == 1 and env.index.count() == 1
    dls = {d.payload and ImageCandidate.from_json(d.payload).url: d for d in env.dead_letters()}
    assert len(dls) == len(HOSTILE)
    for path, (stage, reason) in HOSTILE.items():
        d = dls[site.url(path)]
        assert (d.stage, d.reason) == (stage, reason), path
        assert d.message and d.error_class in ("FetchError", "FetchRefused", "ImageRejected")
        assert d.topic == env.s.topic_images and d.offset is not None
        prov = env.provenance.get(url_key(site.url(path)))
        assert prov.decision is Decision.REFUSE and prov.reason == reason and prov.faces == []
    assert env.provenance.get(url_key(site.url("/bad/missing.jpg"))).http_status == 404


@pytest.mark.slow
def test_a_private_address_is_refused_before_connecting(stack, site, photos):
    """allow_private_networks off: the 127.0.0.1 image is refused by the policy; the server sees nothing."""
    env = Env(settings_for(stack, allow_private_networks=False))
    env.add_sources(site)
    site.routes["/private/obama.jpg"] = Route(photos["obama.jpg"].read_bytes(), headers=JPEG)
    cand = ImageCandidate(url=site.url("/private/obama.jpg"), page_url=site.url("/"), job_id="job-p",
                          source_id="family")
    env.produce([cand])
    totals = env.run_threads(workers=1)
    assert totals["records"] == 1 and totals["dlq"] == 1
    assert site.requests == []
    prov = env.provenance.get(cand.key)
    assert prov.decision is Decision.REFUSE and prov.reason == "private-address" and prov.http_status is None
    (d,) = env.dead_letters()
    assert d.error_class == "FetchRefused" and "loopback" in d.message
