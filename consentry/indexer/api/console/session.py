"""Console sign-in: the API token in an HttpOnly, SameSite=Strict cookie, and a CSRF token derived from it.

- The token is posted once, on the sign-in form, and kept only in the cookie ``consentry_session``
  (HttpOnly: page scripts cannot read it; SameSite=Strict: other sites' requests never carry it;
  Secure over TLS; ``Path=/console``; ``Max-Age`` = ``api_console_session_minutes``). It is never
  put in a URL or in browser storage, and the Bearer API under ``/v1`` ignores the cookie.
- Every state-changing console request (POST) must also carry the CSRF token in a form field: an
  HMAC of a fixed label keyed by the session's token, so it needs no server-side state (any API
  replica checks it) and cannot be computed by a page that cannot read the cookie. A cross-site
  ``Origin`` or ``Sec-Fetch-Site`` is refused as well.
- Each request re-checks the token (revocation applies within the token cache's few seconds), its
  rate limit and its role, through the same gate as the Bearer API (:func:`..deps.admit`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Request, Response

from ....core.errors import AccessDenied
from ...auth import Principal, Role
from ..deps import admit
from ..errors import RateLimited

COOKIE = "consentry_session"
COOKIE_PATH = "/console"
_CSRF_LABEL = b"consentry-console-csrf-v1"


class SignInRequired(Exception):
    """No (valid) session: the page answers with a redirect to the sign-in page."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class ConsoleRefused(Exception):
    """The session may not do this (403), is rate limited (429) or the request is cross-site (403)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str

    @property
    def role(self) -> Role:
        return self.principal.role


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def secure_cookie(request: Request) -> bool:
    mode = request.app.state.settings.api_console_secure_cookie
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def set_session(request: Request, response: Response, token: str) -> None:
    minutes = request.app.state.settings.api_console_session_minutes
    response.set_cookie(COOKIE, token, max_age=minutes * 60, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=secure_cookie(request))


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure_cookie(request))


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser says came from another site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ConsoleRefused(403, "cross-site request refused")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ConsoleRefused(403, "cross-site request refused")


def _session(request: Request, roles: tuple[Role, ...]) -> Session:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired()
    try:
        principal = admit(request, token, roles)
    except AccessDenied as exc:
        if exc.status == 401:
            raise SignInRequired(f"please sign in again ({exc})") from None
        role = request.app.state.services.tokens.authenticate(token).role.value
        raise ConsoleRefused(403, f"your role ({role}) may not use this page") from None
    except RateLimited as exc:
        raise ConsoleRefused(429, str(exc), retry_after=exc.retry_after) from None
    return Session(principal, csrf_token(token))


def viewer(*roles: Role) -> Callable[..., Session]:
    """A dependency for console pages (GET): a signed-in session holding one of ``roles``."""

    def dep(request: Request) -> Session:
        return _session(request, roles)

    dep.__name__ = f"console_{'_or_'.join(r.value for r in roles)}"
    return dep


def actor(*roles: Role) -> Callable[..., Session]:
    """A dependency for console actions (POST): a session holding one of ``roles``, the CSRF token, same origin."""

    def dep(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Session:
        check_same_origin(request)
        session = _session(request, roles)
        if not hmac.compare_digest(csrf, session.csrf):
            raise ConsoleRefused(403, "the form's CSRF token is missing or wrong; reload the page and try again")
        return session

    dep.__name__ = f"console_action_{'_or_'.join(r.value for r in roles)}"
    return dep
