"""The opt-out signals of issue 17 as pure functions: robots-style groups, AI-crawler groups, ai.txt, robots
directives, TDM policies, C2PA training-mining assertions (interpretation and real manifests), do-not-train lists."""

from __future__ import annotations

import json

import pytest

from consentry.core.aicrawlers import ai_crawlers, ai_group_rules, ai_group_signal, ai_txt
from consentry.core.c2pa import c2pa_signals, training_mining
from consentry.core.consent import (
    decide,
    licensed,
    robots_signal,
    signal_reason,
    tdm_header_signal,
    tdmrep_rules,
    tdmrep_signal,
)
from consentry.core.errors import ConfigError
from consentry.core.optouts import Entry, OptOutIndex, parse_list
from consentry.core.records import Basis, Decision
from consentry.core.robotsgroups import decide as rule_decide
from consentry.core.robotsgroups import parse_groups, rules_for
from tests.c2pa_images import signed, tampered

ROBOTS = b"""User-agent: *
Allow: /

User-agent: GPTBot
User-agent: CCBot
Disallow: /photos/
Allow: /photos/public/

User-agent: googlebot
Disallow: /private/
"""


# --- robots-style groups and AI-crawler groups ---------------------------------------------------------
def test_groups_and_rfc9309_longest_match():
    groups = parse_groups(ROBOTS)
    assert [g.agents for g in groups] == [["*"], ["gptbot", "ccbot"], ["googlebot"]]
    rules = rules_for(groups, ["gptbot"])
    assert rule_decide(rules, "https://s.test/photos/a.jpg") == (False, rules[0])
    assert rule_decide(rules, "https://s.test/photos/public/a.jpg")[0]  # the longer Allow wins
    assert rules_for(groups, ["consentry"]) == [r for g in groups[:1] for r in g.rules]  # falls back to *
    assert rules_for(parse_groups(b"User-agent: x\nDisallow: /"), ["consentry"]) is None


def test_the_ai_crawler_list_is_data_with_its_source():
    agents = ai_crawlers()
    for must in ("GPTBot", "CCBot", "Google-Extended", "ClaudeBot", "anthropic-ai", "Applebot-Extended", "Bytespider",
                 "img2dataset", "meta-externalagent", "PerplexityBot"):
        assert must in agents
    assert "Scrapy" not in agents and "*" not in agents


def test_an_ai_crawler_group_disallowing_a_path_opts_it_out_and_star_groups_do_not():
    rules = ai_group_rules(parse_groups(ROBOTS))
    assert set(rules) == {"GPTBot", "CCBot"}
    sig = ai_group_signal(rules, "https://s.test/photos/x.jpg", "image")
    assert sig.opt_out and sig.value in ("GPTBot: Disallow: /photos/", "CCBot: Disallow: /photos/")
    assert signal_reason(sig) == "robots-txt-ai-crawlers"
    assert not ai_group_signal(rules, "https://s.test/photos/public/x.jpg").opt_out
    assert not ai_group_signal(rules, "https://s.test/other.jpg").opt_out
    assert ai_group_signal(ai_group_rules(parse_groups(b"User-agent: *\nDisallow: /")), "https://s.test/") is None


# --- ai.txt ----------------------------------------------------------------------------------------------
AITXT = b"""# Spawning AI
User-Agent: *
Disallow: *.jpg
Disallow: /art/
Allow: /art/open/
"""


def test_ai_txt_file_type_and_path_rules():
    t = ai_txt(200, AITXT, None, ["consentry"])
    assert t.signal("https://s.test/a.jpg", "image").opt_out
    assert signal_reason(t.signal("https://s.test/a.jpg")) == "ai-txt"
    assert t.signal("https://s.test/a.jpg?size=2").opt_out
    assert t.signal("https://s.test/a.png").value == "allowed"
    assert t.signal("https://s.test/art/x.png").value == "disallowed (Disallow: /art/)"
    assert not t.signal("https://s.test/art/open/x.png").opt_out
    ours = ai_txt(200, AITXT + b"\nUser-Agent: consentry\nDisallow: /\n", None, ["consentry"])
    assert ours.signal("https://s.test/a.png").opt_out  # our own group wins over *


@pytest.mark.parametrize("status, error, opt_out", [
    (404, None, None), (410, None, None),  # no ai.txt: nothing to honour
    (500, None, True), (503, None, True), (429, None, True), (None, "ConnectionRefusedError", True),  # fail closed
])
def test_ai_txt_failure_rules_are_robots_txt_rules(status, error, opt_out):
    sig = ai_txt(status, b"", error, ["consentry"]).signal("https://s.test/a.jpg")
    assert (sig.opt_out if sig else None) is opt_out


