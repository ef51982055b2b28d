"""Run every bench and write bench/README.md (and the figures block of the main README) from their reports.

    .venv/bin/python bench/run_all.py            # the standard set (100k-face search; about an hour on 2 cores)
    .venv/bin/python bench/run_all.py --full     # also the 1M-face search, API and forget runs (several hours)
    .venv/bin/python bench/run_all.py --only ingest,crawl   # run these again; the others keep their last report
    .venv/bin/python bench/run_all.py --render   # run nothing: rebuild the pages from the saved reports

Each bench runs in its own process and writes a JSON report (see bench/report.py), saved as
bench/results/<name>.report.json with when it was measured, at which commit, on which machine and
under what load; the pages are rendered from every saved report, so each table says when and how
its own figures were made. A bench that fails is saved as failed, with its exit code, in place of
its earlier figures: the page never shows figures the current code could not reproduce.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable

RESULTS = ROOT / "bench" / "results"
#: name -> script and arguments, in page order; FULL ones run only with --full (hours on 2 cores)
BENCHES: dict[str, list[str]] = {
    "crawl": ["bench/crawl_bench.py", "--repeat", "3"],
    "ingest": ["bench/ingest_bench.py", "--repeats", "3", "--c2pa-ab"],
    "ingest-cli": ["bench/ingest_cli_bench.py"],
    "search": ["bench/search_bench.py", "--sizes", "100000", "--flavours", "embedded,server"],
    "search-1m": ["bench/search_bench.py", "--sizes", "1000000", "--flavours", "server"],
    "api": ["bench/api_bench.py", "--sizes", "100000"],
    "api-1m": ["bench/api_bench.py", "--sizes", "1000000"],
    "forget": ["bench/forget_bench.py", "--sizes", "100000"],
    "forget-1m": ["bench/forget_bench.py", "--sizes", "1000000"],
    "soak": ["bench/soak.py"],
}
FULL = {"search-1m", "api-1m", "forget-1m"}
FIGURES_START, FIGURES_END = "<!-- figures:start -->", "<!-- figures:end -->"


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    gpu = "none"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True)
        gpu = out.stdout.strip().replace("\n", ", ") or "none"
    return {"cpu": cpu or "unknown", "cores": str(os.cpu_count()), "memory": mem, "gpu": gpu,
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run(name: str, argv: list[str], timeout_s: float, info: dict[str, str]) -> dict:
    """Run one bench; save and return its report (or a failed record) with when, where and how it ran."""
    meta = {"measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(), "machine": info,
            "load_at_start": load_average()}
    with tempfile.TemporaryDirectory(prefix="consentry-bench-") as tmp:
        report = Path(tmp) / "report.json"
        print(f"==> {name}: {' '.join(argv)}", flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.run([PY, *argv, "--report", str(report)], cwd=ROOT, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        meta["seconds"] = round(time.monotonic() - t0)
        if report.exists():  # a bench that reports and exits non-zero (a soak that did not balance) keeps its report
            out = {**json.loads(report.read_text()), **meta, **({"exit": rc} if rc else {})}
        else:
            out = {"title": name, "command": " ".join([".venv/bin/python", *argv]), "failed": rc, **meta}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.report.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def saved() -> dict[str, dict]:
    """Every saved report, in page order."""
    out = {}
    for name in BENCHES:
        path = RESULTS / f"{name}.report.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def _when(r: dict) -> str:
    """When, where and under what load a saved run was made (what its report knows of it)."""
    parts = [f"measured {r.get('measured', '(date not recorded)')} at commit `{r.get('commit', '?')}`"]
    m = r.get("machine")
    if m:
        parts.append(f"on {m['cpu']}, {m['cores']} cores, {m['memory']}, GPU: {m['gpu']}")
    if isinstance(r.get("seconds"), int):
        parts.append(f"took {r['seconds']} s")
    if r.get("load_at_start") is not None:
        parts.append(f"load average {r['load_at_start']:.1f} at the start")
    return "; ".join(parts)


def render(results: dict[str, dict]) -> str:
    lines = ["# Figures", "",
             "<!-- generated by bench/run_all.py from bench/results/*.report.json: do not edit; run it again -->", "",
             "`.venv/bin/python bench/run_all.py` (standard set) or `bench/run_all.py --full` (also the 1M-face "
             "runs) regenerates every figure on this page; each table says when, at which commit and under what "
             "load its own run was made.", "",
             "The local servers (SeaweedFS, tansu, Milvus) run on the same cores as the code being measured, so "
             "the load average at the start of each run is given with it. Every ratio is against a baseline "
             "measured in the same run.", "",
             "| bench | headline |", "|---|---|"]
    for name, r in results.items():
        head = f"failed (exit {r['failed']})" if "failed" in r else r["headline"]
        if r.get("exit"):
            head = f"**exit {r['exit']}**: {head}"
        lines.append(f"| [{r['title']}](#{name}) | {head} |")
    for name, r in results.items():
        lines += ["", f'<a id="{name}"></a>', f"## {r['title']}", "", f"`{r['command']}` — {_when(r)}", ""]
        if "failed" in r:
            lines.append(f"This run failed (exit {r['failed']}); no figures.")
            continue
        if r.get("stand_in"):
            lines += [f"Stand-in: {r['stand_in']}.", ""]
        lines.append(r["markdown"].rstrip())
    return "\n".join(lines) + "\n"


def update_readme(results: dict[str, dict]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if FIGURES_START not in text:
        return
    rows = ["| bench | headline |", "|---|---|"]
    for r in results.values():
        if "failed" not in r:
            prefix = f"**exit {r['exit']}**: " if r.get("exit") else ""
            rows.append(f"| {r['title']} | {prefix}{r['headline']} |")
    block = "\n".join([FIGURES_START, "", "From [bench/README.md](bench/README.md), where each run's command, "
                       "date, commit and load are given:", "", *rows, "", FIGURES_END])
    start, end = text.index(FIGURES_START), text.index(FIGURES_END) + len(FIGURES_END)
    readme.write_text(text[:start] + block + text[end:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="also the 1M-face runs: " + ", ".join(sorted(FULL)))
    ap.add_argument("--only", help="comma-separated bench names: " + ", ".join(BENCHES))
    ap.add_argument("--render", action="store_true", help="run nothing; rebuild the pages from the saved reports")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="per bench, seconds")
    args = ap.parse_args()
    names = [] if args.render else args.only.split(",") if args.only else \
        [n for n in BENCHES if args.full or n not in FULL]
    unknown = set(names) - set(BENCHES)
    if unknown:
        ap.error(f"unknown bench(es): {', '.join(sorted(unknown))}")
    info = machine()
    failed = [n for n in names if {"failed", "exit"} & set(run(n, BENCHES[n], args.timeout, info))]
    results = saved()
    (ROOT / "bench" / "README.md").write_text(render(results))
    update_readme(results)
    print("wrote bench/README.md and the README's figures" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
