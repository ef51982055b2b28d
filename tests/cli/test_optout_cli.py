"""`consentry optout import|list|remove` through the CLI, on the real object store."""

from __future__ import annotations

import json
import uuid

from consentry.cli.main import main


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_import_list_and_remove(stack, capsys, tmp_path):
    name = f"dnt-{uuid.uuid4().hex[:8]}"
    good = tmp_path / "list.csv"
    good.write_text("type,value\n# from the rights holder\ndomain,optout-cli.example\n"
                    f"sha256,{'ef' * 32}\nphash,0123456789abcdef\nprefix,https://photos.example/private/\n")
    rc, out, err = run(capsys, "optout", "import", str(good), "--name", name, "--date", "2026-11-30", "--json")
    assert rc == 0, err
    receipt = json.loads(out)
    assert receipt["list_name"] == name and receipt["entries"] == {"domain": 1, "phash": 1, "prefix": 1, "sha256": 1}
    assert receipt["request_id"].startswith("optout-") and receipt["matched"] == []  # nothing indexed under it here

    rc, out, _ = run(capsys, "optout", "list", "--json")
    mine = next(d for d in json.loads(out) if d["name"] == name)
    assert mine["date"] == "2026-11-30" and len(mine["entries"]) == 4 and mine["receipt"]["request_id"]
    rc, out, _ = run(capsys, "optout", "list")
    assert rc == 0 and name in out and "1 domain" in out

    as_json = tmp_path / "list.json"
    as_json.write_text(json.dumps({"name": f"{name}-j", "date": "2026-12-01", "domains": ["j.example"]}))
    rc, out, err = run(capsys, "optout", "import", str(as_json))
    assert rc == 0 and f"{name}-j (2026-12-01) imported: 1 domain" in out, err

    bad = tmp_path / "bad.csv"
    bad.write_text("type,value\ndomain,fine.example\nsha256,not-a-hash\n")
    rc, _, err = run(capsys, "optout", "import", str(bad), "--name", f"{name}-bad", "--date", "2026-11-30")
    assert rc == 1 and "bad.csv: line 3: 'not-a-hash' is not a sha256" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "optout", "import", str(good), "--name", name, "--date", "30/11/2026")
    assert rc == 1 and "--date" in err
    rc, _, _ = run(capsys, "optout", "import", str(good))
    assert rc == 2  # no --name/--date and none in the file

    for n in (name, f"{name}-j"):
        rc, out, _ = run(capsys, "optout", "remove", n, "--yes")
        assert rc == 0 and "removed" in out
    rc, out, _ = run(capsys, "optout", "list", "--json")
    assert not [d for d in json.loads(out) if d["name"].startswith(name)]
    rc, _, err = run(capsys, "optout", "remove", name, "--yes")
    assert rc == 1 and "no do-not-train list" in err
