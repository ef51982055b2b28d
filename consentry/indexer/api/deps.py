"""What routes depend on: the services, and the caller (token checked, rate limited, role checked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ...core.errors import AccessDenied
from ..auth import Principal, Role, TokenStore
from ..services import Services
from .errors import ErrorOut, RateLimited

bearer = HTTPBearer(auto_error=False, description="An API token: `consentry token create NAME --role ROLE`.")

#: error responses every authenticated route may give (for the OpenAPI document)
AUTH_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorOut, "description": "Malformed request body."},
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked token."},
    403: {"model": ErrorOut, "description": "The token's role may not do this."},
    422: {"model": ErrorOut, "description": "Invalid request."},
    429: {"model": ErrorOut, "description": "Rate limit exceeded (see Retry-After)."},
    503: {"model": ErrorOut, "description": "A backing service (Milvus, S3) is unavailable."},
}


def get_services(request: Request) -> Services:
    return request.app.state.services


def admit(request: Request, token: str | None, roles: tuple[Role, ...]) -> Principal:
    """Check ``token`` (401), its rate limit (429) and its role (403); the one gate for the API and the console."""
    state = request.app.state
    try:
        principal = state.services.tokens.authenticate(token)
    except AccessDenied as exc:
        state.metrics.auth_failures.labels(str(exc.status)).inc()
        raise
    wait = state.limiter.acquire(principal.token_id)
    if wait > 0:
        state.metrics.rate_limited.inc()
        raise RateLimited(f"rate limit of {state.settings.api_rate_limit_per_minute} requests a minute "
                          "exceeded for this token", retry_after=wait)
    try:
        TokenStore.authorize(principal, roles)
    except AccessDenied:
        state.metrics.auth_failures.labels("403").inc()
        raise
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting callers whose bearer token holds one of ``roles``."""

    def caller(request: Request,
               creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        return admit(request, creds.credentials if creds else None, roles)

    caller.__name__ = f"require_{'_or_'.join(r.value for r in roles)}"
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
