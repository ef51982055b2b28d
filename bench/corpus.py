"""The synthetic face corpus the search, API and forget benches share, and the Milvus it lives in.

Data: clustered synthetic 512-d embeddings shaped like face embeddings: identities (about 8 faces
each) whose faces sit around an identity centre with a per-identity spread (same person cosine
~0.55-0.75), identities loosely grouped (different people ~0.0-0.15), every vector L2-normalised.
Queries are fresh faces of indexed identities (another photo of someone in the index). This is a
stand-in for real face embeddings (none ship offline at this scale): every figure built on it says so.

A corpus collection is named after its size, seed, model id and index build parameters and is kept
in the Milvus data folder (``--home``), so a 1M-face build (20-25 minutes on two cores) is made
once and reused by bench/search_bench.py, bench/api_bench.py and bench/forget_bench.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 512
FACES_PER_ID = 8
CHUNK = 50_000
INSERT_BATCH = 2000  # rows per insert: 50k rows of 512-d floats exceed Milvus server's 64 MiB gRPC limit


# ------------------------------------------------------------------------------------------------ data
def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


@dataclasses.dataclass
class Dataset:
    centres: np.ndarray  # identities x DIM
    spread: np.ndarray  # per identity
    seed: int

    @classmethod
    def make(cls, n: int, seed: int = 1, groups: int = 64) -> Dataset:
        """The identities of a corpus of ``n`` faces."""
        n_ids = max(1, n // FACES_PER_ID)
        rng = np.random.default_rng(seed)
        group_means = unit(rng.normal(size=(groups, DIM)))
        group = rng.integers(0, groups, n_ids)
        centres = unit(0.35 * group_means[group] + rng.normal(size=(n_ids, DIM)) / np.sqrt(DIM))
        spread = rng.uniform(0.55, 0.9, n_ids).astype(np.float32)
        return cls(centres, spread, seed)

    def faces(self, ids: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(len(ids), DIM)).astype(np.float32) / np.sqrt(DIM)
        return unit(self.centres[ids] + self.spread[ids, None] * noise)

    def identity_of(self, rows: np.ndarray) -> np.ndarray:
        return rows % len(self.centres)

    def rows(self, n: int) -> np.ndarray:
        out = np.empty((n, DIM), np.float32)
        for start in range(0, n, CHUNK):
            idx = np.arange(start, min(n, start + CHUNK))
            out[start:start + len(idx)] = self.faces(self.identity_of(idx), self.seed * 1_000_003 + start)
        return out

    def queries(self, nq: int) -> np.ndarray:
        ids = np.random.default_rng(self.seed + 7).integers(0, len(self.centres), nq)
        return self.faces(ids, self.seed + 11)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k (row indices, scores) per query; vectors are unit length (dot product)."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(x), 200_000):
        s = q @ x[start:start + 200_000].T
        i = np.argpartition(-s, k, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, i, 1)], 1)
        best_i = np.concatenate([best_i, i + start], 1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i, best_s


def numpy_baseline_ms(x: np.ndarray, q: np.ndarray, k: int = 10, n: int = 20) -> float:
    """The same-run exact baseline: numpy brute force for one query over all vectors, p50 in ms."""
    lat = []
    for v in q[:n]:
        t = time.perf_counter()
        s = x @ v
        np.argpartition(-s, k)[:k]
        lat.append(time.perf_counter() - t)
    return pct(lat, 50)


def face_id(row: int) -> str:
    """Row ``row``'s face id: 64 hex like a real (sha256) id, its leading digits spread like one (the key
    space is split by prefix when listing), the row number recoverable (:func:`row_of`)."""
    return f"{(row * 2654435761) % 65536:04x}{row:060x}"


def row_of(face_id: str) -> int:
    return int(face_id[4:], 16)


def pct(a: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(a) * 1000, p)) if a else float("nan")


def machine() -> str:
    from run_all import machine as info

    m = info()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{m['cpu']}, {m['cores']} cores, {m['memory']}, load average at start {load} (the cores are shared)"


def concurrently(work, items: list, threads: int) -> dict:
    """``threads`` threads calling ``work`` over ``items`` (each thread its share): QPS, p50/p99 ms, errors."""
    import threading

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    per = max(1, len(items) // threads)

    def run(k: int) -> None:
        mine, bad = [], 0
        for item in items[k * per:(k + 1) * per]:
            t = time.perf_counter()
            try:
                ok = work(item)
            except Exception:
                ok = False
            mine.append(time.perf_counter() - t)
            bad += 0 if ok else 1
        with lock:
            lat.extend(mine)
            errors[0] += bad

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    wall = time.perf_counter() - t
    return {"threads": threads, "requests": len(lat), "qps": len(lat) / wall, "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99), "errors": errors[0]}


def write_json(path, head: str, rows: list) -> None:
    """The run's rows as JSON (bench/results/), with when, the command and the header line."""
    import json
    import sys
    from datetime import UTC, datetime

    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"when": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                               "header": head, "rows": rows}, indent=1, default=str))


