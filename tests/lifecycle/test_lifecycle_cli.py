"""forget / explain / retention through the real CLI process, on the real servers."""

import json
import time

from .conftest import cli

SITE = "http://127.0.0.1:8/photos/"


def test_forget_explain_and_sweep_cli(real_world, settings, photos):
    w = real_world
    w.add(SITE + "obama.jpg", photos["obama.jpg"].read_bytes())
    w.add(SITE + "obama2.jpg", photos["obama2.jpg"].read_bytes())
    w.add(SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), expires_in=60)

    res = cli(w, settings, "forget", str(photos["obama3.jpg"]), "--json")
    assert res.returncode == 0, res.stderr
    receipt = json.loads(res.stdout)
    assert len(receipt["matched_face_ids"]) == 2 and receipt["verification"]["ok"]
    assert w.index.count() == 1

    res = cli(w, settings, "explain", SITE + "obama2.jpg")
    assert res.returncode == 0, res.stderr
    assert "INDEX" in res.stdout and "faces erased:  1" in res.stdout and receipt["request_id"] in res.stdout

    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 3600))
    res = cli(w, settings, "retention", "sweep", "--as-of", later, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["expired_faces"] == 1 and w.index.count() == 0

    res = cli(w, settings, "explain", "http://127.0.0.1:8/never-seen.jpg")
    assert res.returncode == 1 and "no provenance" in res.stderr

    res = cli(w, settings, "forget", "--source", "a", "--url", "http://x/")
    assert res.returncode == 2


def test_the_sweep_cli_applies_each_registered_source_retention(real_world, settings, photos):
    from consentry.catalog import SourceRegistry
    from consentry.core.records import Source

    w = real_world
    SourceRegistry(w.store).put(Source.build(id="short", match="127.0.0.1:8", basis="consent", retention_days=30))
    day = 86400
    old = w.add(SITE + "obama.jpg", photos["obama.jpg"].read_bytes(), source="short", expires_in=365 * day,
                now=time.time() - 40 * day)
    kept = w.add(SITE + "biden.jpg", photos["biden.jpg"].read_bytes(), source="short", expires_in=365 * day)
    res = cli(w, settings, "retention", "sweep")
    assert res.returncode == 0, res.stderr
    assert "deleted 1 expired faces (1 past a shortened source retention)" in res.stdout
    assert w.index.get(old.face_ids) == [] and len(w.index.get(kept.face_ids)) == 1