# --- robots directives -------------------------------------------------------------------------------------
def test_none_and_unavailable_after_opt_out_and_display_limits_do_not():
    sig = robots_signal("x-robots-tag", ["none"], "consentry")
    assert sig.opt_out and signal_reason(sig) == "none"
    assert decide(Basis.CONSENT, [sig]) == (Decision.REFUSE, "none")
    past = robots_signal("x-robots-tag", ["unavailable_after: Friday, 25-Jun-10 15:00:00 PST"], "consentry")
    assert past.opt_out and signal_reason(past) == "unavailable-after"
    assert not robots_signal("x-robots-tag", ["unavailable_after: 2999-01-01"], "consentry").opt_out
    assert not robots_signal("x-robots-tag", ["unavailable_after: someday"], "consentry").opt_out
    for limit in ("max-image-preview:none", "noarchive, nosnippet", "notranslate", "nofollow"):
        assert not robots_signal("x-robots-tag", [limit], "consentry").opt_out, limit
    assert not robots_signal("x-robots-tag", ["googlebot: none"], "consentry").opt_out


# --- TDMRep policies ---------------------------------------------------------------------------------------
POLICY = "https://s.test/tdm-policy.json"


def test_a_tdm_policy_is_recorded_and_only_a_licence_naming_it_lets_the_image_through():
    sig = tdm_header_signal("1", policy=POLICY)
    assert sig.opt_out and sig.policy == POLICY
    assert licensed(sig, Basis.CONSENT, f"licence L-1, {POLICY}").opt_out  # not a licence basis
    assert licensed(sig, Basis.LICENCE, "licence L-1").opt_out  # the evidence does not name the policy
    ok = licensed(sig, Basis.LICENCE, f"licence L-1, {POLICY}")
    assert not ok.opt_out and "licensed" in ok.detail and ok.policy == POLICY
    assert licensed(tdm_header_signal("1"), Basis.LICENCE, POLICY).opt_out  # no policy: a plain reservation
    rules = tdmrep_rules(json.dumps([{"location": "/lic/*", "tdm-reservation": 1, "tdm-policy": POLICY}]))
    sig = tdmrep_signal(rules, "https://s.test/lic/a.jpg", "image")
    assert (sig.name, sig.opt_out, sig.policy) == ("tdmrep.json", True, POLICY)


# --- C2PA --------------------------------------------------------------------------------------------------
def store(state="Valid", manifests=None, active="m1"):
    failures = [{"code": "assertion.dataHash.mismatch"}] if state == "Invalid" else []
    return {"validation_state": state, "active_manifest": active,
            "validation_status": [{"code": "signingCredential.untrusted"}, *failures],
            "manifests": manifests if manifests is not None else {"m1": manifest({"cawg.ai_training": "notAllowed"})}}


def manifest(entries, label="cawg.training-mining"):
    return {"signature_info": {"common_name": "Alice", "issuer": "Example CA", "alg": "Es256"},
            "assertions": [{"label": label, "data": {"entries": {k: {"use": v} for k, v in entries.items()}}}]}


@pytest.mark.parametrize("entries, basis, opt_out", [
    ({"cawg.ai_training": "notAllowed"}, Basis.CONSENT, True),
    ({"c2pa.ai_generative_training": "notAllowed"}, Basis.LICENCE, True),
    ({"cawg.data_mining": "constrained"}, Basis.CONSENT, True),
    ({"cawg.data_mining": "constrained"}, Basis.LICENCE, False),  # constrained: a licence may cover it
    ({"cawg.ai_inference": "allowed"}, Basis.CONSENT, False),
    ({"cawg.ai_inference": "somethingNew"}, Basis.CONSENT, True),  # unknown use: read as notAllowed
])
def test_training_mining_uses(entries, basis, opt_out):
    (sig,) = training_mining(store(manifests={"m1": manifest(entries)}), basis)
    assert sig.name == "c2pa-training-mining" and sig.opt_out is opt_out
    assert "signed by Alice, issued by Example CA" in sig.detail and "not on a trust list" in sig.detail


