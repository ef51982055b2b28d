"""`consentry api`: the HTTP query API."""

from __future__ import annotations

import click

from .common import CliContext, not_built, pass_ctx


@click.group("api")
def api() -> None:
    """The HTTP query API (FastAPI)."""


@api.command("serve")
@click.option("--host")
@click.option("--port", type=int)
@pass_ctx
def serve(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the query API. Example: consentry api serve --port 8000"""
    not_built("api serve")


COMMANDS = [api]
