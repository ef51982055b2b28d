"""FaceSearch on real Milvus (milvus-lite and Milvus 2.3 server) with the real face model and photos."""

import io
import json
import time
import uuid

import numpy as np
import pytest

from consentry.catalog import ProvenanceStore
from consentry.core.errors import ImageRejected, NoFaceFound, NotFound, RecordError
from consentry.core.records import ConsentState
from consentry.indexer.search import SearchOptions, embedding_sha256
from consentry.wiring import face_search

from .corpus import FETCHED_AT, JOB, SOURCE, image_url, index_corpus, page_url

OPTS = SearchOptions.build(purpose="find the subject's photos", case="SAR-2026-001")


def _search(settings, object_store, face_model, milvus_uri=None):
    s = settings.model_copy(update={"milvus_uri": milvus_uri}) if milvus_uri else settings
    return face_search(s, object_store, model_loader=lambda: face_model)


def _entry(search, seq):
    return next(e for e in search.audit.entries() if e["seq"] == seq)


def _ids(faces, *names):
    return {f.face_id for n in names for f in faces[n]}


def test_search_by_photo_finds_the_same_person_and_nobody_else(settings, object_store, face_model, detected,
                                                               milvus_uri):
    search = _search(settings, object_store, face_model, milvus_uri)
    faces = index_corpus(search.index, search.provenance, detected, face_model.model_id)
    threshold = settings.search_threshold

    result = search.by_photo(detected["obama.jpg"].data, OPTS, "test:alice")
    assert len(result.query_faces) == 1
    hits = result.query_faces[0].hits
    assert {h.face_id for h in hits} == _ids(faces, "obama.jpg", "obama2.jpg", "obama3.jpg")
    by_id = {h.face_id: h for h in hits}
    for name in ("obama2.jpg", "obama3.jpg"):  # the other photos of the same person, above the threshold
        h = by_id[faces[name][0].face_id]
        assert threshold <= h.score < 0.95
        assert h.image.url == image_url(name) and h.image.page_url == page_url(name)
        assert h.image.source_id == SOURCE and h.image.fetched_at == FETCHED_AT and h.job_id == JOB
    assert by_id[faces["obama.jpg"][0].face_id].score > 0.99
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # the search is in the audit log: who, purpose, case, the query embedding's hash, the results; not the photo
    e = _entry(search, result.audit_seq)
    d = e["details"]
    assert e["action"] == "search" and e["actor"] == "test:alice"
    assert d["purpose"] == OPTS.purpose and d["case"] == "SAR-2026-001" and d["by"] == "photo"
    assert d["query_embedding_sha256"] == [embedding_sha256(detected["obama.jpg"].embeddings[0])]
    assert set(d["result_face_ids"]) == {h.face_id for h in hits}
    assert len(json.dumps(e)) < 4096  # nothing photo-sized in it
    assert search.audit.verify().ok

    # and from another photo of him: the same three, nobody else
    other = search.by_photo(detected["obama3.jpg"].data, OPTS, "test:alice")
    assert {h.face_id for h in other.query_faces[0].hits} == _ids(faces, "obama.jpg", "obama2.jpg", "obama3.jpg")


def test_faces_whose_consent_forbids_search_are_never_returned(settings, object_store, face_model, detected,
                                                               milvus_uri):
    search = _search(settings, object_store, face_model, milvus_uri)
    faces = index_corpus(search.index, search.provenance, detected, face_model.model_id,
                         states={"obama.jpg": ConsentState.WITHDRAWN, "obama2.jpg": ConsentState.HOLD})
    # the query photo's own face is the best possible match (score 1.0), but withdrawn: never returned
    hits = search.by_photo(detected["obama.jpg"].data, OPTS, "test:alice").query_faces[0].hits
    assert [h.face_id for h in hits] == [faces["obama3.jpg"][0].face_id]
    # even with the lowest allowed threshold and the largest top-k
    wide = SearchOptions.build(purpose="wide search", top_k=100, threshold=settings.search_threshold)
    hits = search.by_photo(detected["obama2.jpg"].data, wide, "test:alice").query_faces[0].hits
    assert _ids(faces, "obama.jpg", "obama2.jpg").isdisjoint(h.face_id for h in hits)
    # a withdrawn face cannot be used as a query either
    with pytest.raises(NotFound):
        search.by_face_id(faces["obama.jpg"][0].face_id, OPTS, "test:alice")
    by_id = search.by_face_id(faces["obama3.jpg"][0].face_id, OPTS, "test:alice")
    assert by_id.query_faces[0].hits == []  # itself excluded, the others not searchable
    # consent granted again: found once Milvus has applied the upsert (Bounded: within a second or so)
    search.index.upsert([faces["obama2.jpg"][0].model_copy(update={"consent_state": ConsentState.GRANTED})])
    deadline = time.monotonic() + 20
    while True:
        by_id = search.by_face_id(faces["obama3.jpg"][0].face_id, OPTS, "test:alice")
        if by_id.query_faces[0].hits or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [h.face_id for h in by_id.query_faces[0].hits] == [faces["obama2.jpg"][0].face_id]


def test_group_photo_searches_every_face(settings, object_store, face_model, detected):
    search = _search(settings, object_store, face_model)
    faces = index_corpus(search.index, search.provenance, detected, face_model.model_id)
    result = search.by_photo(detected["t1.jpg"].data, OPTS, "test:alice")
    assert len(result.query_faces) == 6
    t1 = _ids(faces, "t1.jpg")
    for q in result.query_faces:
        assert q.bbox is not None and len(q.hits) == 1 and q.hits[0].face_id in t1 and q.hits[0].score > 0.99
    assert set(result.face_ids()) == t1