def test_training_mining_labels_ingredients_and_invalid_stores():
    (sig,) = training_mining(store(manifests={"m1": manifest({"c2pa.ai_training": "notAllowed"},
                                                             "c2pa.training-mining.v2")}), Basis.CONSENT)
    assert sig.opt_out
    both = {"m1": manifest({"cawg.ai_training": "allowed"}), "m0": manifest({"cawg.ai_training": "notAllowed"})}
    (sig,) = training_mining(store(manifests=both), Basis.CONSENT)
    assert sig.opt_out and "(ingredient)" in sig.value  # an ingredient's notAllowed still binds
    (sig,) = training_mining(store(manifests={"m1": {"assertions": []}}), Basis.CONSENT)
    assert not sig.opt_out and sig.value == "no training-mining assertion"
    (sig,) = training_mining(store("Invalid"), Basis.CONSENT)
    assert sig.name == "c2pa-manifest" and sig.opt_out and sig.value == "invalid: assertion.dataHash.mismatch"
    assert signal_reason(sig) == "c2pa-invalid"


def test_real_manifests_made_with_the_builder_and_a_throwaway_certificate():
    from tests.ingest.site import noise_image, to_jpeg

    image = to_jpeg(noise_image(5))
    assert c2pa_signals(image, Basis.CONSENT, "JPEG") == []  # no manifest: nothing to show
    no = signed(image, {"cawg.ai_generative_training": "notAllowed", "cawg.data_mining": "constrained"})
    (sig,) = c2pa_signals(no, Basis.CONSENT, "JPEG")
    assert sig.opt_out and sig.value == "cawg.ai_generative_training: notAllowed; cawg.data_mining: constrained"
    assert "Throwaway Signer" in sig.detail
    (sig,) = c2pa_signals(tampered(no), Basis.CONSENT, "JPEG")
    assert (sig.name, sig.opt_out) == ("c2pa-manifest", True) and sig.value.startswith("invalid")
    broken = no[:no.find(b"jumb") + 40] + b"\0" * 50 + no[no.find(b"jumb") + 90:]
    (sig,) = c2pa_signals(broken, Basis.CONSENT, "JPEG")
    assert (sig.name, sig.opt_out) == ("c2pa-manifest", True) and sig.value.startswith("unreadable")
    ok = signed(noise_image(6), {"c2pa.ai_training": "allowed"}, "image/png", "c2pa.training-mining")
    assert [s.opt_out for s in c2pa_signals(ok, Basis.CONSENT, "PNG")] == [False]


# --- do-not-train lists -------------------------------------------------------------------------------------
SHA = "ab" * 32


def test_lists_parse_from_csv_and_json_and_bad_entries_say_where():
    entries, meta = parse_list(b"type,value\n# comment\ndomain,Example.ORG\nprefix,https://s.test/a/\n"
                               b"sha256," + SHA.upper().encode() + b"\nphash,00ff00ff00ff00ff\n", "l.csv")
    assert entries == [Entry("domain", "example.org"), Entry("prefix", "https://s.test/a/"), Entry("sha256", SHA),
                       Entry("phash", "00ff00ff00ff00ff")] and meta == {}
    grouped, meta = parse_list(json.dumps({"name": "spawning", "date": "2026-11-30", "domains": ["x.test"],
                                           "entries": [{"type": "sha256", "value": SHA}]}).encode(), "l.json")
    assert meta == {"name": "spawning", "date": "2026-11-30"} and set(grouped) == {Entry("domain", "x.test"),
                                                                                   Entry("sha256", SHA)}
    with pytest.raises(ConfigError, match="line 3: 'nothex' is not a sha256"):
        parse_list(b"type,value\ndomain,x.test\nsha256,nothex\n", "bad.csv")
    with pytest.raises(ConfigError, match="unknown entry type"):
        parse_list(b"colour,red\n", "bad.csv")
    with pytest.raises(ConfigError, match="no entries"):
        parse_list(b"type,value\n", "empty.csv")


def test_the_index_matches_urls_hashes_and_near_perceptual_hashes():
    index = OptOutIndex([("spawning", "2026-11-30", [Entry("domain", "x.test"), Entry("prefix", "https://s.test/a/"),
                                                       Entry("sha256", SHA), Entry("phash", "00ff00ff00ff00ff")])],
                        phash_distance=4)
    m = index.match_url("https://cdn.x.test/p.jpg")
    assert m and str(m.entry) == "domain x.test"
    sig = m.signal()
    assert sig.opt_out and sig.value == "spawning (2026-11-30): domain x.test" and signal_reason(sig) == "do-not-train"
    assert index.match_url("https://s.test/a/b.jpg") and not index.match_url("https://s.test/ab.jpg")
    assert index.match_image(SHA, None).entry.kind == "sha256"
    near = index.match_image("cd" * 32, "00ff00ff00ff00f0")  # 4 bits away
    assert near and near.distance == 4 and "distance 4" in near.signal().value
    assert index.match_image("cd" * 32, "ffffffffffffffff") is None
    assert not OptOutIndex([])
