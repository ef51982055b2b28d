from consentry.core.consent import (
    decide,
    iptc_signal,
    matches_source,
    robots_directives,
    robots_signal,
    tdm_header_signal,
    tdmrep_match,
    tdmrep_rules,
)
from consentry.core.records import Basis, Decision, Signal


def test_robots_directives_scoped_to_our_token():
    assert robots_directives(["noai, noimageai"], "consentry") == {"noai", "noimageai"}
    assert robots_directives(["consentry: noai"], "consentry") == {"noai"}
    assert robots_directives(["googlebot: noindex"], "consentry") == set()
    assert robots_directives(["googlebot: noindex, consentry: noimageai"], "consentry") == {"noimageai"}
    assert "noindex" in robots_directives(["NOINDEX"], "consentry")
    assert robots_directives(["max-image-preview:large, index"], "consentry") == {"max-image-preview", "index"}


def test_robots_signal_values():
    assert robots_signal("x-robots-tag", [], "consentry") is None
    sig = robots_signal("x-robots-tag", ["index, follow"], "consentry")
    assert sig and not sig.opt_out and sig.value == "allowed"
    sig = robots_signal("meta-robots", ["noimageai"], "consentry")
    assert sig and sig.opt_out and sig.value == "noimageai"


def test_tdm_header_and_rules():
    assert tdm_header_signal("1").opt_out
    assert not tdm_header_signal("0").opt_out
    rules = tdmrep_rules('[{"location": "/private/*", "tdm-reservation": 1},'
                         ' {"location": "/private/open/*", "tdm-reservation": 0},'
                         ' {"location": "/*", "tdm-reservation": 0}]')
    assert tdmrep_match(rules, "https://x.org/private/a.html") == (True, None)
    assert tdmrep_match(rules, "https://x.org/private/open/a.html") == (False, None)
    assert tdmrep_match(rules, "https://x.org/public/a.html") == (False, None)
    assert tdmrep_match([], "https://x.org/") is None


def test_iptc_datamining_from_xmp():
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
           b'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
           b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/></rdf:RDF></x:xmpmeta>')
    sig = iptc_signal(xmp)
    assert sig.opt_out and sig.value == "DMI-PROHIBITED-AIMLTRAINING"
    element = b"<plus:DataMining rdf:resource='http://ns.useplus.org/ldf/vocab/DMI-ALLOWED'/>"
    assert not iptc_signal(element).opt_out
    assert iptc_signal(None).value == "absent"


def test_decision_order_and_reasons():
    assert decide(Basis.CONSENT, []) == (Decision.INDEX, "allowed")
    assert decide(Basis.NONE, []) == (Decision.REFUSE, "basis-none")
    noai = Signal(name="x-robots-tag", value="noai", opt_out=True)
    iptc = Signal(name="iptc-datamining", value="DMI-PROHIBITED", opt_out=True, scope="image")
    assert decide(Basis.CONSENT, [iptc, noai]) == (Decision.REFUSE, "noai")
    assert decide(Basis.LICENCE, [iptc]) == (Decision.REFUSE, "iptc-datamining-prohibited")
    assert decide(Basis.OWN_ARCHIVE, [], suppressed=True) == (Decision.REFUSE, "suppressed")
    allowed = Signal(name="x-robots-tag", value="allowed", opt_out=False)
    assert decide(Basis.CONSENT, [allowed])[0] is Decision.INDEX


def test_source_match():
    assert matches_source("photos.example.org", "https://photos.example.org/a/b.html")
    assert matches_source("example.org", "https://cdn.example.org/x")
    assert not matches_source("example.org", "https://badexample.org/x")
    assert matches_source("127.0.0.1:8080", "http://127.0.0.1:8080/x")
    assert not matches_source("127.0.0.1:8080", "http://127.0.0.1:8081/x")
    assert matches_source("https://ex.org/events/", "https://ex.org/events/2024/a.html")
    assert not matches_source("https://ex.org/events/", "https://ex.org/other/")
    assert not matches_source("https://ex.org/events/", "http://ex.org/events/")
    assert not matches_source("ex.org", "ftp://ex.org/")


def test_a_page_outside_the_source_is_refused():
    from consentry.core.consent import source_match_signal

    inside = source_match_signal("https://ex.org/family/", "https://ex.org/family/a.html")
    outside = source_match_signal("https://ex.org/family/", "https://ex.org/other/a.html")
    assert not inside.opt_out and outside.opt_out
    assert decide(Basis.CONSENT, [inside]) == (Decision.INDEX, "allowed")
    assert decide(Basis.CONSENT, [outside]) == (Decision.REFUSE, "outside-source")
