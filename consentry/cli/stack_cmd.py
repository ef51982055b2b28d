"""`consentry stack`: the local servers (S3, Kafka-compatible broker, Milvus, a Ray head) on loopback."""

from __future__ import annotations

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table


@click.group("stack")
def stack() -> None:
    """Start, stop and inspect the local servers (SeaweedFS S3, tansu Kafka, Milvus, a Ray head).

    \b
    Example:
      consentry stack up --milvus embedded
      consentry stack status --json
      consentry stack down
    """


def _print(statuses, as_json: bool) -> None:
    from ..infra.stack import status_dicts

    if as_json:
        emit_json(status_dicts(statuses))
    else:
        table([(f"{s.role} ({s.name})" if s.role and s.role != s.name else s.name, s.address,
                "yes" if s.running else "no", "yes" if s.answers else "no", s.pid or "", s.detail)
               for s in statuses], ["service", "address", "running", "answers", "pid", "detail"])


@stack.command("up")
@click.option("--milvus", type=click.Choice(["embedded", "server"]), default=None,
              help="embedded = milvus-lite (default); server = Milvus 2.3 standalone.")
@click.option("--ray/--no-ray", "ray", default=None,
              help="Also start a local Ray head for `ingest run` (default: the stack_ray setting, on).")
@json_option
@pass_ctx
def up(ctx: CliContext, milvus: str | None, ray: bool | None, as_json: bool) -> None:
    """Start the servers (idempotent) and create buckets and topics.

    The Ray head listens on 127.0.0.1 only, with Ray's token authentication (the token is generated
    once into $CONSENTRY_HOME/stack/ray/auth_token); `consentry ingest run` connects to it.

    Example: consentry stack up --milvus server
    """
    from ..infra.stack import Stack

    st = Stack(ctx.settings)
    if not as_json:
        click.echo(f"starting the local stack in {ctx.settings.stack_dir} …", err=True)
    _print(st.up(milvus, ray), as_json)


@stack.command("down")
@json_option
@pass_ctx
def down(ctx: CliContext, as_json: bool) -> None:
    """Stop the servers (nothing running is fine).

    Example: consentry stack down
    """
    from ..infra.stack import Stack

    stopped = Stack(ctx.settings).down()
    if as_json:
        emit_json({"stopped": stopped})
    else:
        click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack.command("status")
@json_option
@pass_ctx
def status(ctx: CliContext, as_json: bool) -> None:
    """Show each server, its address, and whether it answers. Exit 1 if any does not.

    Example: consentry stack status --json
    """
    from ..infra.stack import Stack

    statuses = Stack(ctx.settings).status()
    _print(statuses, as_json)
    if not all(s.answers for s in statuses):
        raise click.exceptions.Exit(1)


COMMANDS = [stack]
