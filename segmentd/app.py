"""create_app(settings): the one place that wires the service together."""

from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from segmentd.api.errors import install_error_handlers
from fastapi.middleware.cors import CORSMiddleware

from segmentd.api.middleware import (
    AuditFailuresMiddleware,
    BodyLimitMiddleware,
    ResponseHeadersMiddleware,
)
from segmentd.api.ratelimit import RateLimiter
from segmentd.api.routes import audit_events, meta, networks, segments
from segmentd.api.runtime import Runtime
from segmentd.auth.policy import Policy
from segmentd.auth.tokens import DatabaseTokenValidator
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
        return
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

    policy = Policy(settings.policy_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(
            settings.database_url, settings.database_pool_size,
            settings.database_statement_timeout_ms,
        )
        validator = (
            None if settings.auth_mode == "development"
            else DatabaseTokenValidator(engine, settings.token_cache_seconds)
        )
        app.state.runtime = Runtime(
            settings=settings, engine=engine, bus=bus, rules=rules, policy=policy,
            validator=validator,
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        )
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
    # Added innermost first: headers wrap everything, then the body limit, then the audit.
    app.add_middleware(AuditFailuresMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_body_bytes)
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "X-Auth-Token", "If-Match"],
            expose_headers=["X-Openstack-Request-Id"],
        )
    app.add_middleware(ResponseHeadersMiddleware)
    for module in (meta, networks, segments, audit_events):
        app.include_router(module.router)
    return app


SETTINGS_ENV = "_SEGMENTD_SETTINGS_JSON"  # how `segmentd serve` hands settings to its workers


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes started by `segmentd serve --workers N`."""
    import os

    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))
