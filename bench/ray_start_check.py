"""Does `consentry ingest run` start its Ray workers every time on a busy machine?

Brings up a local stack with its Ray head, keeps bench/ingest_bench.py running beside it (its own
stack, the model on both cores), and runs `consentry ingest run --until-idle` ``--runs`` times in a
row, each over a few fresh images. Prints one line per run (exit code, seconds, records) and the
count of runs whose Ray workers started; exits 1 if any did not.

    .venv/bin/python bench/ray_start_check.py [--runs 20] [--port-base 42000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402
from ingest_env import Feed, ImageSite, copies, stack_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--images", type=int, default=6, help="fresh images per run")
    ap.add_argument("--port-base", type=int, default=42000)
    ap.add_argument("--no-load", action="store_true", help="do not run the ingest bench beside the runs")
    report.add_args(ap)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="consentry-raycheck-"))
    env = {**os.environ, **stack_env(home, args.port_base, CONSENTRY_STACK_RAY="true"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    os.environ.update(env)

    from consentry.core.settings import load_settings
    from consentry.demo.photos import ensure_photos

    def consentry(*argv: str) -> tuple[float, subprocess.CompletedProcess]:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "consentry.cli.main", *argv], env=env, capture_output=True,
                              text=True, timeout=900)
        return time.perf_counter() - t, proc

    took, up = consentry("stack", "up")
    if up.returncode != 0:
        sys.exit(f"stack up failed: {up.stderr[-2000:]}")
    print(f"stack up (with its Ray head) in {took:.1f}s", flush=True)
    load: subprocess.Popen | None = None
    load_env = {k: v for k, v in env.items() if not k.startswith("CONSENTRY_")}

    def keep_loaded() -> None:
        nonlocal load
        if not args.no_load and (load is None or load.poll() is not None):
            load = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ingest_bench.py"), "--repeats", "10",
                                     "--port-base", "40000"], env=load_env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    photos = ensure_photos()
    site = ImageSite().start()
    runs = []
    try:
        feed = Feed(load_settings(), site, "check")
        keep_loaded()
        time.sleep(20)  # the bench's stack is up and its model is running
        for k in range(args.runs):
            keep_loaded()
            bodies = dict(list(copies(photos, f"run{k}", 1).items())[:args.images])
            feed.publish(bodies)
            seconds, proc = consentry("ingest", "run", "--until-idle", "--json")
            records = json.loads(proc.stdout)["records"] if proc.returncode == 0 else None
            ok = proc.returncode == 0 and records == len(bodies)
            runs.append({"run": k + 1, "exit": proc.returncode, "seconds": round(seconds, 1), "records": records,
                         "ok": ok, "error": None if ok else proc.stderr.strip().splitlines()[-1:]})
            print(f"run {k + 1:2d}: exit {proc.returncode}, {seconds:5.1f}s, {records} records"
                  + ("" if ok else f"  <- {proc.stderr.strip().splitlines()[-1:]}"), flush=True)
    finally:
        if load is not None and load.poll() is None:
            load.terminate()
            load.wait(120)
        site.close()
        consentry("stack", "down")
    good = [r for r in runs if r["ok"]]
    secs = [r["seconds"] for r in runs]
    line = (f"{len(good)}/{len(runs)} `ingest run --until-idle` invocations started their Ray workers and ingested "
            f"their {args.images} images ({'with' if not args.no_load else 'without'} the ingest bench running "
            f"beside them); seconds per command: min {min(secs):.1f}, median {statistics.median(secs):.1f}, "
            f"max {max(secs):.1f}")
    print(line)
    report.write(args, title="Ray start-up under load", markdown=line, headline=line, data=runs)
    return 0 if len(good) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
