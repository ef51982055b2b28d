"""Soak: the ingest pipeline over a few thousand synthetic images while random faults hit it.

A stack of its own (ports from --port-base), a local image site, N candidates (mostly good images,
some with X-Robots-Tag: noai, some that are not images), and `consentry ingest run` processes that
are SIGKILLed and restarted, while tansu is restarted, SeaweedFS is stopped for a few seconds, and
Milvus (milvus-lite) is restarted, at random. At the end, every candidate must be accounted for
exactly once: indexed, refused with a reason, or in the DLQ; no face twice. Prints the accounting.

    .venv/bin/python bench/soak.py --images 2000 --faults 12 --seed 7

Not part of the test suite (it takes minutes); the same accounting runs in tests/faults/.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consentry.core.settings import load_settings
from consentry.infra.stack import Stack
from tests.conftest import stack_env
from tests.faults.conftest import Run
from tests.ingest.site import Route, Site, noise_image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--faults", type=int, default=10, help="how many faults to inject")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port-base", type=int, default=36000)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    home = Path(tempfile.mkdtemp(prefix="consentry-soak-"))
    env = {**stack_env(home, args.port_base), "CONSENTRY_MODEL_PACK": "tests.fakes:HashFaceModel",
           "CONSENTRY_RETRY_MAX_ATTEMPTS": "3", "CONSENTRY_RETRY_BASE_DELAY_S": "0.2",
           "CONSENTRY_RETRY_MAX_DELAY_S": "1.0", "CONSENTRY_KAFKA_REQUEST_TIMEOUT_MS": "10000",
           "CONSENTRY_KAFKA_MAX_POLL_RECORDS": "32"}
    os.environ.update(env)
    stack = Stack(load_settings())
    print(f"soak: {args.images} images, {args.faults} faults, seed {args.seed}, state in {home}", flush=True)
    stack.up("embedded")
    site = Site().start()
    try:
        s = load_settings(topic_prefix="soak.", milvus_collection="soak_faces",
                          milvus_suppression_collection="soak_suppressed", kafka_consumer_group="soak",
                          s3_bucket="soak")
        run = Run({**os.environ, "CONSENTRY_TOPIC_PREFIX": "soak.", "CONSENTRY_MILVUS_COLLECTION": "soak_faces",
                   "CONSENTRY_MILVUS_SUPPRESSION_COLLECTION": "soak_suppressed",
                   "CONSENTRY_KAFKA_CONSUMER_GROUP": "soak", "CONSENTRY_S3_BUCKET": "soak"}, s, site)
        run.store.ensure_bucket()
        n_noai, n_bad = args.images // 20, args.images // 20
        run.populate(good=args.images - n_noai - n_bad, noai=n_noai, bad=n_bad, delay_s=0.0)
        for k, (path, route) in enumerate(list(site.routes.items())):  # small distinct images: the soak
            if path.startswith(("/good/", "/noai/")):                     # is about the pipeline
                site.routes[path] = Route(noise_image(100000 + k, size=48), headers=route.headers)
        run.produce()
        print(f"soak: produced {len(run.candidates)} candidates", flush=True)

        procs: list[subprocess.Popen] = [run.ingest("--workers", "2")]
        faults: list[str] = []
        done = threading.Event()
        t0 = time.monotonic()

        def injector() -> None:
            for k in range(args.faults):
                if done.wait(rng.uniform(4, 12)):
                    return
                kind = rng.choice(["kill-ingest", "restart-broker", "s3-outage", "restart-milvus"])
                faults.append(kind)
                print(f"soak: fault {k + 1}/{args.faults} at +{time.monotonic() - t0:.0f}s: {kind} "
                      f"(progress {run.progress()}/{len(run.candidates)})", flush=True)
                if kind == "kill-ingest":
                    procs[-1].kill()
                    procs[-1].wait(30)
                    procs.append(run.ingest("--workers", "2"))
                elif kind == "restart-broker":
                    stack.stop_service("tansu", timeout_s=3)
                    time.sleep(rng.uniform(1, 5))
                    stack.start_service("tansu")
                elif kind == "s3-outage":
                    stack.stop_service("seaweedfs")
                    time.sleep(rng.uniform(2, 10))
                    stack.start_service("seaweedfs")
                else:
                    stack.stop_service("milvus")
                    time.sleep(rng.uniform(1, 4))
                    stack.start_service("milvus")

        inj = threading.Thread(target=injector, daemon=True)
        inj.start()
        # while faults are injected, keep an ingest process running (it may exit when idle)
        while inj.is_alive():
            if procs[-1].poll() is not None:
                procs.append(run.ingest("--workers", "2"))
            time.sleep(1)
        # then drain: every candidate must end up with a provenance record
        for _ in range(5):
            procs[-1].wait(args.timeout)
            if run.progress() >= len(run.candidates):
                break
            procs.append(run.ingest("--workers", "2"))
        done.set()
        elapsed = time.monotonic() - t0
        totals = run.account()
        rows = [("candidates", totals["candidates"]), ("indexed", totals["indexed"]),
                ("refused (with reason)", totals["refused"]), ("dead-letter queue", totals["dlq"]),
                ("indexed + refused + DLQ", totals["indexed"] + totals["refused"] + totals["dlq"]),
                ("faces in Milvus (distinct)", totals["faces"]), ("faults injected", len(faults)),
                ("ingest processes started", len(procs)), ("seconds", round(elapsed, 1))]
        width = max(len(r[0]) for r in rows)
        print("\nsoak accounting")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        print("  faults: " + ", ".join(f"{k} x{faults.count(k)}" for k in sorted(set(faults))))
        balanced = totals["candidates"] == totals["indexed"] + totals["refused"] + totals["dlq"]
        print(f"\nbalanced: {'yes' if balanced else 'NO'}")
        return 0 if balanced else 1
    finally:
        site.close()
        stack.down()


if __name__ == "__main__":
    sys.exit(main())
