"""The whole search call over HTTP at the product defaults: latency, throughput and recall, with the
index-only and exact (numpy) baselines measured in the same run.

    .venv/bin/python bench/api_bench.py --sizes 100000 [--home DIR --keep] [--json-out bench/results/api-100k.json]

A local stack of its own (SeaweedFS, tansu, Milvus 2.3 server; ports from ``--port-base``; ``--home``
with ``--keep`` leaves it up so the 1M corpus is built once for this bench and bench/forget_bench.py),
the synthetic corpus of bench/corpus.py under the default model pack's id and the default index, the
provenance of every face a query can return (searches show only faces their provenance lists), one
searcher token, and one `consentry api serve` process. Measured:

- ``GET /v1/search/face/{id}`` one request at a time: p50/p99 (the whole call: token check, Milvus get
  and search at Bounded consistency, provenance reads in parallel, the audit append);
- the same with 8 concurrent clients: QPS, p99, errors;
- recall of the HTTP results against exact search (the exact top-10 at or above the search threshold);
- ``POST /v1/search/photo`` with a real photo: p50/p99, beside the face model's own time on the photo
  (decode + detect + embed in this process), so the search's share shows;
- same-run baselines: ``FaceIndex.search`` alone (index p50/p99) and numpy brute force over all vectors.

The rate limit (api_rate_limit_per_minute, 120 by default) is raised for the run: it is a policy, not
a cost. Everything else is the product default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from corpus import (
    Dataset,
    add_stack_args,
    concurrently,
    default_model,
    ensure_corpus,
    exact_top,
    face_id,
    numpy_baseline_ms,
    on_own_stack,
    pct,
    product_defaults,
    write_json,
    write_provenance,
)

THRESHOLD = 0.35  # settings.search_threshold
PARAMS = {"purpose": "benchmark of the query API", "case": "BENCH-1"}


class ApiProcess:
    """`consentry api serve` on the bench's stack, bucket and collection."""

    def __init__(self, s, bucket: str, collection: str, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
               "CONSENTRY_HOME": str(s.home), "CONSENTRY_S3_ENDPOINT": s.s3_endpoint, "CONSENTRY_S3_BUCKET": bucket,
               "CONSENTRY_MILVUS_URI": s.milvus_uri, "CONSENTRY_MILVUS_COLLECTION": collection,
               "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": f"{collection}_supp",
               "CONSENTRY_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CONSENTRY_TOPIC_PREFIX": s.topic_prefix,
               "CONSENTRY_API_RATE_LIMIT_PER_MINUTE": "1000000", "CONSENTRY_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen([sys.executable, "-m", "consentry.cli.main", "api", "serve", "--port", str(port)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> ApiProcess:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api serve exited: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("api serve did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sequential(client, ids: list[str]) -> tuple[list[float], list[dict]]:
    lat, bodies = [], []
    for fid in ids:
        t = time.perf_counter()
        r = client.get(f"/v1/search/face/{fid}", params=PARAMS)
        lat.append(time.perf_counter() - t)
        r.raise_for_status()
        bodies.append(r.json())
    return lat, bodies


def concurrent(url: str, headers: dict, ids: list[str], clients: int, per_client: int) -> dict:
    """``clients`` threads, each with its own HTTP connection, searching by face id."""
    import httpx

    local = threading.local()

    def search(fid: str) -> bool:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=url, headers=headers, timeout=60)
        return local.c.get(f"/v1/search/face/{fid}", params=PARAMS).status_code == 200

    items = [ids[i % len(ids)] for i in range(clients * per_client)]
    return concurrently(search, items, clients)


def by_photo(client, model, photo: bytes, n: int) -> dict:
    from consentry.imaging import decode

    model_lat, http_lat = [], []
    client.post("/v1/search/photo", data=PARAMS, files={"photo": ("q.jpg", photo, "image/jpeg")})  # loads the model
    for _ in range(n):
        t = time.perf_counter()
        faces = model.analyze(decode(photo).bgr)
        model_lat.append(time.perf_counter() - t)
    for _ in range(n):
        t = time.perf_counter()
        r = client.post("/v1/search/photo", data=PARAMS, files={"photo": ("q.jpg", photo, "image/jpeg")})
        http_lat.append(time.perf_counter() - t)
        r.raise_for_status()
    return {"faces_in_photo": len(faces), "model_p50_ms": pct(model_lat, 50), "http_p50_ms": pct(http_lat, 50),
            "http_p99_ms": pct(http_lat, 99), "search_share_p50_ms": pct(http_lat, 50) - pct(model_lat, 50)}


