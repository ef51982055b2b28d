"""Ingest throughput: images/s through the whole ingest path vs the bare detect+embed loop.

The whole path is one in-process IngestWorker over the real local stack (tansu, SeaweedFS,
milvus-lite, started here on loopback ports from --port-base) fetching from a local HTTP site:
Kafka poll → fetch → decode → dedup (S3) → consent → detect+embed → suppression check (Milvus) →
Milvus upsert → suppression re-check → provenance (S3) → offset commit. The bare loop runs the
same model's ``analyze_batch`` on the same decoded images, in the same batch size, in the same run.
The ratio of the two is the pipeline's overhead.

Every URL serves distinct bytes (a JPEG comment carries a counter), so dedup never skips an image.
A warm-up set (consumer group join, model and connection warm-up) is processed before timing.

    .venv/bin/python bench/ingest_bench.py [--copies 4] [--port-base 34000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg", "astronaut.png")


def tagged_jpeg(jpeg: bytes, tag: str) -> bytes:
    """The same pixels, different bytes: a COM segment right after SOI."""
    payload = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def to_jpeg(path: Path) -> bytes:
    import io

    from PIL import Image

    data = path.read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        return data
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=4, help="distinct-byte copies of each of the 6 photos")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("CONSENTRY_TEST_PORT_BASE", "34000")))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="consentry-bench-"))
    b = args.port_base
    os.environ.update({
        "CONSENTRY_HOME": str(home), "CONSENTRY_S3_ENDPOINT": f"http://127.0.0.1:{b}",
        "CONSENTRY_KAFKA_BOOTSTRAP": f"127.0.0.1:{b + 92}", "CONSENTRY_MILVUS_URI": f"http://127.0.0.1:{b + 540}",
        "CONSENTRY_ALLOW_PRIVATE_NETWORKS": "true", "CONSENTRY_TOPIC_PREFIX": "bench.",
        "CONSENTRY_KAFKA_MAX_POLL_RECORDS": "8", "RAY_USAGE_STATS_ENABLED": "0"})
    os.environ.pop("CONSENTRY_CONFIG", None)

    import onnxruntime

    from consentry.catalog.sources import SourceRegistry
    from consentry.clients.objectstore import S3Config, S3ObjectStore
    from consentry.core.records import Basis, ImageCandidate, Source
    from consentry.core.settings import load_settings
    from consentry.demo.photos import ensure_photos
    from consentry.imaging import decode
    from consentry.infra.stack import Stack
    from consentry.wiring import ingest_worker, prepare_ingest
    from tests.ingest.site import Route, Site
    from tests.ingest.stackhelp import Env

    photos = ensure_photos()
    stack = Stack(load_settings())
    stack.up("embedded")
    site = Site().start()
    try:
        s = load_settings()
        prepare_ingest(s)
        env = Env(s)
        SourceRegistry(S3ObjectStore(S3Config.from_settings(s))).put(
            Source(id="bench", match=f"127.0.0.1:{site.port}", basis=Basis.CONSENT))
        bodies: dict[str, bytes] = {}
        for round_ in ("warm", *[f"c{k}" for k in range(args.copies)]):
            for name in PHOTOS:
                path = f"/{round_}/{name}.jpg"
                bodies[path] = tagged_jpeg(to_jpeg(photos[name]), f"{round_}/{name}")
                site.routes[path] = Route(bodies[path], headers={"Content-Type": "image/jpeg"})

        def cands(prefix: str) -> list[ImageCandidate]:
            return [ImageCandidate(url=site.url(p), page_url=site.url("/"), job_id="bench", source_id="bench")
                    for p in bodies if p.startswith(prefix)]

        worker = ingest_worker(s)
        model = worker.faces.model

        phases: dict[str, float] = {}

        def drain(n: int) -> float:
            done, t0 = 0, None
            phases.clear()
            while done < n:
                t = time.perf_counter()
                out = worker.poll_once()
                if out.records and t0 is None:
                    t0 = t
                done += out.records
                for k, v in out.seconds.items():
                    phases[k] = phases.get(k, 0.0) + v
            return time.perf_counter() - (t0 or time.perf_counter())

        env.produce(cands("/warm/"))
        drain(len(PHOTOS))  # group join, model and connection warm-up
        timed = [c for k in range(args.copies) for c in cands(f"/c{k}/")]
        env.produce(timed)
        time.sleep(0.5)  # records are in the broker before the clock starts
        warm_faces = worker.stats.snapshot()["faces"]
        pipe_s = drain(len(timed))
        faces = worker.stats.snapshot()["faces"] - warm_faces

        decoded = [decode(bodies[c.url.split(str(site.port), 1)[1]]).bgr for c in timed]
        batch = s.kafka_max_poll_records
        model.analyze_batch(decoded[:batch])  # warm
        t = time.perf_counter()
        bare_faces = 0
        for i in range(0, len(decoded), batch):
            bare_faces += sum(len(f) for f in model.analyze_batch(decoded[i:i + batch]))
        bare_s = time.perf_counter() - t
        worker.close()
    finally:
        site.close()
        stack.down()

    n = len(timed)
    pipe_ips, bare_ips = n / pipe_s, n / bare_s
    result = {
        "images": n, "faces_pipeline": faces, "faces_bare": bare_faces,
        "pipeline_s": round(pipe_s, 3), "pipeline_img_s": round(pipe_ips, 2),
        "bare_s": round(bare_s, 3), "bare_img_s": round(bare_ips, 2),
        "overhead_ratio": round(bare_ips / pipe_ips, 2),
        "model": model.model_id, "onnxruntime": onnxruntime.__version__,
        "intra_op_threads": s.model_threads, "inter_op_threads": 1, "allow_spinning": 0,
        "fetch_concurrency": worker_cfg_fetch(), "poll_batch": batch, "det_size": s.model_det_size,
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\ningest bench: {n} images ({len(PHOTOS)} photos x {args.copies} distinct-byte copies), "
          f"model {result['model']}")
    runtime = (f"OpenCV dnn: cv2.setNumThreads({s.model_threads})" if result["model"].startswith("yunet") else
               f"onnxruntime {result['onnxruntime']}: intra_op_num_threads={s.model_threads}, "
               "inter_op_num_threads=1, session.intra_op.allow_spinning=0")
    print(f"{runtime}; det_size={s.model_det_size}; poll batch={batch}; "
          f"fetch threads={result['fetch_concurrency']}; {os.cpu_count()} CPUs\n")
    print(f"{'path':<44}{'images':>8}{'faces':>8}{'seconds':>10}{'images/s':>10}")
    print(f"{'whole ingest (Kafka→fetch→…→Milvus+S3→commit)':<44}{n:>8}{faces:>8}{pipe_s:>10.2f}{pipe_ips:>10.2f}")
    print(f"{'bare detect+embed (analyze_batch)':<44}{n:>8}{bare_faces:>8}{bare_s:>10.2f}{bare_ips:>10.2f}")
    rest = pipe_s - sum(phases.values())
    print("\nwhole path by phase: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items())
          + f", poll+commit {rest:.2f}s  (prepare = fetch+decode+sha256/phash+dedup lookup, 4 threads; "
          "faces = detect+embed+suppression check; write = Milvus upsert+re-check+S3 provenance)")
    print(f"\npipeline overhead: bare / whole = {result['overhead_ratio']:.2f}x "
          f"(whole path keeps {100 * pipe_ips / bare_ips:.0f}% of the model's throughput)")
    return 0


def worker_cfg_fetch() -> int:
    from consentry.ingest.config import IngestConfig

    return IngestConfig.__dataclass_fields__["fetch_concurrency"].default


if __name__ == "__main__":
    sys.exit(main())
