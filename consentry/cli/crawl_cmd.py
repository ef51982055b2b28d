"""`consentry crawl`: crawl jobs over registered sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table

EXIT_STOPPED = 130


@click.group("crawl")
def crawl() -> None:
    """Start, watch, stop and resume crawl jobs.

    \b
    Example:
      consentry crawl start --source family --seed https://photos.example.org/ --max-pages 500
      consentry crawl list
    """


def _launcher(ctx: CliContext):
    from .. import wiring

    return wiring.crawl_launcher(ctx.settings)


def _summary(stats: dict[str, Any], refusals: dict[str, int]) -> str:
    refused = sum(refusals.values())
    why = ", ".join(f"{k} {v}" for k, v in sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"pages {stats.get('pages', 0)} · images found {stats.get('images_found', 0)} · "
            f"published {stats.get('published', 0)} · refused {refused}" + (f" ({why})" if why else ""))


def _run_foreground(ctx: CliContext, launcher, job_id: str, proc, as_json: bool) -> None:
    """Wait for the crawl with a live status line; finish with the job's outcome and exit code."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from ..core.records import JobState
    from ..crawler.launcher import failure_error

    console = Console(stderr=True)
    if console.is_terminal and not as_json:
        with Live(Text(f"crawl {job_id}: starting …"), console=console, transient=True, refresh_per_second=4) as live:
            job, rc = launcher.wait(job_id, proc, on_progress=lambda p: live.update(
                Text(f"crawl {job_id}: " + _summary(p.get("stats", {}), p.get("refusals", {})))))
    else:
        job, rc = launcher.wait(job_id, proc)
    view = launcher.view(job)
    if as_json:
        emit_json(view.to_dict())
    else:
        click.echo(f"{job.state.value}: " + _summary(job.stats, job.refusals))
    if job.state is JobState.FINISHED:
        return
    if job.state is JobState.STOPPED:
        click.echo(f"crawl job {job_id} stopped; continue it with `consentry crawl resume {job_id}`", err=True)
        raise click.exceptions.Exit(EXIT_STOPPED)
    raise failure_error(job, rc if rc is not None else 1)


@crawl.command("start")
@click.option("--source", "source_name", help="A registered source (or `source:` in the job file).")
@click.option("--seed", "seeds", multiple=True, help="Start URL (repeatable); must fall under the source's match.")
@click.option("--max-pages", type=click.IntRange(min=1), help="Most pages to fetch (default: crawl_max_pages).")
@click.option("--depth", type=click.IntRange(min=0), help="Link depth from the seeds (default: crawl_depth).")
@click.option("--job-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML job spec: source, seeds, allowed, max_pages, depth, concurrency_per_domain, "
                   "download_delay, schedule (options given here win).")
@click.option("--detach", is_flag=True, help="Run in the background and return at once.")
@json_option
@pass_ctx
def start(ctx: CliContext, source_name: str | None, seeds: tuple[str, ...], max_pages: int | None,
          depth: int | None, job_file: Path | None, detach: bool, as_json: bool) -> None:
    """Start a crawl job over a registered source; prints its id.

    Seeds outside the source's match, and sources with basis `none`, are refused. By default the
    crawl runs in the foreground with a live status line and the command returns when it ends
    (exit 0 finished, 130 stopped, 4 broker unavailable, 1 failed); Ctrl-C stops it gracefully.

    Example: consentry crawl start --source family --seed https://photos.example.org/ --max-pages 200
    """
    launcher = _launcher(ctx)
    job = launcher.plan(source_name, list(seeds), max_pages=max_pages, depth=depth, job_file=job_file)
    proc = launcher.spawn(job.id)
    if detach:
        if as_json:
            emit_json({"id": job.id, "state": "running", "pid": proc.pid,
                       "job_dir": str(launcher.view(job).jobdir.path)})
        else:
            click.echo(job.id)
        return
    if not as_json:
        click.echo(job.id)
        sys.stdout.flush()
    _run_foreground(ctx, launcher, job.id, proc, as_json)


@crawl.command("status")
@click.argument("job_id")
@json_option
@pass_ctx
def status(ctx: CliContext, job_id: str, as_json: bool) -> None:
    """Show a job's state, progress and refusals by reason. Example: consentry crawl status JOB_ID"""
    view = _launcher(ctx).view(job_id)
    if as_json:
        emit_json(view.to_dict())
        return
    stats, refusals = view.counters()
    job = view.job
    limits = (f"max pages {job.max_pages}, depth {job.depth}, {job.concurrency_per_domain}/domain, "
              f"delay {job.download_delay}s")
    lines = [("job", job.id), ("source", job.source_id),
             ("state", view.state + (f" (pid {view.pid})" if view.pid else "")),
             ("seeds", " ".join(job.seeds)), ("limits", limits),
             ("pages crawled", stats.get("pages", 0)), ("images found", stats.get("images_found", 0)),
             ("images published", stats.get("published", 0)),
             ("refused", f"{stats.get('refused_pages', 0)} pages, {stats.get('refused_requests', 0)} requests, "
                         f"{stats.get('refused_images', 0)} images"),
             ("updated", f"{job.updated_at:%Y-%m-%d %H:%M:%S}Z"), ("job dir", view.jobdir.path)]
    if job.error:
        lines.append(("error", job.error))
    for label, value in lines:
        click.echo(f"{label:>16}: {value}")
    if refusals:
        click.echo("")
        table(sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0])), ["refused because", "count"])