def run(s, model, n: int, seed: int, nq: int, photo: bytes, per_client: int) -> dict:
    from dataclasses import replace

    import httpx

    from consentry.clients.objectstore import S3Config, S3ObjectStore
    from consentry.faceindex import FaceIndex
    from consentry.indexer.auth import Role, TokenStore

    d = product_defaults()
    ds = Dataset.make(n, seed)
    x = ds.rows(n)
    corpus = ensure_corpus(s.milvus_uri, x, seed, model.model_id,
                           {k: d[k] for k in ("index_type", "hnsw_m", "hnsw_ef_construction", "ivf_nlist")})
    index = FaceIndex(corpus.index.store, replace(corpus.index.cfg, search_ef=d["search_ef"],
                                                  ivf_nprobe=d["ivf_nprobe"]))
    rows = np.random.default_rng(seed + 3).choice(n, nq, replace=False)
    top_i, top_s = exact_top(x, x[rows], 51)
    bucket = f"apibench-{n}-s{seed}"
    store = S3ObjectStore(replace(S3Config.from_settings(s), bucket=bucket))
    store.ensure_bucket()
    prov_s = write_provenance(store, [int(r) for r in rows] + [int(i) for i in top_i.ravel()], model.model_id)
    print(f"#   provenance for {len(set(rows) | set(top_i.ravel().tolist())):,} faces written in {prov_s:.0f}s",
          flush=True)
    token = TokenStore(store).create("bench", Role.SEARCHER)[1]
    ids = [face_id(int(r)) for r in rows]
    # exact expectation: the top-10 others at or above the threshold
    want = [{face_id(int(i)) for i, sc in [(i, sc) for i, sc in zip(ti, ts) if i != r][:10] if sc >= THRESHOLD}
            for r, ti, ts in zip(rows, top_i, top_s)]
    # index-only baseline for the same queries
    idx_lat = []
    for r in rows:
        t = time.perf_counter()
        index.search([x[r]], model.model_id, 11, THRESHOLD)
        idx_lat.append(time.perf_counter() - t)
    out = {"n": n, "index": corpus.index.cfg.index_type, "build": corpus.index.cfg.index_spec().build_params,
           "search_params": index.cfg.index_spec().search_params, "index_p50_ms": pct(idx_lat, 50),
           "index_p99_ms": pct(idx_lat, 99), "numpy_ms": numpy_baseline_ms(x, x[rows]),
           "insert_s": corpus.insert_s, "index_s": corpus.index_s}
    headers = {"Authorization": f"Bearer {token}"}
    with ApiProcess(s, bucket, corpus.name, _free_port()) as api, \
            httpx.Client(base_url=api.url, headers=headers, timeout=60) as c:
        sequential(c, ids[:20])  # warm-up (connections, caches, the token)
        lat, bodies = sequential(c, ids)
        got = [{h["face_id"] for h in b["query_faces"][0]["hits"]} for b in bodies]
        recall = [len(g & w) / len(w) for g, w in zip(got, want) if w]
        out.update(http_p50_ms=pct(lat, 50), http_p99_ms=pct(lat, 99), http_requests=len(lat),
                   recall_vs_exact=float(np.mean(recall)) if recall else float("nan"),
                   hits_per_query=float(np.mean([len(g) for g in got])))
        out["concurrent"] = concurrent(api.url, headers, ids, 8, per_client)
        out["photo"] = by_photo(c, model, photo, 20)
    return out


def table(results: list[dict]) -> str:
    out = ["| faces | index | HTTP by face id p50 / p99 ms | 8 clients: QPS / p99 ms / errors | recall vs exact "
           "| index alone p50 / p99 ms | numpy exact ms | HTTP by photo p50 / p99 ms | model on the photo p50 ms |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, p = r["concurrent"], r["photo"]
        build = ",".join(f"{k}={v}" for k, v in r["build"].items())
        sp = ",".join(f"{k}={v}" for k, v in r["search_params"].items())
        out.append(f"| {r['n']:,} | {r['index']} {build} {sp} | {r['http_p50_ms']:.1f} / {r['http_p99_ms']:.1f} | "
                   f"{c['qps']:.0f} / {c['p99_ms']:.1f} / {c['errors']} | {r['recall_vs_exact']:.3f} | "
                   f"{r['index_p50_ms']:.1f} / {r['index_p99_ms']:.1f} | {r['numpy_ms']:.1f} | "
                   f"{p['http_p50_ms']:.0f} / {p['http_p99_ms']:.0f} | {p['model_p50_ms']:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_stack_args(ap)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--per-client", type=int, default=100, help="requests per concurrent client")
    ap.add_argument("--photo", default="obama.jpg", help="photo for search by photo (the offline photo set)")
    report.add_args(ap)
    a = ap.parse_args(argv)
    from consentry.demo.photos import ensure_photos

    photo = ensure_photos()[a.photo].read_bytes()
    model = default_model()
    head, results = on_own_stack(a, "apibench", lambda s, n: run(s, model, n, a.seed, a.queries, photo,
                                                                  a.per_client))
    markdown = table(results)
    print("\n" + markdown)
    headline = "; ".join(
        f"{r['n']:,} faces: HTTP search by face id p50 {r['http_p50_ms']:.0f} ms, p99 {r['http_p99_ms']:.0f} ms "
        f"(index alone p99 {r['index_p99_ms']:.0f} ms), {r['concurrent']['qps']:.0f} QPS with 8 clients "
        f"({r['concurrent']['errors']} errors); by photo p50 {r['photo']['http_p50_ms']:.0f} ms of which the model "
        f"{r['photo']['model_p50_ms']:.0f} ms" for r in results)
    write_json(a.json_out, head, results)
    report.write(a, title="Query API: the whole search call over HTTP", markdown=markdown, headline=headline,
                 data=results, stand_in="synthetic clustered 512-d embeddings as the indexed faces (the photo "
                 "searched by photo is real, run through the real model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
