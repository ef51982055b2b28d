"""`consentry token`: API tokens with roles (stored hashed in the object store)."""

from __future__ import annotations

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table

ROLES = ["searcher", "operator", "auditor", "privacy"]


@click.group("token")
def token() -> None:
    """Create, list and revoke API tokens (roles: searcher, operator, auditor, privacy)."""


@token.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@json_option
@pass_ctx
def create(ctx: CliContext, name: str, role: str, as_json: bool) -> None:
    """Create a token for NAME and print it once (only its sha256 is kept).

    \b
    Example:
      consentry token create alice --role searcher
    """
    from ..wiring import audit_log, object_store, token_store
    from .common import local_actor

    store = object_store(ctx.settings)
    rec, secret = token_store(ctx.settings, store).create(name, role)
    audit_log(ctx.settings, store).append("token.create", local_actor(), token_id=rec.id, name=rec.name,
                                          role=rec.role.value)
    if as_json:
        emit_json({**rec.public(), "token": secret})
        return
    click.echo(f"created token {rec.id} for {rec.name} (role {rec.role.value}); it is shown only now:", err=True)
    click.echo(secret)


@token.command("list")
@json_option
@pass_ctx
def list_(ctx: CliContext, as_json: bool) -> None:
    """List tokens (never their secrets).

    \b
    Example:
      consentry token list --json
    """
    from ..wiring import token_store

    recs = token_store(ctx.settings).list()
    if as_json:
        emit_json([r.public() for r in recs])
        return
    table([(r.id, r.name, r.role.value, r.created_at.isoformat(timespec="seconds"),
            r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "") for r in recs],
          ["id", "name", "role", "created", "revoked"])


@token.command("revoke")
@click.argument("token_id")
@json_option
@pass_ctx
def revoke(ctx: CliContext, token_id: str, as_json: bool) -> None:
    """Revoke a token by id (or by name, when one active token has it).

    \b
    Example:
      consentry token revoke 3f2a9c0d1b7e4a65
    """
    from ..wiring import audit_log, object_store, token_store
    from .common import local_actor

    store = object_store(ctx.settings)
    rec = token_store(ctx.settings, store).revoke(token_id)
    audit_log(ctx.settings, store).append("token.revoke", local_actor(), token_id=rec.id, name=rec.name)
    if as_json:
        emit_json(rec.public())
    else:
        click.echo(f"revoked token {rec.id} ({rec.name}, {rec.role.value})")


COMMANDS = [token]
