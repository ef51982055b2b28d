"""`consentry source`: the sources an operator is entitled to process, and their basis."""

from __future__ import annotations

from typing import Any

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table


@click.group("source")
def source() -> None:
    """Register and inspect sources (what may be crawled, on which consent basis).

    \b
    Example:
      consentry source add family --match photos.example.org --basis consent --evidence DOC-1
      consentry source list
    """


def _registry(ctx: CliContext):
    from .. import wiring

    return wiring.sources(ctx.settings)


def _rows(sources) -> list[tuple]:
    return [(s.id, s.match, s.basis.value, s.evidence or "", s.retention_days, s.contact or "",
             f"{s.created_at:%Y-%m-%d}") for s in sources]


HEADERS = ["name", "match", "basis", "evidence", "retention days", "contact", "created"]


@source.command("add")
@click.argument("name")
@click.option("--match", required=True, help="Host, host:port or URL prefix the source covers.")
@click.option("--basis", required=True, type=click.Choice(["consent", "licence", "own-archive", "none"]),
              help="Lawful basis for processing its faces; `none` registers it but no crawl may run.")
@click.option("--evidence", help="Reference to the consent/licence document (an id, not the document).")
@click.option("--retention-days", type=click.IntRange(min=1),
              help="How long faces from this source are kept (default and cap from the settings).")
@click.option("--contact", help="Who to contact about this source.")
@click.option("--replace", is_flag=True, help="Replace an existing source of that name.")
@json_option
@pass_ctx
def add(ctx: CliContext, name: str, match: str, basis: str, evidence: str | None, retention_days: int | None,
        contact: str | None, replace: bool, as_json: bool) -> None:
    """Register a source: what it covers and the basis on which its faces may be processed.

    A host covers its subdomains and every port; host:port only that port; an URL prefix
    (https://photos.example.org/events/) only URLs under it. Retention is capped by
    retention_max_days (BIPA: 3 years).

    Example: consentry source add family --match photos.example.org --basis consent --evidence DOC-1
    """
    from ..core.errors import ConsentryError
    from ..core.records import Source, utcnow

    s = ctx.settings
    registry = _registry(ctx)
    existing = registry.find(name)
    if existing is not None and not replace:
        raise ConsentryError(f"source {name!r} already exists (use --replace to change it)")
    days = retention_days or s.retention_default_days
    if days > s.retention_max_days:
        click.echo(f"consentry: warning: retention {days} days exceeds the maximum {s.retention_max_days}; "
                   f"capped to {s.retention_max_days}", err=True)
        days = s.retention_max_days
    fields: dict[str, Any] = {"id": name, "match": match, "basis": basis, "evidence": evidence, "retention_days": days,
              "contact": contact}
    if existing is not None:
        fields.update(created_at=existing.created_at, updated_at=utcnow())
    src = registry.put(Source.build(**fields))
    receipt = _record_consent_change(ctx, existing, src)
    if as_json:
        emit_json({**src.to_dict(), "erasure": receipt.to_dict() if receipt else None})
    else:
        click.echo(f"source {src.id}: {src.match} ({src.basis.value}, retention {src.retention_days} days)"
                   + (" — basis none: no crawl may run for it" if src.basis.value == "none" else ""))
        if receipt is not None:
            click.echo(f"basis withdrawn: erased {receipt.deleted.get('milvus_faces', 0)} faces and "
                       f"{receipt.deleted.get('provenance_deleted', 0)} provenance records "
                       f"(receipt {receipt.request_id})")


def _record_consent_change(ctx: CliContext, old, new):
    """Audit-log the change; a basis changed to `none` erases everything that came from the source."""
    from .. import wiring
    from .common import local_actor

    s = ctx.settings
    actor = local_actor()
    wiring.audit_log(s).append("consent-change", actor, source=new.id,
                               basis_before=old.basis.value if old else None, basis_after=new.basis.value,
                               match=new.match, evidence=new.evidence, retention_days=new.retention_days)
    if old is not None and old.basis.value != "none" and new.basis.value == "none":
        return wiring.eraser(s).forget_source(new.id, actor)
    return None


@source.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List sources. Example: consentry source list --json"""
    sources = sorted(_registry(ctx).list(), key=lambda s: s.id)
    if as_json:
        emit_json([s.to_dict() for s in sources])
    elif not sources:
        click.echo("no sources (add one with `consentry source add`)")
    else:
        table(_rows(sources), HEADERS)


@source.command("show")
@click.argument("name")
@json_option
@pass_ctx
def show(ctx: CliContext, name: str, as_json: bool) -> None:
    """Show one source. Example: consentry source show family"""
    src = _registry(ctx).get(name)
    if as_json:
        emit_json(src.to_dict())
        return
    for label, value in zip(HEADERS, _rows([src])[0], strict=True):
        click.echo(f"{label:>15}: {value}")


@source.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def remove(ctx: CliContext, name: str, yes: bool, as_json: bool) -> None:
    """Remove a source and erase every face and stored object that came from it; prints the receipt.

    Example: consentry source remove family --yes
    """
    from .. import wiring
    from .common import local_actor

    s = ctx.settings
    registry = _registry(ctx)
    src = registry.get(name)
    if not yes:
        click.confirm(f"remove source {name!r} and erase everything that came from it?", abort=True)
    actor = local_actor()
    receipt = wiring.eraser(s).forget_source(name, actor)
    registry.remove(name)
    wiring.audit_log(s).append("consent-change", actor, source=name, basis_before=src.basis.value,
                               basis_after=None, removed=True, erasure=receipt.request_id)
    if as_json:
        emit_json({"removed": name, "erasure": receipt.to_dict()})
    else:
        click.echo(f"source {name} removed; erased {receipt.deleted.get('milvus_faces', 0)} faces and "
                   f"{receipt.deleted.get('provenance_deleted', 0)} provenance records (receipt {receipt.request_id})")


COMMANDS = [source]
