"""Changing a source's basis to none, or removing it, erases its faces (and is audit-logged)."""

import json

from .conftest import cli

SITE = "http://127.0.0.1:8/"


def test_basis_to_none_and_remove_trigger_erasure(real_world, settings, photos):
    w = real_world
    for name, match in (("fam", SITE + "fam/"), ("press", SITE + "press/")):
        res = cli(w, settings, "source", "add", name, "--match", match, "--basis", "consent", "--evidence", "DOC-1")
        assert res.returncode == 0, res.stderr
    w.add(SITE + "fam/t1.jpg", photos["t1.jpg"].read_bytes(), source="fam")
    w.add(SITE + "press/obama.jpg", photos["obama.jpg"].read_bytes(), source="press")
    w.add(SITE + "press/biden.jpg", photos["biden.jpg"].read_bytes(), source="press")
    assert (w.index.count(source_id="fam"), w.index.count(source_id="press")) == (6, 2)

    res = cli(w, settings, "source", "add", "fam", "--match", SITE + "fam/", "--basis", "none", "--replace", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["basis"] == "none" and out["erasure"]["deleted"]["milvus_faces"] == 6
    assert (w.index.count(source_id="fam"), w.index.count(source_id="press")) == (0, 2)

    res = cli(w, settings, "source", "remove", "press", "--yes", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["erasure"]["deleted"]["milvus_faces"] == 2
    assert w.index.count() == 0 and w.provenance.keys_for_source("press") == []
    assert cli(w, settings, "source", "show", "press").returncode == 1

    changes = [e for e in w.audit.entries() if e["action"] == "consent-change"]
    assert [(c["details"]["source"], c["details"]["basis_after"]) for c in changes] == [
        ("fam", "consent"), ("press", "consent"), ("fam", "none"), ("press", None)]
    assert w.audit.verify().ok
