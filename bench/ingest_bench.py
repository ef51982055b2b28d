"""Ingest throughput: images/s through the whole ingest path vs a bare decode + detect + embed loop.

The whole path is one IngestWorker — the product's pipelined worker at the default settings — over
the real local stack (tansu, SeaweedFS, milvus-lite, started here on loopback ports from
--port-base) fetching from a local image site that runs in its own process: Kafka poll → fetch →
decode → sha256/phash → dedup lookup (S3) → consent → detect + embed → suppression check (Milvus)
→ Milvus upsert → suppression re-check → S3 provenance → offset commit. The baseline is what a user
would write with plain insightface and the same model pair: per image, cv2.imdecode → detect →
align → embed. Both run in this process, alternately, ``--repeats`` times on fresh distinct-byte
copies of real face photos (so dedup never skips one); the figure is the ratio of the medians.

Then one sequential pass (one batch at a time through the same stages, no overlap) gives each
phase's wall and CPU time. The CPU seconds of every local server (and of the image site) during
the timed windows are printed: they share the two cores with ingest, which makes the physical
limit visible.

With ``--c2pa-ab`` each repeat also runs a second worker with ``ingest_read_c2pa`` off (its own
topic, group and fresh copies), so the cost of reading C2PA manifests is measured in the same run.

    .venv/bin/python bench/ingest_bench.py [--copies 8] [--repeats 3] [--c2pa-ab] [--port-base 40000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402
from ingest_env import PHOTOS, BareInsightface, CpuMeter, Feed, ImageSite, copies, peak_rss_mib, stack_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=8, help="distinct-byte copies of each of the 6 photos per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("CONSENTRY_BENCH_PORT_BASE", "40000")))
    ap.add_argument("--c2pa-ab", action="store_true",
                    help="also time the whole path with C2PA manifest reading off, alternately")
    ap.add_argument("--json", action="store_true")
    report.add_args(ap)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="consentry-bench-"))
    os.environ.update(stack_env(home, args.port_base, CONSENTRY_STACK_RAY="false"))
    os.environ.pop("CONSENTRY_CONFIG", None)

    import onnxruntime

    from consentry.core.settings import load_settings
    from consentry.demo.photos import ensure_photos
    from consentry.faces.packs import pack_files
    from consentry.infra.stack import Stack
    from consentry.wiring import ingest_worker, prepare_ingest

    photos = ensure_photos()
    stack = Stack(load_settings())
    stack.up("embedded")
    site = ImageSite().start()
    try:
        s = load_settings()
        prepare_ingest(s)
        feed = Feed(s, site)

        def publish(bodies: dict[str, bytes]) -> int:
            n = feed.publish(bodies)
            time.sleep(0.5)  # records are in the broker before the clock starts
            return n

        worker = ingest_worker(s)
        _kind, det_path, rec_path = pack_files(s.model_pack, s.model_dir)
        bare = BareInsightface(det_path, rec_path, s.model_threads, s.model_det_size)
        servers = {name: stack.procs[name].pid() for name in ("seaweedfs", "tansu", "milvus")}
        meter = CpuMeter({**servers, "image site": site.proc.pid})  # type: ignore[union-attr]

        def pipelined(n: int, w=worker) -> float:
            """Seconds from the first poll to the last commit of ``n`` records, pipelined (the product's loop)."""
            done, t0 = 0, time.perf_counter()
            while done < n:
                done += w.pump().records
            return time.perf_counter() - t0

        warm = copies(photos, "warm", 1)
        publish(warm)
        pipelined(len(warm))  # group join, model and connections warm
        bare.run(list(warm.values()))
        if args.c2pa_ab:  # the same path with C2PA reading off: its own topic and group, warmed the same way
            s_off = s.model_copy(update={"ingest_read_c2pa": False, "topic_prefix": "noc2pa.",
                                         "kafka_consumer_group": s.kafka_consumer_group + "-noc2pa"})
            prepare_ingest(s_off)
            feed_off, worker_off = Feed(s_off, site), ingest_worker(s_off)
            warm = copies(photos, "warm-off", 1)
            feed_off.publish(warm)
            time.sleep(0.5)
            pipelined(len(warm), worker_off)

        runs = []
        for r in range(args.repeats):
            bodies = copies(photos, f"r{r}", args.copies)
            n = publish(bodies)
            faces0 = worker.stats.snapshot()["faces"]
            cpu0 = time.process_time()
            meter.start()
            whole_s = pipelined(n)
            meter.stop()
            ingest_cpu = time.process_time() - cpu0
            faces = worker.stats.snapshot()["faces"] - faces0
            cpu0 = time.process_time()
            bare_s, bare_faces = bare.run(list(bodies.values()))
            runs.append({"images": n, "whole_s": whole_s, "whole_img_s": n / whole_s, "bare_s": bare_s,
                         "bare_img_s": n / bare_s, "ratio": bare_s / whole_s, "faces": faces,
                         "bare_faces": bare_faces, "ingest_cpu_s": ingest_cpu,
                         "bare_cpu_s": time.process_time() - cpu0, "load": os.getloadavg()[0]})
            if args.c2pa_ab:
                off = copies(photos, f"r{r}-off", args.copies)
                feed_off.publish(off)
                time.sleep(0.5)
                off_s = pipelined(len(off), worker_off)
                runs[-1].update({"whole_off_img_s": len(off) / off_s, "c2pa_ratio": off_s / whole_s})
            print(f"repeat {r + 1}: whole {n / whole_s:.1f} images/s, bare {n / bare_s:.1f} images/s, "
                  f"ratio {bare_s / whole_s:.2f}"
                  + (f", C2PA off {runs[-1]['whole_off_img_s']:.1f} images/s" if args.c2pa_ab else ""),
                  file=sys.stderr)

        # one batch at a time (no overlap): each phase's wall and CPU time
        bodies = copies(photos, "seq", args.copies)
        n = publish(bodies)
        phases: dict[str, float] = {}
        cpu: dict[str, float] = {}
        done, t0 = 0, time.perf_counter()
        while done < n:
            out = worker.poll_once()
            done += out.records
            for k, v in out.seconds.items():
                phases[k] = phases.get(k, 0.0) + v
            for k, v in out.cpu.items():
                cpu[k] = cpu.get(k, 0.0) + v
        seq_s = time.perf_counter() - t0
        peak_in_flight = worker.budget.peak
        worker.close()
        if args.c2pa_ab:
            worker_off.close()
    finally:
        site.close()
        stack.down()

    whole = statistics.median(r["whole_img_s"] for r in runs)
    bare_ips = statistics.median(r["bare_img_s"] for r in runs)
    timed_s = sum(r["whole_s"] for r in runs)
    result = {
        "images_per_repeat": runs[0]["images"], "repeats": runs, "whole_img_s": round(whole, 2),
        "bare_img_s": round(bare_ips, 2), "ratio": round(whole / bare_ips, 3),
        "sequential": {"images": n, "seconds": round(seq_s, 2), "img_s": round(n / seq_s, 2),
                       "phases_wall_s": {k: round(v, 2) for k, v in phases.items()},
                       "phases_cpu_s": {k: round(v, 2) for k, v in cpu.items()}},
        "server_cpu_s": {k: round(v, 2) for k, v in meter.used.items()},
        "ingest_cpu_s": round(sum(r["ingest_cpu_s"] for r in runs), 2), "timed_s": round(timed_s, 2),
        "cpu_ms_per_image": {
            "whole": round(1000 * (sum(r["ingest_cpu_s"] for r in runs) + sum(meter.used.values()))
                           / sum(r["images"] for r in runs), 1),
            "bare": round(1000 * sum(r["bare_cpu_s"] for r in runs) / sum(r["images"] for r in runs), 1)},
        "load_average": round(statistics.median(r["load"] for r in runs), 1),
        "peak_rss_mib": round(peak_rss_mib()), "peak_in_flight_mib": round(peak_in_flight / 2**20, 1),
        "model": worker.faces.model_id, "onnxruntime": onnxruntime.__version__, "intra_op_threads": s.model_threads,
        "poll_batch": s.kafka_max_poll_records, "in_flight_batches": s.ingest_max_in_flight_batches,
        "prepare_threads": s.ingest_prepare_threads, "det_batch": s.model_det_batch, "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.c2pa_ab:
        off_ips = statistics.median(r["whole_off_img_s"] for r in runs)
        result["c2pa_off_img_s"] = round(off_ips, 2)
        result["c2pa_on_vs_off"] = round(whole / off_ips, 3)
    text = render(result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(text)
    report.write(args, title="Ingest: whole path vs bare decode + detect + embed", markdown=text,
                 headline=f"ingest keeps **{100 * result['ratio']:.0f}%** of bare insightface "
                          f"({whole:.1f} vs {bare_ips:.1f} images/s, decode included, median of {args.repeats})",
                 data=result)
    return 0


def render(r: dict) -> str:
    n, seq = r["images_per_repeat"], r["sequential"]
    lines = [f"{n} images per repeat ({len(PHOTOS)} real face photos x {n // len(PHOTOS)} distinct-byte copies), "
             f"{len(r['repeats'])} repeats, model {r['model']} (onnxruntime {r['onnxruntime']}, intra-op threads "
             f"{r['intra_op_threads']}, inter-op 1, spinning off), product defaults: poll batch {r['poll_batch']}, "
             f"{r['in_flight_batches']} batches in flight, {r['prepare_threads']} prepare threads, detector batch "
             f"{r['det_batch']}; {r['cpus']} CPUs shared with the local servers.", "",
             "| path | images/s (median) | per repeat |", "|---|---|---|",
             f"| whole ingest (Kafka → fetch → decode → dedup → consent → detect+embed → Milvus + S3 → commit) | "
             f"{r['whole_img_s']:.1f} | {_each(r, 'whole_img_s')} |",
             f"| bare insightface (cv2.imdecode → detect → align → embed, per image) | {r['bare_img_s']:.1f} | "
             f"{_each(r, 'bare_img_s')} |", "",
             f"**whole / bare = {r['ratio']:.2f}** (per repeat: {_each(r, 'ratio', 2)})", "",
             *([f"C2PA manifest reading (on by default) vs off, same run, alternately: {r['whole_img_s']:.1f} vs "
                f"{r['c2pa_off_img_s']:.1f} images/s, **{r['c2pa_on_vs_off']:.2f}×** (per repeat, off: "
                f"{_each(r, 'whole_off_img_s')}).", ""] if "c2pa_on_vs_off" in r else []),
             f"CPU seconds during the {r['timed_s']:.1f} s of timed whole-path windows (2 cores = "
             f"{2 * r['timed_s']:.1f} CPU s available): ingest process {r['ingest_cpu_s']:.1f}, "
             + ", ".join(f"{k} {v:.1f}" for k, v in r["server_cpu_s"].items())
             + f". CPU per image, every process counted: whole path {r['cpu_ms_per_image']['whole']:.0f} ms, bare "
               f"{r['cpu_ms_per_image']['bare']:.0f} ms. Load average during the run: {r['load_average']} (other "
               f"work on the machine takes cores too). Peak RSS of the bench process (model, both loops) "
               f"{r['peak_rss_mib']} MiB; peak image bytes + pixels in flight {r['peak_in_flight_mib']} MiB.", "",
             f"One batch at a time (no overlap), {seq['images']} images: {seq['img_s']:.1f} images/s; per phase "
             "(wall / CPU seconds): "
             + ", ".join(f"{k} {seq['phases_wall_s'].get(k, 0):.2f} / {seq['phases_cpu_s'].get(k, 0):.2f}"
                         for k in ("prepare", "faces", "write"))
             + " (prepare = fetch + decode + sha256/phash + dedup lookup on 4 threads; faces = detect + embed + "
               "one suppression search; write = DLQ + one Milvus upsert + one re-check + S3 provenance + tombstones)."]
    return "\n".join(lines)


def _each(r: dict, key: str, digits: int = 1) -> str:
    return ", ".join(f"{x[key]:.{digits}f}" for x in r["repeats"])


if __name__ == "__main__":
    sys.exit(main())
