"""Sign in and out, and the console's front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from ....core.errors import AccessDenied
from ...auth import Role
from .render import PAGES, menu, page
from .session import (
    COOKIE,
    ConsoleRefused,
    Session,
    SignInRequired,
    actor,
    check_same_origin,
    clear_session,
    csrf_token,
    set_session,
    viewer,
)

router = APIRouter(prefix="/console", include_in_schema=False)
ANY_ROLE = tuple(Role)


def _home(session: Session) -> str:
    items = menu(session)
    return items[0][0] if items else "/console/login"


@router.get("")
def front(request: Request) -> Response:
    try:
        session = viewer(*ANY_ROLE)(request)
    except (SignInRequired, ConsoleRefused):
        return RedirectResponse("/console/login", status_code=303)
    return RedirectResponse(_home(session), status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    return page(request, "login.html", None, title="Sign in", error=None, pages=PAGES)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=256)] = "") -> Response:
    check_same_origin(request)
    state = request.app.state
    try:
        principal = state.services.tokens.authenticate(token.strip() or None)
    except AccessDenied as exc:
        state.metrics.auth_failures.labels(str(exc.status)).inc()
        return page(request, "login.html", None, status=401, title="Sign in", pages=PAGES,
                    error=f"Sign-in failed: {exc}.")
    session = Session(principal, csrf_token(token.strip()))
    resp = RedirectResponse(_home(session), status_code=303)
    set_session(request, resp, token.strip())
    return resp


@router.post("/logout")
def logout(request: Request, session: Annotated[Session, Depends(actor(*ANY_ROLE))]) -> Response:
    resp = RedirectResponse("/console/login", status_code=303)
    clear_session(request, resp)
    return resp


def signed_out(request: Request, exc: SignInRequired) -> Response:
    """The answer to a console request without a valid session: back to the sign-in page."""
    if request.method == "GET" and request.url.path != "/console/login":
        resp: Response = RedirectResponse("/console/login", status_code=303)
    else:
        resp = page(request, "login.html", None, status=401, title="Sign in", pages=PAGES,
                    error=exc.message or "Please sign in.")
    if COOKIE in request.cookies:
        clear_session(request, resp)
    return resp


def refused(request: Request, exc: ConsoleRefused) -> Response:
    headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))} if exc.retry_after else None
    session = None
    try:
        session = viewer(*ANY_ROLE)(request) if exc.status == 403 else None
    except (SignInRequired, ConsoleRefused):
        pass
    resp = page(request, "refused.html", session, status=exc.status, title="Not allowed" if exc.status == 403
                else "Too many requests", message=exc.message)
    if headers:
        resp.headers.update(headers)
    return resp
