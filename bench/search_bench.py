"""Search latency and recall@10 of the face index, on embedded (milvus-lite) and server (Milvus 2.3) Milvus.

    .venv/bin/python bench/search_bench.py --sizes 100000,1000000 --flavours embedded,server \
        [--index HNSW,IVF_FLAT] [--queries 200] [--port-base 36000]

Data: clustered synthetic 512-d embeddings shaped like face embeddings: identities (about 8 faces
each) whose faces sit around an identity centre with a per-identity spread (same person cosine
~0.55-0.75), identities loosely grouped (different people ~0.0-0.15), every vector L2-normalised.
Queries are fresh faces of indexed identities (another photo of someone in the index).

For each flavour, size and index type the script starts its own Milvus (``--port-base``; or uses
``--uri-embedded`` / ``--uri-server``), inserts the rows through FaceIndex's schema, waits for the
index, and searches one query at a time through ``FaceIndex.search`` (the production call, with the
consent filter in the expression). It reports:

- insert rate, index wait, search latency p50/p99 (Bounded consistency) and p50 with Strong
  consistency (what ``FaceSearch`` uses, so a consent withdrawal applies to the next search);
- recall@10 against exact search (numpy brute force over the same vectors, float32);
- the same-run baseline: numpy brute-force latency for one query over all N vectors.

Run it when nothing else is busy: the numbers are per query, on this machine's cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 512
MODEL = "bench-model"
FACES_PER_ID = 8
CHUNK = 50_000


# ------------------------------------------------------------------------------------------------ data
def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


@dataclasses.dataclass
class Dataset:
    centres: np.ndarray  # identities x DIM
    spread: np.ndarray  # per identity
    seed: int

    @classmethod
    def make(cls, n_ids: int, seed: int = 1, groups: int = 64) -> "Dataset":
        rng = np.random.default_rng(seed)
        group_means = _unit(rng.normal(size=(groups, DIM)))
        group = rng.integers(0, groups, n_ids)
        centres = _unit(0.35 * group_means[group] + rng.normal(size=(n_ids, DIM)) / np.sqrt(DIM))
        spread = rng.uniform(0.55, 0.9, n_ids).astype(np.float32)
        return cls(centres, spread, seed)

    def faces(self, ids: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(len(ids), DIM)).astype(np.float32) / np.sqrt(DIM)
        return _unit(self.centres[ids] + self.spread[ids, None] * noise)

    def rows(self, n: int) -> np.ndarray:
        n_ids = len(self.centres)
        out = np.empty((n, DIM), np.float32)
        for start in range(0, n, CHUNK):
            ids = np.arange(start, min(n, start + CHUNK)) % n_ids
            out[start:start + len(ids)] = self.faces(ids, self.seed * 1_000_003 + start)
        return out

    def queries(self, nq: int) -> np.ndarray:
        ids = np.random.default_rng(self.seed + 7).integers(0, len(self.centres), nq)
        return self.faces(ids, self.seed + 11)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine top-k row indices per query (vectors are unit length: dot product)."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(x), 200_000):
        s = q @ x[start:start + 200_000].T
        i = np.argpartition(-s, k, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, i, 1)], 1)
        best_i = np.concatenate([best_i, i + start], 1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


# ------------------------------------------------------------------------------------------------ Milvus
class Milvus:
    """A Milvus of one flavour for the run: started here (and stopped), or given by URI."""

    def __init__(self, flavour: str, uri: str | None, port: int) -> None:
        self.flavour = flavour
        self.uri = uri or f"http://127.0.0.1:{port}"
        self.stack = None
        self.home: Path | None = None
        if uri is None:
            from consentry.core.settings import load_settings
            from consentry.infra.stack import Stack

            self.home = Path(tempfile.mkdtemp(prefix=f"consentry-bench-{flavour}-"))
            self.stack = Stack(load_settings(home=self.home, milvus_uri=self.uri))

    def __enter__(self) -> "Milvus":
        if self.stack is not None:
            t = time.perf_counter()
            self.stack.start_milvus(self.flavour)
            print(f"# {self.flavour} Milvus up on {self.uri} in {time.perf_counter() - t:.1f}s", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stack is not None:
            self.stack.stop_milvus(self.flavour)
            shutil.rmtree(self.home, ignore_errors=True)


def _rows(x: np.ndarray, start: int, now: int) -> list[dict]:
    return [{"face_id": f"{start + j:064x}", "embedding": v, "image_sha256": "0" * 64, "url_key": "0" * 64,
             "bbox": "[0,0,10,10]", "det_score": 0.9, "source_id": "bench", "job_id": "bench",
             "consent_state": "granted", "model_id": MODEL, "ingested_at": now, "expires_at": now + 10**8}
            for j, v in enumerate(x.tolist())]


def _wait_indexed(client, name: str, n: int, timeout_s: float = 1800) -> float:  # noqa: ANN001
    t = time.perf_counter()
    client.flush(name)
    while time.perf_counter() - t < timeout_s:
        d = client.describe_index(name, "embedding")
        if not d.get("total_rows") or (d.get("pending_index_rows", 0) == 0 and d.get("indexed_rows", 0) >= n):
            break
        time.sleep(2)
    try:  # load the built index (growing segments are searched by brute force)
        client.release_collection(name)
        client.load_collection(name)
    except Exception as exc:  # noqa: BLE001 - milvus-lite may not release; searching still works
        print(f"#   reload skipped: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
    return time.perf_counter() - t


def _pct(a: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(a) * 1000, p))


def run_one(milvus: Milvus, x: np.ndarray, q: np.ndarray, truth: np.ndarray, index_type: str, params: list[int],
            strong_queries: int) -> list[dict]:
    from consentry.clients.vectors import MilvusVectorStore
    from consentry.faceindex import FaceIndex, IndexConfig

    name = f"bench_{uuid.uuid4().hex[:8]}"
    base = IndexConfig(collection=name, suppression_collection=f"{name}_s", index_type=index_type)
    store = MilvusVectorStore(milvus.uri, timeout_s=600)
    index = FaceIndex(store, base)
    index.ensure()
    client = store.client
    now = int(time.time())
    t = time.perf_counter()
    for start in range(0, len(x), 2000):
        client.insert(name, _rows(x[start:start + 2000], start, now))
    insert_s = time.perf_counter() - t
    wait_s = _wait_indexed(client, name, len(x))
    out = []
    try:
        for p in params:
            knob = {"search_ef": p} if index_type == "HNSW" else {"ivf_nprobe": p}
            idx = FaceIndex(store, dataclasses.replace(base, **knob))
            for v in q[:10]:  # warm-up
                idx.search([v], MODEL, 10, -1.0)
            lat, recall = [], []
            for v, want in zip(q, truth):
                t = time.perf_counter()
                hits = idx.search([v], MODEL, 10, -1.0)[0]
                lat.append(time.perf_counter() - t)
                recall.append(len({int(m.face_id, 16) for m in hits} & set(want.tolist())) / 10)
            strong = []
            for v in q[:strong_queries]:
                t = time.perf_counter()
                idx.search([v], MODEL, 10, -1.0, strong=True)
                strong.append(time.perf_counter() - t)
            out.append({"flavour": milvus.flavour, "n": len(x), "index": index_type,
                        "param": f"{'ef' if index_type == 'HNSW' else 'nprobe'}={p}",
                        "insert_rps": len(x) / insert_s, "index_wait_s": wait_s, "p50_ms": _pct(lat, 50),
                        "p99_ms": _pct(lat, 99), "p50_strong_ms": _pct(strong, 50) if strong else float("nan"),
                        "recall10": float(np.mean(recall))})
            print("#   " + _fmt(out[-1]), flush=True)
    finally:
        store.drop(index.spec)
        store.drop(index.suppression)
        store.reset()
    return out


def _fmt(r: dict) -> str:
    return (f"{r['flavour']:<8} {r['n']:>9,} {r['index']:<8} {r['param']:<11} {r['insert_rps']:>9,.0f} "
            f"{r['index_wait_s']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['p50_strong_ms']:>9.1f} "
            f"{r['recall10']:>9.3f} {r.get('brute_ms', float('nan')):>9.1f}")


HEADER = (f"{'flavour':<8} {'faces':>9} {'index':<8} {'param':<11} {'insert/s':>9} {'index s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'p50 strong':>9} {'recall@10':>9} {'numpy ms':>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated collection sizes (e.g. 100000,1000000)")
    ap.add_argument("--flavours", default="embedded,server", help="embedded (milvus-lite) and/or server (Milvus 2.3)")
    ap.add_argument("--index", default="HNSW", help="HNSW and/or IVF_FLAT")
    ap.add_argument("--ef", default="64,128", help="HNSW search ef values to try")
    ap.add_argument("--nprobe", default="16,32", help="IVF_FLAT nprobe values to try")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--strong-queries", type=int, default=30, help="queries timed with Strong consistency")
    ap.add_argument("--max-embedded", type=int, default=200_000, help="skip larger sizes on milvus-lite")
    ap.add_argument("--port-base", type=int, default=36000, help="Milvus on base+540 (embedded), base+530 (server)")
    ap.add_argument("--uri-embedded")
    ap.add_argument("--uri-server")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
          f"python {platform.python_version()}; dim {DIM}, ~{FACES_PER_ID} faces per identity, {a.queries} queries",
          flush=True)
    results = []
    data: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}
    for flavour in a.flavours.split(","):
        port = a.port_base + (540 if flavour == "embedded" else 530)
        with Milvus(flavour, getattr(a, f"uri_{flavour}"), port) as milvus:
            for n in sizes:
                if flavour == "embedded" and n > a.max_embedded:
                    print(f"# skipping {n:,} on milvus-lite (--max-embedded {a.max_embedded:,})", flush=True)
                    continue
                if n not in data:
                    ds = Dataset.make(max(1, n // FACES_PER_ID), a.seed)
                    x, q = ds.rows(n), ds.queries(a.queries)
                    truth = exact_top(x, q, 10)
                    brute = []
                    for v in q[:20]:
                        t = time.perf_counter()
                        s = x @ v
                        np.argpartition(-s, 10)[:10]
                        brute.append(time.perf_counter() - t)
                    data = {n: (x, q, truth, _pct(brute, 50))}  # keep one size in memory
                x, q, truth, brute_ms = data[n]
                for index_type in a.index.split(","):
                    params = [int(p) for p in (a.ef if index_type == "HNSW" else a.nprobe).split(",")]
                    print(f"# {flavour} {n:,} {index_type} ...", flush=True)
                    for r in run_one(milvus, x, q, truth, index_type, params, a.strong_queries):
                        r["brute_ms"] = brute_ms
                        results.append(r)
    print()
    print(HEADER)
    for r in results:
        print(_fmt(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
