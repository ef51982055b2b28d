"""Index search latency and recall@10 on Milvus (server or milvus-lite), with the exact baseline.

    .venv/bin/python bench/search_bench.py --sizes 100000,1000000 --flavours server \
        [--hnsw 16:200,32:200] [--ef 64,128,256,512] [--ivf 1024] [--nprobe 32,64,128] \
        [--home DIR] [--json-out bench/results/search-1m.json]

Corpus: bench/corpus.py (clustered synthetic 512-d stand-ins for face embeddings; queries are
fresh faces of indexed identities). With no index options the run measures the product defaults
(consentry/core/settings.py: index type, M, efConstruction, ef, consistency); ``--hnsw M:efC`` and
``--ivf NLIST`` add builds to sweep, ``--ef``/``--nprobe`` the search parameters tried on each.

For each flavour, size and build the script uses its own Milvus (``--port-base``, or ``--uri-*``),
inserts the rows through FaceIndex's schema (or reuses the collection from an earlier run with
``--home``), waits for the index and reloads it, and searches one query at a time through
``FaceIndex.search`` (the production call, consent filter in the expression). Per row:

- search latency p50/p99 at Bounded consistency (the product default: erasures reach searches
  through the system-of-record post-filter, see docs/erasure.md) and p50 at Strong (what a search
  waited for before: Milvus's next time tick);
- QPS of 8 concurrent searching threads and their p99;
- recall@10 against exact search (numpy brute force over the same vectors, float32), and recall of
  the exact hits at or above the search threshold (the faces a searcher is shown);
- the same-run exact baseline: numpy brute force for one query over all N vectors.

Run it when nothing else is busy: the numbers are per query, on this machine's cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from corpus import (  # noqa: E402
    FACES_PER_ID,
    Dataset,
    Milvus,
    commit,
    concurrently,
    ensure_corpus,
    exact_top,
    machine,
    numpy_baseline_ms,
    pct,
    product_defaults,
    row_of,
    write_json,
)

MODEL = "bench-model"  # --model-id: the API and forget benches use the real model's id
THRESHOLD = 0.35  # settings.search_threshold


def run_build(milvus: Milvus, x: np.ndarray, q: np.ndarray, truth: np.ndarray, truth_s: np.ndarray, seed: int,
              build: dict, params: list[int], strong_queries: int, concurrency: int, default_knob: dict,
              model_id: str = MODEL) -> list[dict]:
    from consentry.faceindex import FaceIndex

    corpus = ensure_corpus(milvus.uri, x, seed, model_id, build)
    store, base = corpus.index.store, corpus.index.cfg
    out = []
    try:
        for p in params:
            knob = {"search_ef": p} if base.index_type == "HNSW" else {"ivf_nprobe": p}
            idx = FaceIndex(store, dataclasses.replace(base, **knob))
            for v in q[:10]:  # warm-up
                idx.search([v], model_id, 10, -1.0)
            lat, recall, recall_thr = [], [], []
            for v, want, want_s in zip(q, truth, truth_s):
                t = time.perf_counter()
                hits = idx.search([v], model_id, 10, -1.0)[0]
                lat.append(time.perf_counter() - t)
                got = {row_of(m.face_id) for m in hits}
                recall.append(len(got & set(want.tolist())) / 10)
                above = {int(i) for i, s in zip(want, want_s) if s >= THRESHOLD}
                if above:
                    recall_thr.append(len(got & above) / len(above))
            strong = []
            for v in q[:strong_queries]:
                t = time.perf_counter()
                idx.search([v], model_id, 10, -1.0, strong=True)
                strong.append(time.perf_counter() - t)
            conc = concurrently(lambda v, idx=idx: bool(idx.search([v], model_id, 10, -1.0)), list(q), concurrency)
            is_default = all(getattr(idx.cfg, k) == v for k, v in default_knob.items())
            out.append({"flavour": milvus.flavour, "n": len(x), "index": base.index_type,
                        "build": {k: v for k, v in idx.cfg.index_spec().build_params.items()},
                        "param": f"{'ef' if base.index_type == 'HNSW' else 'nprobe'}={p}", "default": is_default,
                        "insert_s": corpus.insert_s, "index_s": corpus.index_s, "p50_ms": pct(lat, 50),
                        "p99_ms": pct(lat, 99), "p50_strong_ms": pct(strong, 50), "qps_8": conc["qps"],
                        "p99_8_ms": conc["p99_ms"], "errors_8": conc["errors"], "recall10": float(np.mean(recall)),
                        "recall_thr": float(np.mean(recall_thr)) if recall_thr else float("nan")})
            print("#   " + _fmt(out[-1]), flush=True)
    finally:
        if not milvus.keep:
            store.drop(corpus.index.spec)
            store.drop(corpus.index.suppression)
        store.reset()
    return out


def _build_str(r: dict) -> str:
    b = r["build"]
    return f"M={b['M']},efC={b['efConstruction']}" if r["index"] == "HNSW" else (
        f"nlist={b['nlist']}" if "nlist" in b else "-")


def _fmt(r: dict) -> str:
    return (f"{r['flavour']:<8} {r['n']:>9,} {r['index']:<8} {_build_str(r):<15} {r['param']:<11} "
            f"{'*' if r['default'] else ' '} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['p50_strong_ms']:>9.1f} "
            f"{r['qps_8']:>7.0f} {r['p99_8_ms']:>8.1f} {r['recall10']:>9.3f} {r['recall_thr']:>9.3f} "
            f"{r.get('brute_ms', float('nan')):>9.1f}")


def table(results: list[dict]) -> str:
    """The rows as a markdown table (the product default marked)."""
    out = ["| Milvus | faces | index build | search | default | p50 ms | p99 ms | p50 ms Strong | QPS, 8 threads | "
           "p99 ms, 8 threads | recall@10 | recall of hits >= threshold | numpy exact ms |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {'Milvus 2.3' if r['flavour'] == 'server' else 'milvus-lite'} | {r['n']:,} | {r['index']} "
                   f"{_build_str(r)} | {r['param']} | {'**yes**' if r['default'] else ''} | {r['p50_ms']:.1f} | "
                   f"{r['p99_ms']:.1f} | {r['p50_strong_ms']:.0f} | {r['qps_8']:.0f} | {r['p99_8_ms']:.1f} | "
                   f"{r['recall10']:.3f} | {r['recall_thr']:.3f} | {r.get('brute_ms', float('nan')):.1f} |")
    return "\n".join(out)


HEADER = (f"{'flavour':<8} {'faces':>9} {'index':<8} {'build':<15} {'param':<11} d {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p50 strong':>9} {'QPS x8':>7} {'p99 x8':>8} {'recall@10':>9} {'rec>=thr':>9} {'numpy ms':>9}")


def main(argv: list[str] | None = None) -> int:
    d = product_defaults()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated collection sizes (e.g. 100000,1000000)")
    ap.add_argument("--flavours", default="server", help="embedded (milvus-lite) and/or server (Milvus 2.3)")
    ap.add_argument("--hnsw", default=None, help="HNSW builds M:efConstruction to sweep (default: the product's)")
    ap.add_argument("--ivf", default="", help="IVF_FLAT builds (nlist values) to sweep")
    ap.add_argument("--ef", default=None, help="HNSW search ef values (default: the product's)")
    ap.add_argument("--nprobe", default="32,64,128", help="IVF_FLAT nprobe values")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--strong-queries", type=int, default=30, help="queries timed with Strong consistency")
    ap.add_argument("--concurrency", type=int, default=8, help="threads for the QPS column")
    ap.add_argument("--max-embedded", type=int, default=200_000, help="skip larger sizes on milvus-lite")
    ap.add_argument("--port-base", type=int, default=43700, help="Milvus on base+40 (embedded), base+30 (server)")
    ap.add_argument("--home", type=Path, help="keep Milvus data here and reuse corpus collections across runs")
    ap.add_argument("--uri-embedded")
    ap.add_argument("--uri-server")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model-id", default=MODEL, help="model id of the corpus rows (the API and forget benches use "
                    "the default pack's: pass it to share their collection)")
    ap.add_argument("--json-out", type=Path, help="also write the rows as JSON here")
    report.add_args(ap)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    builds: list[dict] = []
    if a.hnsw is None and not a.ivf:
        builds.append({"index_type": d["index_type"], "hnsw_m": d["hnsw_m"],
                       "hnsw_ef_construction": d["hnsw_ef_construction"], "ivf_nlist": d["ivf_nlist"]})
    for spec in (a.hnsw or "").split(","):
        if spec:
            m, efc = spec.split(":")
            builds.append({"index_type": "HNSW", "hnsw_m": int(m), "hnsw_ef_construction": int(efc)})
    builds += [{"index_type": "IVF_FLAT", "ivf_nlist": int(n)} for n in a.ivf.split(",") if n]
    efs = [int(e) for e in (a.ef or str(d["search_ef"])).split(",")]
    nprobes = [int(p) for p in a.nprobe.split(",")]
    default_knob = {"index_type": d["index_type"], "hnsw_m": d["hnsw_m"],
                    "hnsw_ef_construction": d["hnsw_ef_construction"],
                    **({"search_ef": d["search_ef"]} if d["index_type"] == "HNSW" else
                       {"ivf_nlist": d["ivf_nlist"], "ivf_nprobe": d["ivf_nprobe"]})}
    head = (f"# {machine()}; dim 512, ~{FACES_PER_ID} faces per identity (synthetic stand-ins), {a.queries} "
            f"queries; product defaults {d}; commit {commit()}")
    print(head, flush=True)
    print("#   " + HEADER, flush=True)
    results = []
    data: dict[int, tuple] = {}
    for flavour in a.flavours.split(","):
        port = a.port_base + (40 if flavour == "embedded" else 30)
        home = a.home / flavour if a.home else None
        with Milvus(flavour, getattr(a, f"uri_{flavour}"), port, home) as milvus:
            for n in sizes:
                if flavour == "embedded" and n > a.max_embedded:
                    print(f"# skipping {n:,} on milvus-lite (--max-embedded {a.max_embedded:,})", flush=True)
                    continue
                if n not in data:
                    ds = Dataset.make(n, a.seed)
                    x, q = ds.rows(n), ds.queries(a.queries)
                    truth, truth_s = exact_top(x, q, 10)
                    data = {n: (x, q, truth, truth_s, numpy_baseline_ms(x, q))}  # keep one size in memory
                x, q, truth, truth_s, brute_ms = data[n]
                for build in builds:
                    params = efs if build["index_type"] == "HNSW" else nprobes
                    print(f"# {flavour} {n:,} {build} {params} ...", flush=True)
                    for r in run_build(milvus, x, q, truth, truth_s, a.seed, build, params, a.strong_queries,
                                       a.concurrency, default_knob, a.model_id):
                        r["brute_ms"] = brute_ms
                        results.append(r)
    markdown = table(results)
    print("\n" + markdown)
    defaults = [r for r in results if r["default"]]
    headline = "; ".join(
        f"{r['n']:,} faces on {'Milvus 2.3' if r['flavour'] == 'server' else 'milvus-lite'}: index p50 "
        f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, recall@10 {r['recall10']:.3f} (numpy exact "
        f"{r['brute_ms']:.0f} ms)" for r in defaults) or "no product-default row in this run"
    print(f"\nproduct defaults: {headline}")
    write_json(a.json_out, head, results)
    report.write(a, title="Search: index latency and recall", markdown=markdown, headline=headline, data=results,
                 stand_in="synthetic clustered 512-d embeddings (no labelled face set ships offline at this size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
