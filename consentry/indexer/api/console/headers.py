"""Security headers on every response; the strict set on the console's pages.

Console (``/console``): a Content-Security-Policy that allows only this origin's scripts and styles
(no inline script, no ``eval``), images only from this origin or our own ``data:`` crops, no
framing (``frame-ancestors 'none'``), forms only to this origin, no ``<base>``; responses are not
cached (they show biometric data) and send no Referer to other sites.
Everything else (the JSON API, /docs): no framing, no MIME sniffing, no Referer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
COMMON = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))
#: same-origin, not no-referrer: with no-referrer browsers send ``Origin: null`` on form posts, and the
#: console checks the Origin of every state-changing request; nothing is sent to other sites either way
CONSOLE = (*COMMON, (b"referrer-policy", b"same-origin"), (b"content-security-policy", CONSOLE_CSP.encode()),
           (b"cache-control", b"no-store"),
           (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin"),
           (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"))
OTHER = (*COMMON, (b"referrer-policy", b"no-referrer"), (b"content-security-policy", b"frame-ancestors 'none'"))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/console") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = CONSOLE if path == self.prefix or path.startswith(self.prefix + "/") else OTHER

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in extra if k not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
