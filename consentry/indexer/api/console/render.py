"""Server-side rendering of the console: one Jinja2 environment, autoescaping everything.

Attacker-controlled text (URLs, titles, alt text, reasons from crawled pages) is only ever inserted
as escaped text. Links are made only from http(s) URLs (:func:`http_url`); anything else, such as
``javascript:`` or ``data:``, is shown as text. Our own images (face crops) are ``data:image/jpeg``
URIs built here from bytes, never from input.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...auth import Role
from .session import Session

HERE = Path(__file__).parent
#: the console's pages, in menu order: (path, label, roles that see it)
PAGES: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("/console/search", "Search", (Role.SEARCHER,)),
    ("/console/erase", "Erase", (Role.PRIVACY,)),
    ("/console/explain", "Explain", (Role.OPERATOR, Role.AUDITOR, Role.PRIVACY)),
    ("/console/audit", "Audit", (Role.AUDITOR,)),
    ("/console/operations", "Operations", (Role.OPERATOR,)),
)


def http_url(value: Any) -> bool:
    """May ``value`` be rendered as a link? Only absolute http(s) URLs without control characters."""
    if not isinstance(value, str) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def jpeg_data_uri(data: bytes | None) -> str | None:
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode()


def when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM UTC`` (text passed through as it is)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "" if value is None else str(value)


def scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(when=when)
env.tests.update(http_url=http_url, scalar=scalar)


def menu(session: Session | None) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in PAGES if session and session.role in roles]


def page(request: Request, template: str, session: Session | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render ``template`` with the menu for the session's role and its CSRF token."""
    html = env.get_template(template).render(
        request_path=request.url.path, session=session, menu=menu(session),
        csrf=session.csrf if session else "", **ctx)
    return HTMLResponse(html, status_code=status)
