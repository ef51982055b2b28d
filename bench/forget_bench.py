"""Time to forget one person (erasure by photo) in a face collection of 100k or 1M faces.

    .venv/bin/python bench/forget_bench.py --sizes 100000 --flavours embedded,server [--people 5]

For each flavour and size: a Milvus of its own (started here, like bench/search_bench.py), N
clustered synthetic 512-d faces (identities of ~8 faces), HNSW index. Then, for several people,
``Eraser.forget_photo`` with a fresh face of that person as the reference: suppression entry,
search rounds at the erasure threshold (Strong consistency), delete, provenance redaction,
receipt, audit entry, verification search. Printed per size: the median and max time to forget
one person, the faces found against the person's true number of faces (erasure completeness),
and the same-run baseline of one plain consent-filtered search.

Provenance, receipts and the audit log go to the in-memory object store here (the S3 part is a
few small objects per matched image); the Milvus part is what grows with the collection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_bench import DIM, MODEL, Dataset, Milvus, _rows, _wait_indexed  # noqa: E402

from consentry.catalog import ProvenanceStore  # noqa: E402
from consentry.clients.vectors import MilvusVectorStore  # noqa: E402
from consentry.core.records import Basis, Decision, FaceRef, Provenance  # noqa: E402
from consentry.faceindex import FaceIndex, IndexConfig  # noqa: E402
from consentry.faces import DetectedFace  # noqa: E402
from consentry.indexer.audit import AuditLog  # noqa: E402
from consentry.indexer.erasure import Eraser  # noqa: E402
from tests.fakes import MemoryObjectStore  # noqa: E402

INSERT_BATCH = 2000  # rows per insert: 50k rows of 512-d floats exceed Milvus server's 64 MiB gRPC limit


class OneFace:
    """A stand-in face model: the reference 'photo' is the embedding itself."""

    model_id = MODEL
    dim = DIM

    def __init__(self) -> None:
        self.embedding = np.zeros(DIM, np.float32)

    def analyze(self, _bgr) -> list[DetectedFace]:  # noqa: ANN001
        return [DetectedFace(bbox=(0, 0, 10, 10), score=0.99, embedding=self.embedding)]


def run(flavour: str, n: int, people: int, port: int, threshold: float) -> dict:
    data = Dataset.make(max(1, n // 8))
    x = data.rows(n)
    n_ids = len(data.centres)
    with Milvus(flavour, None, port) as milvus:
        cfg = IndexConfig(collection="forget_bench", suppression_collection="forget_bench_supp")
        index = FaceIndex(MilvusVectorStore(milvus.uri), cfg)
        index.ensure()
        client = index.store.client
        now = int(time.time())
        t = time.perf_counter()
        for start in range(0, n, INSERT_BATCH):
            client.insert(cfg.collection, _rows(x[start:start + INSERT_BATCH], start, now))
        insert_s = time.perf_counter() - t
        index_s = _wait_indexed(client, cfg.collection, n)
        store = MemoryObjectStore()
        prov = ProvenanceStore(store)
        model = OneFace()
        eraser = Eraser(index, prov, store, AuditLog(store), erasure_threshold=threshold,
                        model_loader=lambda: model)
        targets = np.random.default_rng(5).choice(n_ids, people, replace=False)
        times, found, truth = [], [], []
        search_ms = []
        for k, pid in enumerate(targets):
            rows = np.flatnonzero(np.arange(n) % n_ids == pid)
            # the person's images get provenance, as ingest would have written it
            for r in rows:
                fid = f"{r:064x}"
                prov.put(Provenance(url=f"https://bench.example/{r}.jpg", page_url="https://bench.example/",
                                    job_id="bench", source_id="bench", basis=Basis.CONSENT, decision=Decision.INDEX,
                                    reason="allowed", model_id=MODEL, faces=[FaceRef(face_id=fid, bbox=(0, 0, 10, 10),
                                                                                     score=0.9)]))
            model.embedding = data.faces(np.array([pid]), seed=900 + k)[0]
            t = time.perf_counter()
            index.search([model.embedding], MODEL, 10, 0.0)
            search_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            receipt = eraser.forget_photo(_PNG, actor="bench")  # any decodable photo: OneFace ignores pixels
            times.append(time.perf_counter() - t)
            found.append(len(set(receipt.matched_face_ids) & {f"{r:064x}" for r in rows}))
            truth.append(len(rows))
            assert receipt.verification["ok"], receipt.verification
        return {"flavour": flavour, "faces": n, "insert_s": insert_s, "index_s": index_s,
                "forget_p50_s": statistics.median(times), "forget_max_s": max(times),
                "found": sum(found), "truth": sum(truth), "search_p50_ms": statistics.median(search_ms)}


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


_PNG = _png()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--flavours", default="embedded,server")
    ap.add_argument("--people", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=0.45)
    ap.add_argument("--port-base", type=int, default=36600)
    args = ap.parse_args()
    results = []
    for flavour in args.flavours.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"# {flavour} Milvus, {n} faces …", flush=True)
            results.append(run(flavour, n, args.people, args.port_base + (0 if flavour == "embedded" else 10),
                               args.threshold))
            print(f"# {results[-1]}", flush=True)
    print("\n| Milvus | faces | forget one person p50 s | max s | faces erased / person's faces | "
          "one search p50 ms (same run) | insert s | index s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['flavour']} | {r['faces']} | {r['forget_p50_s']:.2f} | {r['forget_max_s']:.2f} | "
              f"{r['found']}/{r['truth']} | {r['search_p50_ms']:.1f} | {r['insert_s']:.0f} | {r['index_s']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
