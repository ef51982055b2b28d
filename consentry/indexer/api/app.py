"""The query API's app factory: ``create_app(settings, services)`` mounts the routers, errors and limits."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from ... import __version__
from ...catalog import JobStore, SourceRegistry
from ...core.settings import Settings
from ..operations import OperationsView
from ..ratelimit import RateLimiter
from ..services import Services
from . import (
    errors,
    routes_audit,
    routes_crops,
    routes_erasure,
    routes_explain,
    routes_faces,
    routes_health,
    routes_operations,
    routes_search,
)
from .console import install as install_console
from .limits import BodyLimitMiddleware
from .metrics import ApiMetrics, MetricsMiddleware

log = logging.getLogger("consentry.api")

#: the routers every app serves, one module per concern; a new concern (e.g. erasure for role ``privacy``)
#: adds its module here, using ``deps.require(Role...)`` and ``deps.ServicesDep``
ROUTERS: tuple[APIRouter, ...] = (routes_health.router, routes_search.router, routes_faces.router,
                                  routes_crops.router, routes_audit.router, routes_erasure.router,
                                  routes_explain.router, routes_operations.router)
#: room for the multipart framing and the form fields beside the photo
FORM_OVERHEAD_BYTES = 64 * 1024

DESCRIPTION = """Search consented, indexed faces with a stated purpose; every search is audit-logged.

Authenticate with `Authorization: Bearer <token>` (`consentry token create NAME --role ROLE`).
Roles: `searcher` (search, with purpose and case), `operator`, `auditor` (audit log), `privacy`.
Errors are `{"error": {"code", "message"}}`.
"""


def _check_schema(services: Services) -> None:
    """Create the collections on first use, check their schema on later starts (logged, not fatal)."""
    try:
        services.index.ensure()
    except Exception as exc:
        log.error("face index not ready: %s", exc)


def _bounded(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write this server's bounds (api_max_top_k, the search_threshold floor) into the OpenAPI document."""
    bounds = {"top_k": {"maximum": settings.api_max_top_k}, "threshold": {"minimum": settings.search_threshold}}

    def tighten(name: str, prop: dict[str, Any]) -> None:
        for variant in prop.get("anyOf", [prop]):
            if name in bounds and variant.get("type") in ("integer", "number"):
                variant.update(bounds[name])

    for component in schema.get("components", {}).get("schemas", {}).values():
        for name, prop in component.get("properties", {}).items():
            tighten(name, prop)
    for item in schema.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                tighten(param["name"], param.get("schema", {}))
    return schema


def create_app(settings: Settings, services: Services, *, operations: OperationsView | None = None,
               routers: Sequence[APIRouter] = (), console: bool = True) -> FastAPI:
    """The app over ``services`` (built by ``consentry.wiring.indexer_services``) and ``operations``
    (``consentry.wiring.operations_view``; without it, sources and jobs only: no ingest counters, no DLQ).
    ``console`` mounts the web console at /console."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=_check_schema, args=(services,), name="schema-check", daemon=True).start()
        yield

    app = FastAPI(title="Consentry query API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.services = services
    app.state.limiter = RateLimiter(settings.api_rate_limit_per_minute)
    app.state.metrics = ApiMetrics()
    app.state.operations = operations or OperationsView(SourceRegistry(services.objects), JobStore(services.objects))
    errors.install(app)
    for router in (*ROUTERS, *routers):
        app.include_router(router)
    generate = app.openapi
    app.openapi = lambda: app.openapi_schema or _bounded(generate(), settings)  # type: ignore[method-assign]
    if console:
        install_console(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_upload_bytes + FORM_OVERHEAD_BYTES)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: counts 413s too
    return app
