"""`consentry api`: the HTTP query API."""

from __future__ import annotations

import click

from .common import CliContext, pass_ctx


@click.group("api")
def api() -> None:
    """The HTTP query API (FastAPI; OpenAPI at /openapi.json, docs at /docs)."""


@api.command("serve")
@click.option("--host", help="Address to listen on (default: api_host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: api_port, 8000).")
@pass_ctx
def serve(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the query API until interrupted.

    \b
    Example:
      consentry api serve --port 8000
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/search/face/FACE_ID?purpose=...&case=...
    """
    import uvicorn

    from ..indexer.api import create_app
    from ..wiring import indexer_services

    s = ctx.settings
    uvicorn.run(create_app(s, indexer_services(s)), host=host or s.api_host, port=port or s.api_port,
                log_level=s.log_level.lower(), proxy_headers=False, server_header=False)


COMMANDS = [api]
