"""`consentry audit`: the hash-chained audit log."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from .common import CliContext, emit_json, json_option, pass_ctx


class _When(click.ParamType):
    """An ISO 8601 date or time; naive values are UTC."""

    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)",
                      param, ctx)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@click.group("audit")
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@json_option
@pass_ctx
def verify(ctx: CliContext, as_json: bool) -> None:
    """Check the audit chain and the signed checkpoints kept outside the bucket: exit 0 if intact, 1
    naming the first edited, removed or moved entry, or the checkpoint the log no longer reaches.

    \b
    Example:
      consentry audit verify --json
    """
    from ..core.errors import AuditTampered
    from ..wiring import audit_log

    rep = audit_log(ctx.settings).verify()
    if as_json:
        emit_json(rep.to_dict())
        if not rep.ok:
            raise click.exceptions.Exit(1)
        return
    if not rep.ok:
        raise AuditTampered(f"audit log does not verify: {rep.problem}", entry=rep.entry)
    cp = (f"; matches the signed checkpoint of entry {rep.checkpoint_seq} ({rep.checkpoint_at}) in {rep.checkpoints}"
          if rep.checkpoint_seq else f"; no checkpoint yet in {rep.checkpoints}")
    click.echo(f"audit log OK: {rep.entries} entries, chain intact{cp}")


@audit.command("checkpoint")
@json_option
@pass_ctx
def checkpoint(ctx: CliContext, as_json: bool) -> None:
    """Sign and store a checkpoint of the newest entry now (appends checkpoint on their own; run this
    from cron too, e.g. hourly).

    Example: consentry audit checkpoint
    """
    from ..wiring import audit_log

    log = audit_log(ctx.settings)
    head = log.checkpoint()
    out = {"seq": head["seq"] if head else 0, "hash": head["hash"] if head else None,
           "where": log.checkpoints.sink.where if log.checkpoints else None}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"checkpoint of entry {out['seq']} written to {out['where']}")


@audit.command("keygen")
@json_option
def keygen(as_json: bool) -> None:
    """Print a new Ed25519 key pair for audit checkpoints: set the private key as CONSENTRY_AUDIT_SIGNING_KEY
    on the writers (API, CLI), give the public key (CONSENTRY_AUDIT_VERIFY_KEY) to auditors.

    Example: consentry audit keygen --json
    """
    import base64

    from ..indexer.checkpoints import Signer

    private = Signer.generate()
    signer = Signer(private=private)
    out = {"signing_key": base64.b64encode(private).decode(), "verify_key": base64.b64encode(signer.public).decode(),
           "key_id": signer.key_id}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"CONSENTRY_AUDIT_SIGNING_KEY={out['signing_key']}\nCONSENTRY_AUDIT_VERIFY_KEY={out['verify_key']}"
                   f"\nkey id {out['key_id']}")


@audit.command("export")
@click.option("--since", type=_When(), help="Entries at or after this time (ISO 8601; UTC if no zone).")
@click.option("--until", type=_When(), help="Entries at or before this time.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write JSON lines to this file (default: stdout).")
@json_option
@pass_ctx
def export(ctx: CliContext, since: datetime | None, until: datetime | None, output: Path | None,
           as_json: bool) -> None:
    """Export audit entries as JSON lines (one entry per line, as stored, with seq, prev and hash).

    \b
    Example:
      consentry audit export --since 2026-01-01 --until 2026-02-01 --output january.jsonl
    """
    from ..wiring import audit_log

    if since and until and since > until:
        raise click.BadParameter("--since is after --until")
    n = 0
    with (output.open("w", encoding="utf-8") if output else _stdout()) as fh:
        for entry in audit_log(ctx.settings).entries(since, until):
            fh.write(json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str) + "\n")
            n += 1
    if as_json:
        emit_json({"exported": n, "output": str(output) if output else "-"})
    elif output:
        click.echo(f"exported {n} entries to {output}", err=True)


class _stdout:
    def __enter__(self):
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()


COMMANDS = [audit]
