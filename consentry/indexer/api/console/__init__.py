"""The web console at ``/console``: server-rendered pages for each role, served by the API process itself.

Jinja2 templates (``templates/``), one stylesheet and one small script (``static/``), no build step,
nothing fetched from elsewhere. See docs/console.md for the pages, the security model and why.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import pages_audit, pages_auth, pages_erase, pages_explain, pages_operations, pages_search
from .headers import SecurityHeadersMiddleware
from .render import HERE
from .session import ConsoleRefused, SignInRequired

ROUTERS = (pages_auth.router, pages_search.router, pages_erase.router, pages_explain.router, pages_audit.router,
           pages_operations.router)


def install(app: FastAPI) -> None:
    """Mount the console's pages and assets on ``app`` and add the security headers to every response."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequired, pages_auth.signed_out)  # type: ignore[arg-type]
    app.add_exception_handler(ConsoleRefused, pages_auth.refused)  # type: ignore[arg-type]
    app.add_middleware(SecurityHeadersMiddleware)


__all__ = ["install"]
