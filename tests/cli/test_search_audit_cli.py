"""`consentry search`, `consentry audit verify|export`, `consentry token`, `consentry api serve` on the real stack."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from consentry.cli.main import main
from consentry.core.errors import AccessDenied
from consentry.core.settings import load_settings

from ..indexer.corpus import detected, face_model, index_corpus  # noqa: F401  (fixtures)


@pytest.fixture
def cli_settings(stack, monkeypatch):
    """The CLI's environment: the session stack, with a bucket and collections of this test's own."""
    from consentry.clients.objectstore import S3Config, S3ObjectStore

    tag = uuid.uuid4().hex[:10]
    monkeypatch.setenv("CONSENTRY_S3_BUCKET", f"cli-{tag}")
    monkeypatch.setenv("CONSENTRY_MILVUS_COLLECTION", f"cli_faces_{tag}")
    monkeypatch.setenv("CONSENTRY_MILVUS_SUPPRESSION_COLLECTION", f"cli_supp_{tag}")
    s = load_settings()
    S3ObjectStore(S3Config.from_settings(s)).ensure_bucket()
    return s


@pytest.fixture
def indexed(cli_settings, face_model, detected):  # noqa: F811
    from consentry.wiring import face_search

    search = face_search(cli_settings, model_loader=lambda: face_model)
    return index_corpus(search.index, search.provenance, detected, face_model.model_id)


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_search_prints_a_table_or_json_and_is_audit_logged(cli_settings, indexed, photos, capsys):
    rc, out, err = _run(capsys, "search", str(photos["obama.jpg"]), "--purpose", "subject access request",
                        "--case", "SAR-1", "--json")
    assert rc == 0, err
    res = json.loads(out)
    hits = res["query_faces"][0]["hits"]
    want = {f.face_id for n in ("obama.jpg", "obama2.jpg", "obama3.jpg") for f in indexed[n]}
    assert {h["face_id"] for h in hits} == want
    rc, out, err = _run(capsys, "search", str(photos["obama3.jpg"]), "--purpose", "subject access request",
                        "--top-k", "2")
    assert rc == 0, err
    assert "face id" in out and "image URL" in out and "fetched at" in out
    assert "http://photos.test/img/obama3.jpg" in out and "http://photos.test/gallery/obama3.jpg.html" in out
    assert "press-archive" in out and "biden" not in out and "2 match(es)" in err
    from consentry.wiring import audit_log

    entries = [e for e in audit_log(cli_settings).entries() if e["action"] == "search"]
    assert len(entries) == 2 and all(e["actor"].startswith("cli:") for e in entries)
    assert entries[0]["details"]["case"] == "SAR-1" and entries[1]["details"]["top_k"] == 2


def test_search_failures_are_one_line(cli_settings, indexed, photos, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    text = tmp_path / "notes.jpg"
    text.write_text("<html>not a photo</html>")
    for argv, needle in ((["search", str(blank), "--purpose", "check"], "no face"),
                         (["search", str(text), "--purpose", "check"], "HTML"),
                         (["search", str(photos["obama.jpg"]), "--purpose", "x"], "purpose"),
                         (["search", str(photos["obama.jpg"]), "--purpose", "check", "--top-k", "1000"], "top_k"),
                         (["search", str(photos["obama.jpg"]), "--purpose", "check", "--source", 'a" or 1==1'],
                          "source")):
        rc, out, err = _run(capsys, *argv)
        assert rc == 1 and out == "", (argv, out, err)
        assert err.startswith("consentry: error: ") and needle in err and err.count("\n") == 1, err
    rc, _, err = _run(capsys, "search", str(photos["obama.jpg"]))
    assert rc == 2 and "--purpose" in err  # the purpose is required


def test_audit_verify_passes_untouched_and_names_an_edited_entry(cli_settings, indexed, photos, capsys):
    for i in range(3):
        assert _run(capsys, "search", str(photos["biden.jpg"]), "--purpose", f"audit check {i}")[0] == 0
    rc, out, err = _run(capsys, "audit", "verify")
    assert rc == 0 and "audit log OK: 3 entries" in out, err
    rc, out, _ = _run(capsys, "audit", "verify", "--json")
    rep = json.loads(out)
    assert rc == 0 and {k: rep[k] for k in ("ok", "entries", "problem", "entry")} == {
        "ok": True, "entries": 3, "problem": None, "entry": None}
    assert rep["checkpoint_seq"] == 3 and rep["checkpoints"].startswith("file://")  # signed, outside the bucket

    from consentry.wiring import audit_log

    log = audit_log(cli_settings)
    entry = json.loads(log.store.get(log.key(2)))
    entry["details"]["purpose"] = "something else entirely"  # one line edited
    log.store.put(log.key(2), (json.dumps(entry, sort_keys=True) + "\n").encode())
    rc, out, err = _run(capsys, "audit", "verify")
    assert rc == 1 and out == "" and "entry 2" in err and "modified" in err and err.count("\n") == 1
    rc, out, _ = _run(capsys, "audit", "verify", "--json")
    rep = json.loads(out)
    assert rc == 1 and rep["ok"] is False and rep["entry"] == 2


def test_audit_export_writes_json_lines_for_a_time_range(cli_settings, indexed, photos, tmp_path, capsys):
    for i in range(2):
        assert _run(capsys, "search", str(photos["obama.jpg"]), "--purpose", f"export check {i}")[0] == 0
    dest = tmp_path / "audit.jsonl"
    rc, out, err = _run(capsys, "audit", "export", "--output", str(dest))
    assert rc == 0 and "exported 2 entries" in err
    lines = [json.loads(line) for line in dest.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2] and all(e["hash"] and e["prev"] for e in lines)
    assert lines[1]["prev"] == lines[0]["hash"]
    rc, out, _ = _run(capsys, "audit", "export", "--since", "2000-01-01", "--until", "2100-01-01T00:00:00Z")
    assert rc == 0 and len(out.splitlines()) == 2
    rc, out, _ = _run(capsys, "audit", "export", "--since", "2100-01-01", "--json")
    assert rc == 0 and json.loads(out) == {"exported": 0, "output": "-"}
    rc, _, err = _run(capsys, "audit", "export", "--since", "yesterday")
    assert rc == 2 and "ISO 8601" in err


def test_token_create_list_revoke(cli_settings, capsys):
    from consentry.wiring import token_store

    rc, out, err = _run(capsys, "token", "create", "alice", "--role", "searcher")
    assert rc == 0 and "shown only now" in err
    token = out.strip()
    tokens = token_store(cli_settings, cache_ttl_s=0)
    assert tokens.authenticate(token).role.value == "searcher"
    rc, out, _ = _run(capsys, "token", "list", "--json")
    listed = json.loads(out)
    assert rc == 0 and [t["name"] for t in listed] == ["alice"] and token not in out and "hash" not in out
    stored = tokens.store.get(tokens.key(listed[0]["id"])).decode()
    assert token not in stored  # only the hash is at rest
    rc, out, _ = _run(capsys, "token", "revoke", "alice")
    assert rc == 0 and "revoked" in out
    with pytest.raises(AccessDenied) as ei:
        tokens.authenticate(token)
    assert ei.value.status == 401
    rc, out, _ = _run(capsys, "token", "list")
    assert "alice" in out and "searcher" in out
    rc, _, err = _run(capsys, "token", "revoke", "nobody")
    assert rc == 1 and "no token" in err
    rc, _, err = _run(capsys, "token", "create", "Bad Name!", "--role", "searcher")
    assert rc == 1 and "token name" in err
    from consentry.wiring import audit_log

    assert [e["action"] for e in audit_log(cli_settings).entries()] == ["token.create", "token.revoke"]


def test_api_serve_answers_on_loopback(cli_settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "api", "serve", "--port", str(port)],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["ready"] is True, r.text
        assert httpx.get(f"http://127.0.0.1:{port}/v1/audit/verify").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