def test_filters_are_validated_values(settings, object_store, face_model, detected):
    search = _search(settings, object_store, face_model)
    index_corpus(search.index, search.provenance, detected, face_model.model_id)
    photo = detected["obama.jpg"].data

    def n_hits(**kw):
        o = SearchOptions.build(purpose="filter check", **kw)
        return len(search.by_photo(photo, o, "test:alice").query_faces[0].hits)

    assert n_hits(source=[SOURCE]) == 3
    assert n_hits(source=["another-source"]) == 0
    assert n_hits(job=[JOB]) == 3 and n_hits(job=["job-other"]) == 0
    assert n_hits(ingested_since="2020-01-01T00:00:00Z", ingested_until="2100-01-01T00:00:00Z") == 3
    assert n_hits(ingested_since="2100-01-01T00:00:00Z") == 0
    assert n_hits(top_k=1) == 1
    for bad in ({"source": ['a" or source_id != "']}, {"job": ["x) or (1 == 1"]}, {"purpose": "  "},
                {"case": "C-1\nforged line"}, {"top_k": 0}, {"threshold": 2.0},
                {"ingested_since": "2026-02-01", "ingested_until": "2026-01-01"}):
        with pytest.raises(RecordError):
            SearchOptions.build(**{"purpose": "filter check", **bad})
    with pytest.raises(RecordError, match="top_k"):
        search.by_photo(photo, SearchOptions.build(purpose="too many", top_k=settings.api_max_top_k + 1), "t")
    with pytest.raises(RecordError, match="threshold"):
        search.by_photo(photo, SearchOptions.build(purpose="too loose", threshold=0.0), "t")
    with pytest.raises(RecordError, match="face_id"):
        search.by_face_id('x" or face_id != "', OPTS, "t")


def test_bad_query_photos_fail_clearly_and_are_not_logged(settings, object_store, face_model):
    from PIL import Image

    search = _search(settings, object_store, face_model)
    search.index.ensure()
    before = search.audit.head()
    with pytest.raises(ImageRejected):
        search.by_photo(b"<html>not an image</html>", OPTS, "t")
    with pytest.raises(ImageRejected):
        search.by_photo(b"\xff\xd8\xff" + b"\x00" * 100, OPTS, "t")  # a truncated JPEG
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(buf, "PNG")
    with pytest.raises(NoFaceFound):
        search.by_photo(buf.getvalue(), OPTS, "t")
    with pytest.raises(NotFound):
        search.by_face_id(uuid.uuid4().hex * 2, OPTS, "t")
    assert search.audit.head() == before


def test_a_face_the_system_of_record_no_longer_holds_is_never_shown(settings, object_store, face_model, detected,
                                                                     milvus_uri):
    """Milvus still returns the rows (as it does for a moment after an erasure, at Bounded consistency), but
    one image's provenance is gone and another lists its face as erased: neither is shown, as a hit or
    as a query face."""
    search = _search(settings, object_store, face_model, milvus_uri)
    faces = index_corpus(search.index, search.provenance, detected, face_model.model_id)
    store = ProvenanceStore(object_store)
    gone, redacted = faces["obama2.jpg"][0], faces["obama3.jpg"][0]
    store.delete(gone.url_key)
    prov = store.get(redacted.url_key)
    store.put(prov.model_copy(update={"faces": [f.model_copy(update={"erased": True}) for f in prov.faces]}))
    assert len(search.index.get([gone.face_id, redacted.face_id])) == 2  # Milvus untouched
    hits = search.by_photo(detected["obama.jpg"].data, OPTS, "t").query_faces[0].hits
    assert [h.face_id for h in hits] == [faces["obama.jpg"][0].face_id]
    e = _entry(search, search.audit.head()["seq"])
    assert e["details"]["result_face_ids"] == [faces["obama.jpg"][0].face_id]  # the log holds what was shown
    for face in (gone, redacted):
        with pytest.raises(NotFound):
            search.by_face_id(face.face_id, OPTS, "t")
    assert [h.face_id for h in search.by_face_id(faces["obama.jpg"][0].face_id, OPTS, "t").query_faces[0].hits] == []


def test_bounded_consistency_is_a_setting_and_its_searches_see_writes_within_seconds(
        settings, object_store, face_model, detected, milvus_uri):
    uri = {"milvus_uri": milvus_uri} if milvus_uri else {}
    s = settings.model_copy(update={"search_consistency": "bounded", **uri})
    search = face_search(s, object_store, model_loader=lambda: face_model)
    strong = settings.model_copy(update={"search_consistency": "strong"})
    assert search.strong is False and _search(strong, object_store, face_model).strong is True
    assert _search(settings, object_store, face_model).strong is False  # the default
    faces = index_corpus(search.index, search.provenance, detected, face_model.model_id)
    deadline = time.monotonic() + 20  # bounded: a write may show a few seconds late, never much later
    while True:
        hits = search.by_photo(detected["obama.jpg"].data, OPTS, "test:alice").query_faces[0].hits
        if _ids(faces, "obama.jpg") <= {h.face_id for h in hits} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert _ids(faces, "obama.jpg") <= {h.face_id for h in hits}
