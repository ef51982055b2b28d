"""Forget one person (erasure by photo) on the real path, in a face collection of 100k or 1M faces.

    .venv/bin/python bench/forget_bench.py --sizes 100000 [--home DIR --keep] [--json-out bench/results/forget-1m.json]

Real path: a local stack of its own (SeaweedFS S3, tansu Kafka, Milvus 2.3 server; ``--home`` with
``--keep`` shares it and the corpus with bench/api_bench.py), the default face model run on a real
photo, ``wiring.eraser`` as `consentry forget` builds it (the erasure event on Kafka, the audit append
with its signed checkpoint, receipts in S3, the retry policy).

The corpus is bench/corpus.py's synthetic faces (under the default model's id) plus, per person, the
faces of their other real photos and 20 synthetic faces around their reference (cosine 0.55-0.8, as
other photos of the same person would be), each with provenance and a crop. Per person, timed apart:

- request → receipt (``forget_photo``: model on the photo, suppression entry, Strong search rounds,
  provenance redaction, crop deletion, Milvus delete, receipt, audit append, Kafka event);
- the exact verification (a full scan of every stored embedding of the model, no index);
- the physical purge (flush + compaction until no deleted row is left in a segment).

Printed: those times, the faces erased against the person's planted faces, and the same-run
baselines (one plain search; the model alone on the photo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from corpus import (
    Dataset,
    add_stack_args,
    default_model,
    ensure_corpus,
    on_own_stack,
    product_defaults,
    unit,
    write_json,
)

#: person -> (reference photo, their other photos planted in the index)
PEOPLE = {"obama": ("obama2.jpg", ["obama.jpg", "obama3.jpg"]), "biden": ("biden.jpg", []),
          "astronaut": ("astronaut.png", [])}
VARIANTS = 20


def plant(index, provenance, store, model, person: str, photos: dict, rng) -> tuple[set[str], np.ndarray]:
    """Write the person's faces (their other real photos and synthetic variants) with provenance and crops."""
    from consentry.core.records import Basis, Decision, Face, FaceRef, Provenance, sha256_hex, url_key
    from consentry.imaging import decode

    ref_photo, others = PEOPLE[person]
    ref = model.analyze(decode(photos[ref_photo].read_bytes()).bgr)[0].embedding
    embs = [model.analyze(decode(photos[p].read_bytes()).bgr)[0].embedding for p in others]
    for target in rng.uniform(0.55, 0.8, VARIANTS):  # a unit vector at cosine `target` from the reference
        z = rng.normal(size=ref.shape[0])
        z -= (z @ ref) * ref
        embs.append(unit(target * ref + np.sqrt(1 - target ** 2) * unit(z)))
    now = int(time.time())
    ids = set()
    for k, e in enumerate(embs):
        url = f"https://bench.example/people/{person}/{k}.jpg"
        sha = sha256_hex(url)
        face = Face(face_id=Face.make_id(sha, (0, 0, 10, 10), model.model_id), embedding=np.asarray(e).tolist(),
                    image_sha256=sha, url_key=url_key(url), bbox=(0, 0, 10, 10), det_score=0.9, source_id="bench",
                    job_id="bench", model_id=model.model_id, ingested_at=now, expires_at=now + 86400)
        index.upsert([face])
        store.put(provenance.crop_key(face.face_id), b"\xff\xd8 crop", content_type="image/jpeg")
        provenance.put(Provenance(url=url, page_url="https://bench.example/people/", job_id="bench",
                                  source_id="bench", basis=Basis.CONSENT, sha256=sha, decision=Decision.INDEX,
                                  reason="bench", model_id=model.model_id,
                                  faces=[FaceRef(face_id=face.face_id, bbox=(0, 0, 10, 10), score=0.9)]))
        ids.add(face.face_id)
    return ids, ref


