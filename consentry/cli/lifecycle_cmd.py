"""Consent lifecycle commands: explain, forget, retention."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from .common import CliContext, emit_json, json_option, local_actor, pass_ctx, table


@click.command("explain")
@click.argument("url")
@click.option("--page", "is_page", is_flag=True, help="URL is a page: list the images found on it and the decision "
              "for each.")
@json_option
@pass_ctx
def explain(ctx: CliContext, url: str, is_page: bool, as_json: bool) -> None:
    """Why an image was or was not indexed: at ingest (every signal, the basis, the faces) or at crawl time.

    Answers for every URL the platform has seen: indexed, refused at ingest, refused at crawl
    (which signal, which page, when), published but not yet ingested, erased (the receipt), or
    never seen (exit 1). With --page, the page's own decisions and every image found on it.

    \b
    Example:
      consentry explain https://photos.example.org/a.jpg
      consentry explain --page https://photos.example.org/gallery.html
    """
    from .. import wiring
    from ..core.errors import NotFound

    explainer = wiring.explainer(ctx.settings)
    e = explainer.explain_page(url) if is_page else explainer.explain(url)
    if as_json:
        emit_json(e.to_dict())
    elif is_page:
        _show_page(e)
    else:
        _show(e)
    if e.status == "never-seen":
        raise NotFound(f"{url}: {e.summary}")


def _signal_rows(signals: list[dict]) -> list[tuple]:
    return [(sg["name"], sg["scope"], sg["value"] + (f"; tdm-policy {sg['policy']}" if sg.get("policy") else "")
             + (f" ({sg['detail']})" if sg.get("detail") else ""), "OPT-OUT" if sg["opt_out"] else "ok")
            for sg in signals]


def _show(e) -> None:
    click.echo(f"url:       {e.url}\nstatus:    {e.status} — {e.summary}")
    if e.status in ("indexed", "refused-at-ingest"):
        click.echo(f"page:      {e.page_url}\nsource:    {e.source_id} (basis: {e.basis})")
        click.echo(f"fetched:   {e.fetched_at or '-'}  status {e.http_status or '-'}  sha256 {e.sha256 or '-'}")
        if e.duplicate_of:
            click.echo(f"duplicate of: {e.duplicate_of}")
        click.echo(f"decision:  {e.decision.upper()} — {e.reason}")
        click.echo("signals checked:")
        table(_signal_rows(e.signals), ["signal", "scope", "value", "effect"])
        click.echo(f"faces indexed: {len(e.faces_indexed)}  {' '.join(f[:12] for f in e.faces_indexed)}")
        if e.faces_erased:
            click.echo(f"faces erased:  {len(e.faces_erased)}  {' '.join(f[:12] for f in e.faces_erased)}")
        for er in e.erasures:
            click.echo(f"  erased by {er['request_id']} ({er['action']}, {er.get('by') or ''}) at {er['at']}")
    elif e.signals:
        click.echo(f"page:      {e.page_url or '-'}\nsource:    {e.source_id}\nsignals:")
        table(_signal_rows(e.signals), ["signal", "scope", "value", "effect"])
    if e.erased:
        click.echo(f"erased:    by {e.erased['request_id']} at {e.erased['at']}")
    if e.crawl:
        click.echo("crawl-time decisions:")
        table([(c["at"][:19], c["job_id"], c["decision"], c["what"], c["reason"], c.get("page_url") or "",
                "; ".join(f"{s['name']}: {s['value']}" for s in c["signals"]) or c.get("detail", ""))
               for c in e.crawl], ["at", "job", "decision", "what", "reason", "page", "signals"])


def _show_page(p) -> None:
    click.echo(f"page:      {p.url}\nstatus:    {p.status} — {p.summary}")
    for v in p.visits:
        click.echo(f"  read by {v['job_id']} at {v['at'][:19]}: HTTP {v['http_status']}, {v['decision']} "
                   f"({v['reason']}), {v['images']} image(s)" + (", nofollow" if v["nofollow"] else ""))
        for sg in v["signals"]:
            click.echo(f"    {sg['name']}: {sg['value']}" + ("  OPT-OUT" if sg["opt_out"] else ""))
    for r in p.refusals:
        click.echo(f"  refused by {r['job_id']} at {r['at'][:19]}: {r['what']} {r['reason']} ({r['detail']})")
    if p.images:
        click.echo("images found on the page:")
        table([(i["url"], i["status"], i["reason"] or "", i["summary"]) for i in p.images],
              ["image", "status", "reason", "why"])


@click.command("forget")
@click.argument("photo", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "source_name", help="Erase everything that came from this source.")
@click.option("--url", help="Erase everything that came from this image URL.")
@click.option("--job", "job_id", help="Erase everything that came from this crawl job.")
@click.option("--reference", help="The requester's reference (e.g. a DSAR case id): in the receipt and the audit log.")
@click.option("--no-wait", is_flag=True, help="Print the receipt after the erasure; leave the exact verification "
              "and the physical purge pending (finish them with --finish).")
@click.option("--finish", "finish_id", metavar="REQUEST_ID", help="Run what a pending receipt still lacks "
              "(verification, purge) and print it.")
@json_option
@pass_ctx
def forget(ctx: CliContext, photo: Path | None, source_name: str | None, url: str | None, job_id: str | None,
           reference: str | None, no_wait: bool, finish_id: str | None, as_json: bool) -> None:
    """Erase a person (by PHOTO), or a source, job or URL; prints the receipt stage by stage.

    By photo, every indexed face at or above the erasure threshold is deleted, the faces are
    redacted in provenance, and the reference joins the suppression list so the person is not
    indexed again. The photo itself is never stored. Then the erasure is verified exactly (by
    photo: a full scan of every stored embedding; by scope: exact counts) and purged physically
    (Milvus compaction; old S3 versions). Exit 1 if anything was left behind.

    \b
    Example:
      consentry forget me.jpg --reference DSAR-2026-031
      consentry forget --source family
      consentry forget --finish er-20260131-0123456789ab
    """
    from .. import wiring
    from ..core.errors import ConsentryError

    chosen = [x for x in (photo, source_name, url, job_id, finish_id) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of PHOTO, --source, --url, --job, --finish")
    s = ctx.settings
    er = wiring.eraser(s)
    actor = local_actor()
    if finish_id:
        r = er.finish(finish_id)
    else:
        if photo is not None:
            r = er.forget_photo(photo.read_bytes(), actor, reference=reference)
        elif source_name:
            r = er.forget_source(source_name, actor, reference=reference)
        elif job_id:
            r = er.forget_job(job_id, actor, reference=reference)
        else:
            r = er.forget_url(url or "", actor, reference=reference)
        if not as_json:
            _print_erased(r)
        if not no_wait:
            r = er.finish(r.request_id)
    er.audit.flush()
    if as_json:
        emit_json(r.to_dict())
    else:
        if finish_id:
            _print_erased(r)
        _print_stages(r)
    if r.verification.get("ok") is False:
        raise ConsentryError(f"erasure {r.request_id} left {r.verification.get('remaining')} items behind")


def _print_erased(r) -> None:
    click.echo(f"erasure receipt {r.request_id}  ({r.by}: {r.target})" + (f"  reference {r.reference}"
                                                                           if r.reference else ""))
    click.echo(f"  1. erased in {r.timings.get('erase_s', 0):.2f}s — matched faces: {len(r.matched_face_ids)}")
    for k, v in sorted(r.deleted.items()):
        click.echo(f"     {k}: {v}")
    s3 = r.purge.get("s3")
    if s3:
        click.echo(f"     S3 versioning {s3['versioning']}: {s3['old_versions_deleted']} old versions deleted")


def _print_stages(r) -> None:
    v = r.verification
    if v.get("state") == "pending":
        click.echo(f"  2. verification: pending ({v.get('method')}) — `consentry forget --finish {r.request_id}`")
    else:
        extra = f", {v['compared']} embeddings compared, {v.get('caught', 0)} caught" if "compared" in v else ""
        click.echo(f"  2. verification: {'ok' if v.get('ok') else 'FAILED'} — {v.get('remaining')} remaining "
                   f"in {v.get('seconds', 0):.2f}s{extra}\n     ({v.get('method')})")
    m = r.purge.get("milvus")
    if not m:
        click.echo("  3. physical purge: pending")
    else:
        when = m.get("compacted_at") or m.get("triggered_at") or ""
        click.echo(f"  3. physical purge: Milvus {m['state']} {when}"
                   + (f", old segment files removed by {m['files_removed_by']}" if m.get("files_removed_by") else "")
                   + (f"\n     ({m['note']})" if m.get("note") else ""))
    click.echo(f"  status: {r.status}")


@click.group("retention")
def retention() -> None:
    """Retention enforcement: faces are deleted when their source's retention period ends."""


