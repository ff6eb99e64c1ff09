"""create_app(settings): the one place that wires the service together."""

from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from segmentd.api.errors import install_error_handlers
from segmentd.api.middleware import RequestIdMiddleware
from segmentd.api.routes import meta, networks, segments
from segmentd.api.runtime import Runtime
from segmentd.config import Settings
from segmentd.db.engine import make_engine
from segmentd.events.bus import EventBus
from segmentd.services.types import TypeRules

LOG = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_mode(settings: Settings, warn: bool = True) -> None:
    """Refuse modes that cannot run safely; warn on every start in development mode."""
    if settings.auth_mode != "development":
        raise ValueError(
            "auth_mode 'token' is not available in this version; set auth_mode = "
            '"development" (loopback only)'
        )
    if not is_loopback(settings.host):
        raise ValueError("auth_mode 'development' trusts request headers: bind it to loopback only")
    if warn:
        LOG.warning(
                "auth_mode is 'development': X-Project-Id/X-Roles headers are trusted and any "
            "token is accepted; never expose this server"
        )


def create_app(settings: Settings, bus: EventBus | None = None) -> FastAPI:
    """Build the ASGI app; the engine is created and disposed by its lifespan."""
    check_auth_mode(settings)
    bus = bus or EventBus()
    rules = TypeRules(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.database_url, settings.database_pool_size)
        app.state.runtime = Runtime(settings=settings, engine=engine, bus=bus, rules=rules)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="segmentd",
        summary="Network segment management speaking Neutron's /v2.0 API",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        version="2.0",  # the API's version; no response names a software version
    )
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    for module in (meta, networks, segments):
        app.include_router(module.router)
    return app


SETTINGS_ENV = "_SEGMENTD_SETTINGS_JSON"  # how `segmentd serve` hands settings to its workers


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes started by `segmentd serve --workers N`."""
    import os

    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))
