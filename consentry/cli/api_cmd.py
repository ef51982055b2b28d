"""`consentry api`: the HTTP query API."""

from __future__ import annotations

import click

from .common import CliContext, pass_ctx


@click.group("api")
def api() -> None:
    """The HTTP query API (FastAPI; OpenAPI at /openapi.json, docs at /docs) and the web console (/console)."""


@api.command("serve")
@click.option("--host", help="Address to listen on (default: api_host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: api_port, 8000).")
@pass_ctx
def serve(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the query API, and the web console at /console, until interrupted.

    \b
    Example:
      consentry api serve --port 8000
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/search/face/FACE_ID?purpose=...&case=...
    """
    import uvicorn

    from ..indexer.api import create_app
    from ..wiring import indexer_services, operations_view

    s = ctx.settings
    services = indexer_services(s)
    app = create_app(s, services, operations=operations_view(s, services.objects))
    uvicorn.run(app, host=host or s.api_host, port=port or s.api_port,
                log_level=s.log_level.lower(), proxy_headers=False, server_header=False)


COMMANDS = [api]