def add_stack_args(ap) -> None:
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--port-base", type=int, default=43700, help="S3 on base, Kafka base+92, Milvus base+30")
    ap.add_argument("--home", type=Path, help="the stack's state directory (kept with --keep)")
    ap.add_argument("--keep", action="store_true", help="leave the stack up (the next bench reuses the corpus)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out", type=Path, help="also write the rows as JSON here")


def on_own_stack(a, name: str, run_size) -> tuple[str, list]:
    """Bring the bench's stack up (idempotent), run ``run_size`` per size, stop the stack unless --keep;
    returns the header line and the rows."""
    import json

    from consentry.infra.stack import Stack

    home = a.home or Path(tempfile.mkdtemp(prefix=f"consentry-{name}-"))
    head = f"# {machine()}; product defaults {product_defaults()}; commit {commit()}"
    print(head, flush=True)
    stack = Stack(stack_settings(home, a.port_base))
    t = time.perf_counter()
    stack.up("server")
    print(f"# stack up in {home} in {time.perf_counter() - t:.0f}s", flush=True)
    s = stack_settings(home, a.port_base)  # with the stack's generated credentials
    rows = []
    try:
        for n in (int(v) for v in a.sizes.split(",")):
            print(f"# {n:,} faces …", flush=True)
            rows.append(run_size(s, n))
            print("# " + json.dumps(rows[-1], default=str), flush=True)
    finally:
        if not a.keep:
            stack.down()
    return head, rows


def stack_settings(home: Path, base: int, **extra):
    """Settings of the bench's own local stack (S3 base, Kafka base+92, Milvus 2.3 server base+30)."""
    from consentry.core.settings import load_settings

    return load_settings(home=home, s3_endpoint=f"http://127.0.0.1:{base}", kafka_bootstrap=f"127.0.0.1:{base + 92}",
                         milvus_uri=f"http://127.0.0.1:{base + 30}", topic_prefix="bench.", stack_milvus="server",
                         **extra)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


# ------------------------------------------------------------------------------------------------ Milvus
class Milvus:
    """A Milvus of one flavour for the run: started here (and stopped), or given by URI.

    With ``home`` the data folder is kept (collections survive for the next bench); without, a
    temporary folder is removed at the end.
    """

    def __init__(self, flavour: str, uri: str | None, port: int, home: Path | None = None) -> None:
        self.flavour = flavour
        self.uri = uri or f"http://127.0.0.1:{port}"
        self.stack = None
        self.keep = home is not None
        self.home = home
        if uri is None:
            from consentry.core.settings import load_settings
            from consentry.infra.stack import Stack

            self.home = home or Path(tempfile.mkdtemp(prefix=f"consentry-bench-{flavour}-"))
            self.stack = Stack(load_settings(home=self.home, milvus_uri=self.uri))

    def __enter__(self) -> Milvus:
        if self.stack is not None:
            t = time.perf_counter()
            self.stack.start_milvus(self.flavour)
            print(f"# {self.flavour} Milvus up on {self.uri} in {time.perf_counter() - t:.1f}s", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stack is not None:
            self.stack.stop_milvus(self.flavour)
            if not self.keep:
                shutil.rmtree(self.home, ignore_errors=True)


def corpus_name(n: int, seed: int, model_id: str, build: dict) -> str:
    """A collection name that says what it holds (size, seed, model, index build)."""
    tag = "_".join(f"{k}{v}" for k, v in sorted(build.items()))
    model = "".join(c if c.isalnum() else "_" for c in model_id)[:20]
    return f"bench2_{n}_s{seed}_{model}_{tag}"[:255]  # 2: face ids spread over the key space


def image_url(row: int) -> str:
    """Row ``row``'s image (one face per image in the corpus)."""
    return f"https://bench.example/img/{row}.jpg"


def rows_for(x: np.ndarray, start: int, now: int, model_id: str) -> list[dict]:
    from consentry.core.records import url_key

    return [{"face_id": face_id(start + j), "embedding": v, "image_sha256": "0" * 64,
             "url_key": url_key(image_url(start + j)), "bbox": "[0,0,10,10]", "det_score": 0.9, "source_id": "bench",
             "job_id": "bench", "consent_state": "granted", "model_id": model_id, "ingested_at": now,
             "expires_at": now + 10**8} for j, v in enumerate(x.tolist())]


def provenance_for(rows: list[int], model_id: str):
    """The provenance ingest would have written for these corpus rows (searches show only faces it lists)."""
    from consentry.core.records import Basis, Decision, FaceRef, Provenance

    return [Provenance(url=image_url(r), page_url="https://bench.example/", job_id="bench", source_id="bench",
                       basis=Basis.CONSENT, decision=Decision.INDEX, reason="bench corpus", model_id=model_id,
                       faces=[FaceRef(face_id=face_id(r), bbox=(0, 0, 10, 10), score=0.9)]) for r in rows]


def write_provenance(store, rows: list[int], model_id: str, threads: int = 16) -> float:
    """Write the provenance of ``rows`` in parallel; returns the seconds taken."""
    from concurrent.futures import ThreadPoolExecutor

    from consentry.catalog import ProvenanceStore

    prov = ProvenanceStore(store)
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(prov.put, provenance_for(sorted(set(rows)), model_id)))
    return time.perf_counter() - t


