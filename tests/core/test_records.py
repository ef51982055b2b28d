import json

import pytest

from consentry.core.errors import RecordError
from consentry.core.records import (
    SCHEMA_VERSION,
    Basis,
    CrawlJob,
    DeadLetter,
    Decision,
    Face,
    ImageCandidate,
    Provenance,
    Signal,
    Source,
    url_key,
)


def test_candidate_round_trips_as_json_with_version():
    c = ImageCandidate(url="https://ex.org/a.jpg", page_url="https://ex.org/", job_id="job-1", source_id="src",
                       alt="a cat", signals=[Signal(name="x-robots-tag", value="allowed", opt_out=False)])
    data = json.loads(c.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    back = ImageCandidate.from_json(c.to_json())
    assert back == c
    assert back.key == url_key("https://ex.org/a.jpg")


def test_invalid_record_names_the_field():
    with pytest.raises(RecordError) as ei:
        ImageCandidate.from_json(json.dumps({"url": "ftp://x/a.jpg", "page_url": "https://ex.org/",
                                             "job_id": "j", "source_id": "s"}))
    assert ei.value.field == "url"
    assert "url" in str(ei.value)


def test_unknown_schema_version_is_rejected():
    c = json.loads(ImageCandidate(url="https://ex.org/a.jpg", page_url="https://ex.org/", job_id="j",
                                  source_id="s").to_json())
    c["schema_version"] = 99
    with pytest.raises(RecordError) as ei:
        ImageCandidate.from_dict(c)
    assert ei.value.field == "schema_version"


def test_unknown_fields_and_garbage_are_rejected():
    with pytest.raises(RecordError):
        ImageCandidate.from_json(b'{"url": "https://ex.org/a.jpg", "page_url": "https://ex.org/", '
                                 b'"job_id": "j", "source_id": "s", "evil": 1}')
    with pytest.raises(RecordError):
        ImageCandidate.from_json(b"\xff\xfe not json")


def test_source_validation():
    s = Source.build(id="family-2024", match="https://photos.example.org/events/", basis="consent",
                     evidence="DOC-1", retention_days=30)
    assert s.basis is Basis.CONSENT
    with pytest.raises(RecordError) as ei:
        Source.build(id="Bad Name", match="x.org", basis="consent")
    assert ei.value.field == "id"
    with pytest.raises(RecordError) as ei:
        Source.build(id="ok", match="x.org", basis="maybe")
    assert ei.value.field == "basis"
    with pytest.raises(RecordError) as ei:
        Source.build(id="ok", match="ftp://x.org/", basis="consent")
    assert ei.value.field == "match"


def test_crawl_job_rejects_non_http_seeds():
    with pytest.raises(RecordError) as ei:
        CrawlJob.build(id="j1", source_id="s", seeds=["file:///etc/passwd"])
    assert ei.value.field == "seeds"


def test_face_id_is_deterministic_and_model_scoped():
    a = Face.make_id("ab" * 32, (10.2, 20.7, 110.4, 130.0), "buffalo_s")
    assert a == Face.make_id("ab" * 32, (10.4, 20.6, 110.3, 129.9), "buffalo_s")
    assert a != Face.make_id("ab" * 32, (10.2, 20.7, 110.4, 130.0), "yunet_sface")
    assert len(a) == 64


def test_provenance_and_dead_letter_round_trip():
    p = Provenance(url="https://ex.org/a.jpg", page_url="https://ex.org/", job_id="j", source_id="s",
                   basis=Basis.NONE, decision=Decision.REFUSE, reason="basis-none")
    assert Provenance.from_json(p.to_json()).reason == "basis-none"
    d = DeadLetter(stage="ingest.decode", error_class="ImageRejected", reason="bad-image", message="truncated",
                   payload="{}")
    assert DeadLetter.from_json(d.to_json()).stage == "ingest.decode"