@retention.command("sweep")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Sweep as if it were this time (default: now).")
@click.option("--dry-run", is_flag=True, help="Only count what has expired.")
@json_option
@pass_ctx
def sweep(ctx: CliContext, as_of: datetime | None, dry_run: bool, as_json: bool) -> None:
    """Delete faces past their expiry, redact their provenance, and log what was done.

    Example: consentry retention sweep --dry-run
    """
    from .. import wiring

    now = as_of.timestamp() if as_of else None
    rep = wiring.retention_sweeper(ctx.settings).sweep(now=now, actor=local_actor(), dry_run=dry_run)
    if as_json:
        emit_json(rep.to_dict())
    else:
        verb = "would delete" if dry_run else "deleted"
        shortened = (f" ({rep.past_source_retention} past a shortened source retention)"
                     if rep.past_source_retention else "")
        click.echo(f"retention sweep as of {rep.as_of}: {verb} {rep.expired_faces} expired faces{shortened} "
                   f"{'' if dry_run else rep.deleted}")
        if rep.purge.get("milvus"):
            m, s3 = rep.purge["milvus"], rep.purge["s3"]
            click.echo(f"physical purge: Milvus {m['state']}; S3 versioning {s3['versioning']}, "
                       f"{s3['old_versions_deleted']} old versions deleted")


COMMANDS = [explain, forget, retention]
