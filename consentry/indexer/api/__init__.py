"""The HTTP query API (FastAPI): ``create_app(settings, services)``; routers per concern in ``routes_*``."""

from .app import ROUTERS, create_app

__all__ = ["ROUTERS", "create_app"]