def default_model():
    """The product's default face model pack (its model id names the corpus)."""
    from consentry.core.settings import Settings
    from consentry.faces import ModelConfig, load_model

    return load_model(ModelConfig.from_settings(Settings()))


def wait_indexed(client, name: str, n: int, timeout_s: float = 7200) -> float:
    """Flush, wait until every row is in the built index, then reload (growing data is searched
    through Milvus's interim index, not the built one)."""
    t = time.perf_counter()
    client.flush(name)
    while time.perf_counter() - t < timeout_s:
        d = client.describe_index(name, "embedding")
        if not d.get("total_rows") or (d.get("pending_index_rows", 0) == 0 and d.get("indexed_rows", 0) >= n):
            break
        time.sleep(2)
    try:
        client.release_collection(name)
        client.load_collection(name)
    except Exception as exc:
        print(f"#   reload skipped: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
    return time.perf_counter() - t


@dataclasses.dataclass
class Corpus:
    name: str
    index: object  # FaceIndex
    built: bool  # False: reused from an earlier run
    insert_s: float
    index_s: float


def ensure_corpus(uri: str, x: np.ndarray, seed: int, model_id: str, cfg_overrides: dict) -> Corpus:
    """The corpus collection for ``x`` with this index build: reused when it already holds every row."""
    from consentry.clients.vectors import MilvusVectorStore
    from consentry.faceindex import FaceIndex, IndexConfig

    base = IndexConfig(**cfg_overrides)
    build = dict(base.index_spec().build_params, t=base.index_type)
    name = corpus_name(len(x), seed, model_id, build)
    cfg = dataclasses.replace(base, collection=name, suppression_collection=f"{name}_supp")
    store = MilvusVectorStore(uri, timeout_s=600)
    index = FaceIndex(store, cfg)
    client = store.client
    if client.has_collection(name):
        index.ensure()
        have = index.count()
        if have == len(x):
            print(f"#   reusing {name} ({have:,} faces)", flush=True)
            return Corpus(name, index, False, float("nan"), wait_indexed(client, name, len(x)))
        print(f"#   {name} holds {have:,} faces, not {len(x):,}: rebuilding", flush=True)
        store.drop(index.spec)
        store.drop(index.suppression)
    index.ensure()
    now = int(time.time())
    t = time.perf_counter()
    for start in range(0, len(x), INSERT_BATCH):
        client.insert(name, rows_for(x[start:start + INSERT_BATCH], start, now, model_id))
    insert_s = time.perf_counter() - t
    print(f"#   inserted {len(x):,} rows in {insert_s:.0f}s; building the index …", flush=True)
    index_s = wait_indexed(client, name, len(x))
    print(f"#   index built and loaded in {index_s:.0f}s", flush=True)
    return Corpus(name, index, True, insert_s, index_s)


def product_defaults() -> dict:
    """The index settings a fresh install uses (the defaults in consentry/core/settings.py)."""
    from consentry.core.settings import Settings

    f = Settings.model_fields
    return {"index_type": f["milvus_index_type"].default, "hnsw_m": f["milvus_hnsw_m"].default,
            "hnsw_ef_construction": f["milvus_hnsw_ef_construction"].default,
            "search_ef": f["milvus_search_ef"].default, "ivf_nlist": f["milvus_ivf_nlist"].default,
            "ivf_nprobe": f["milvus_ivf_nprobe"].default, "consistency": f["search_consistency"].default}
