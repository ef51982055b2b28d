"""The consent decision, top to bottom, as pure functions over plain records (no fakes, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from consentry.core.records import Basis, Decision, ImageCandidate, Signal, Source
from consentry.imaging import DecodedImage
from consentry.ingest.decide import ConsentChecks, after_suppression
from consentry.ingest.fetch import FetchResult
from consentry.ingest.outcomes import Evidence
from tests.ingest.site import DMI_XMP

SOURCE = Source(id="family", match="https://photos.example.org/family/", basis=Basis.CONSENT)


def evidence(page="https://photos.example.org/family/p.html", signals=(), source=SOURCE, headers=(), xmp=None):
    cand = ImageCandidate(url="https://photos.example.org/family/a.jpg", page_url=page, job_id="j",
                          source_id=source.id, signals=list(signals))
    e = Evidence(cand, source)
    response = FetchResult(url=cand.url, final_url=cand.url, status=200, content_type="image/jpeg",
                           body=b"\xff\xd8\xff", fetched_at=datetime.now(UTC), format="JPEG", signals=list(headers))
    image = DecodedImage(bgr=np.zeros((4, 4, 3), np.uint8), format="JPEG", width=4, height=4, xmp=xmp)
    return e, e.with_(response=response), e.with_(response=response, image=image)


def decide_all(checks=None, **kw):
    checks = checks or ConsentChecks()
    before, fetched, decoded = evidence(**kw)
    v1 = checks.before_fetching(before)
    v2 = checks.after_response(fetched, v1)
    v3 = checks.after_decoding(decoded, v2)
    return v1, v2, v3


def test_an_image_of_a_consented_source_is_indexed_and_every_signal_is_kept_in_order():
    v1, v2, v3 = decide_all()
    assert (v3.decision, v3.reason) == (Decision.INDEX, "allowed")
    assert [s.name for s in v3.signals] == ["basis", "source-match", "iptc-datamining"]
    assert v1.signals == v3.signals[:2]


def test_each_decision_point_can_refuse():
    v1, _, _ = decide_all(source=SOURCE.model_copy(update={"basis": Basis.NONE}))
    assert (v1.decision, v1.reason) == (Decision.REFUSE, "basis-none")
    v1, _, _ = decide_all(page="https://elsewhere.example.org/x.html")
    assert v1.reason == "outside-source"
    v1, _, _ = decide_all(signals=[Signal(name="meta-robots", value="noai", opt_out=True)])
    assert v1.reason == "noai"
    v1, v2, _ = decide_all(headers=[Signal(name="tdm-reservation", value="1", opt_out=True, scope="image")])
    assert not v1.refused and v2.reason == "tdm-reservation"
    _, v2, v3 = decide_all(xmp=DMI_XMP)
    assert not v2.refused and v3.reason == "iptc-datamining-prohibited"


def test_a_new_signal_is_one_more_check_and_sees_the_fetched_bytes():
    seen = []

    def registry(e):  # e.g. a do-not-train registry matched by the bytes
        seen.append(e.body)
        return [Signal(name="do-not-train", value="listed", opt_out=True, scope="image")]

    checks = ConsentChecks(after_bytes=(*ConsentChecks().after_bytes, registry))
    _, _, v3 = decide_all(checks)
    assert seen == [b"\xff\xd8\xff"] and v3.refused and v3.signals[-1].name == "do-not-train"


def test_the_suppression_list_refuses_only_when_every_face_is_on_it():
    _, _, v = decide_all()
    assert after_suppression(v, 3, 0) is v and after_suppression(v, 0, 0) is v
    some = after_suppression(v, 3, 1)
    assert not some.refused and some.signals[-1].value == "1 of 3 faces"
    every = after_suppression(v, 2, 2)
    assert (every.decision, every.reason) == (Decision.REFUSE, "suppressed")