@crawl.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List crawl jobs, oldest first. Example: consentry crawl list --json"""
    views = _launcher(ctx).list()
    if as_json:
        emit_json([v.to_dict() for v in views])
        return
    if not views:
        click.echo("no crawl jobs (start one with `consentry crawl start`)")
        return
    rows = []
    for v in views:
        stats, refusals = v.counters()
        rows.append((v.job.id, v.job.source_id, v.state, stats.get("pages", 0), stats.get("published", 0),
                     sum(refusals.values()), f"{v.job.updated_at:%Y-%m-%d %H:%M}"))
    table(rows, ["job", "source", "state", "pages", "published", "refused", "updated"])


@crawl.command("stop")
@click.argument("job_id")
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the crawl to stop.")
@json_option
@pass_ctx
def stop(ctx: CliContext, job_id: str, timeout_s: float, as_json: bool) -> None:
    """Stop a running job gracefully (it can be resumed). Example: consentry crawl stop JOB_ID"""
    launcher = _launcher(ctx)
    job = launcher.stop(job_id, timeout_s)
    if as_json:
        emit_json(launcher.view(job).to_dict())
    else:
        click.echo(f"{job.id} {job.state.value}: " + _summary(job.stats, job.refusals))


@crawl.command("resume")
@click.argument("job_id")
@click.option("--detach", is_flag=True, help="Run in the background and return at once.")
@json_option
@pass_ctx
def resume(ctx: CliContext, job_id: str, detach: bool, as_json: bool) -> None:
    """Resume a stopped, interrupted or failed job where it left off (on the machine that ran it).

    Nothing already published is published again.

    Example: consentry crawl resume JOB_ID
    """
    launcher = _launcher(ctx)
    proc = launcher.resume(job_id)
    if detach:
        if as_json:
            emit_json({"id": job_id, "state": "running", "pid": proc.pid})
        else:
            click.echo(job_id)
        return
    _run_foreground(ctx, launcher, job_id, proc, as_json)


REPORT_COLUMNS = ["at", "job_id", "source_id", "what", "url", "page_url", "reason", "signals", "detail"]


def _report_row(r) -> dict[str, Any]:
    return {"at": r.at.isoformat(), "job_id": r.job_id, "source_id": r.source_id, "what": r.what, "url": r.url,
            "page_url": r.page_url or "", "reason": r.reason, "detail": r.detail,
            "signals": "; ".join(f"{s.name}: {s.value}" for s in r.signals)}


@crawl.command("report")
@click.argument("job_id")
@click.option("--reason", "reasons", multiple=True, help="Only refusals for this reason (repeatable).")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV (one row per refusal).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the report to this file instead of stdout.")
@json_option
@pass_ctx
def report(ctx: CliContext, job_id: str, reasons: tuple[str, ...], as_csv: bool, output: Path | None,
           as_json: bool) -> None:
    """Every refusal of a job, by reason, from the durable crawl log: "what did you take from my site".

    Each row: when, what was refused (page, request, image, link), the URL, the page it was found
    on, the reason and the signals with their values. Works after the crawl process and its job dir
    are gone. Export with --csv or --json (and --output FILE).

    \b
    Example:
      consentry crawl report JOB_ID
      consentry crawl report JOB_ID --csv -o refusals.csv
    """
    import csv
    import io
    import json
    from collections import Counter

    from .. import wiring

    if as_csv and as_json:
        raise click.UsageError("give at most one of --csv, --json")
    s = ctx.settings
    store = wiring.object_store(s)
    job = wiring.jobs(s, store).get(job_id)
    rows = [_report_row(r) for r in wiring.crawl_log(s, store).refusals(job.id) if not reasons or r.reason in reasons]
    by_reason = Counter(r["reason"] for r in rows)
    out = io.StringIO()
    if as_json:
        out.write(json.dumps({"job_id": job.id, "source_id": job.source_id, "state": job.state.value,
                              "refusals_by_reason": dict(sorted(by_reason.items())), "refusals": rows},
                             indent=2, sort_keys=True) + "\n")
    elif as_csv:
        w = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    if output is not None:
        if as_json or as_csv:
            output.write_text(out.getvalue(), encoding="utf-8")
            click.echo(f"{len(rows)} refusals of job {job.id} written to {output}", err=True)
            return
        raise click.UsageError("--output needs --csv or --json")
    if as_json or as_csv:
        click.echo(out.getvalue(), nl=False)
        return
    click.echo(f"job {job.id} (source {job.source_id}, {job.state.value}): {len(rows)} refusals")
    if not rows:
        return
    table(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])), ["refused because", "count"])
    click.echo("")
    table([(r["at"][:19], r["what"], r["reason"], r["url"], r["page_url"], r["signals"] or r["detail"])
           for r in rows], ["at", "what", "reason", "url", "found on", "signals / detail"])


COMMANDS = [crawl]