def run(s, model, n: int, seed: int, people: list[str]) -> dict:
    from consentry import wiring
    from consentry.demo.photos import ensure_photos
    from consentry.imaging import decode

    d = product_defaults()
    x = Dataset.make(n, seed).rows(n)
    corpus = ensure_corpus(s.milvus_uri, x, seed, model.model_id,
                           {k: d[k] for k in ("index_type", "hnsw_m", "hnsw_ef_construction", "ivf_nlist")})
    del x
    bucket = f"forgetbench-{n}-s{seed}-{int(time.time())}"
    s = s.model_copy(update={"s3_bucket": bucket, "milvus_collection": corpus.name,
                             "milvus_suppression_collection": f"{corpus.name}_supp"})
    store = wiring.object_store(s)
    store.ensure_bucket()
    wiring.broker(s).ensure_topics([s.topic_erasures])
    eraser = wiring.eraser(s, store=store, index=corpus.index, model_loader=lambda: model)
    published = []
    publish = eraser.publish
    eraser.publish = lambda ev: (publish(ev), published.append(ev.request_id))
    photos = ensure_photos()
    rng = np.random.default_rng(seed + 99)
    rows = []
    for person in people:
        planted, ref = plant(corpus.index, eraser.provenance, store, model, person, photos, rng)
        photo = photos[PEOPLE[person][0]].read_bytes()
        t = time.perf_counter()
        model.analyze(decode(photo).bgr)
        model_s = time.perf_counter() - t
        t = time.perf_counter()
        corpus.index.search([ref], model.model_id, 10, 0.35)
        search_s = time.perf_counter() - t
        t = time.perf_counter()
        r = eraser.forget_photo(photo, actor="bench", reference=f"BENCH-{person}")
        receipt_s = time.perf_counter() - t
        done = eraser.finish(r.request_id)
        m = done.purge.get("milvus", {})
        rows.append({"person": person, "receipt_s": receipt_s, "verify_s": done.timings.get("verify_s"),
                     "compared": done.verification.get("compared"), "caught": done.verification.get("caught"),
                     "verified": done.verification.get("ok"), "purge_s": done.timings.get("purge_s"),
                     "purge_state": m.get("state"), "deleted_rows_in_segments": m.get("deleted_rows_in_segments"),
                     "erased": len(set(done.matched_face_ids) & planted), "planted": len(planted),
                     "also_erased": len(set(done.matched_face_ids) - planted),
                     "crops_deleted": done.deleted.get("crops_deleted"), "event_published": r.request_id in published,
                     "model_s": model_s, "one_search_ms": search_s * 1000})
        print("#   " + json.dumps(rows[-1]), flush=True)
    eraser.audit.flush()
    return {"n": n, "index": corpus.index.cfg.index_type, "build": corpus.index.cfg.index_spec().build_params,
            "insert_s": corpus.insert_s, "index_s": corpus.index_s, "people": rows,
            "audit_verify_ok": eraser.audit.verify().ok}


def table(results: list[dict]) -> str:
    out = ["| faces | request → receipt p50 / max s | exact verification s (embeddings compared) | "
           "compaction s (state) | faces erased / planted | model on the photo s | one search ms |",
           "|---|---|---|---|---|---|---|"]
    for r in results:
        p = r["people"]
        rec = [x["receipt_s"] for x in p]
        states = ", ".join(sorted({str(x["purge_state"]) for x in p}))
        out.append(f"| {r['n']:,} | {statistics.median(rec):.2f} / {max(rec):.2f} | "
                   f"{statistics.median(x['verify_s'] for x in p):.1f} ({p[0]['compared']:,}) | "
                   f"{statistics.median(x['purge_s'] for x in p):.1f} ({states}) | "
                   f"{sum(x['erased'] for x in p)}/{sum(x['planted'] for x in p)} | "
                   f"{statistics.median(x['model_s'] for x in p):.2f} | "
                   f"{statistics.median(x['one_search_ms'] for x in p):.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_stack_args(ap)
    ap.add_argument("--people", default=",".join(PEOPLE), help=f"comma-separated, of {sorted(PEOPLE)}")
    report.add_args(ap)
    a = ap.parse_args(argv)
    model = default_model()
    head, results = on_own_stack(a, "forgetbench", lambda s, n: run(s, model, n, a.seed, a.people.split(",")))
    markdown = table(results)
    print("\n" + markdown)
    headline = "; ".join(
        f"{r['n']:,} faces on Milvus 2.3: request to receipt p50 "
        f"{statistics.median(x['receipt_s'] for x in r['people']):.2f} s (real S3, model, Kafka, audit); exact "
        f"verification {statistics.median(x['verify_s'] for x in r['people']):.0f} s, compaction "
        f"{statistics.median(x['purge_s'] for x in r['people']):.0f} s after it" for r in results)
    write_json(a.json_out, head, results)
    report.write(a, title="Forget one person (erasure by photo), real path", markdown=markdown, headline=headline,
                 data=results, stand_in="the indexed crowd is synthetic clustered embeddings; each person's faces are "
                 "their real photos' embeddings plus synthetic variants around them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
