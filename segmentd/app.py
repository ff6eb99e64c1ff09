"""create_app(settings): the one place that wires the service together."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import SQLAlchemyError

from segmentd.api.errors import install_error_handlers
from segmentd.api.middleware import (
    AuditFailuresMiddleware,
    BodyLimitMiddleware,
    ResponseHeadersMiddleware,
)
from segmentd.api.ratelimit import RequestLimits
from segmentd.api.routes import (
    agents,
    audit_events,
    event_subscriptions,
    health,
    hosts,
    ip_availability,
    meta,
    networks,
    ovn,
    ports,
    segments,
    subnets,
)
from segmentd.api.runtime import Runtime
from segmentd.auth.keystone import KeystoneTokenValidator
from segmentd.auth.policy import Policy
from segmentd.auth.tokens import DatabaseTokenValidator, TokenValidator
from segmentd.backends import create_backend
from segmentd.config import Settings
from segmentd.db.engine import make_engine, read_connection, server_warnings
from segmentd.events.addresses import AddressPolicy
from segmentd.events.amqp import AmqpPublisher
from segmentd.events.bus import EventBus
from segmentd.events.targets import AmqpTarget, LocalTarget, webhook_targets
from segmentd.events.webhooks import WebhookSender
from segmentd.services.clock import HostClock
from segmentd.services.network_types import TypeRules
from segmentd.services.realization import watch_of
from segmentd.workers import drift
from segmentd.workers.chassis import ChassisWatcher
from segmentd.workers.dispatcher import Dispatcher, DispatchSettings
from segmentd.workers.hosts import sweep_expired
from segmentd.workers.supervisor import Loop, Supervisor, every

LOG = logging.getLogger(__name__)
SERVER_CHECK_SECONDS = 5  # start-up waits no longer for the database server's settings


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


def token_validator(settings: Settings, engine) -> TokenValidator | None:
    """Who validates X-Auth-Token: segmentd's tokens, Keystone's (and segmentd's beside
    them, unless turned off), or nobody in development mode."""
    if settings.auth_mode == "development":
        return None
    local = DatabaseTokenValidator(engine, settings.token_cache_seconds)
    if settings.auth_mode == "token":
        return local
    return KeystoneTokenValidator(
        settings.keystone, local if settings.keystone.accept_local_tokens else None)


def dispatch_settings(settings: Settings) -> DispatchSettings:
    return DispatchSettings(
        interval=settings.event_dispatch_interval_seconds,
        retry_base=settings.event_retry_base_seconds,
        retry_max=settings.event_retry_max_seconds,
        lease=settings.event_lease_seconds,
        retention=settings.event_retention_seconds,
    )


def create_app(settings: Settings, bus: EventBus | None = None) -> FastAPI:
    """Build the ASGI app; the engine is created and disposed by its lifespan."""
    check_auth_mode(settings)
    bus = bus or EventBus()
    policy = Policy(settings.policy_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(
            settings.database_url, settings.database_pool_size,
            settings.database_statement_timeout_ms,
        )
        await _warn_about_server(engine)
        validator = token_validator(settings, engine)
        address_policy = AddressPolicy.from_settings(settings)
        sender = WebhookSender(address_policy, settings.webhook_timeout_seconds)
        publisher = (
            AmqpPublisher(settings.amqp_url, settings.amqp_exchange, settings.amqp_secret)
            if settings.amqp_url else None
        )
        targets = [LocalTarget(bus), *([AmqpTarget(publisher)] if publisher else [])]
        backend = create_backend(settings)
        backend.start()  # connects in the background: the API starts whether or not it answers
        if (target := backend.target()) is not None:
            targets.append(target)
        rules = TypeRules(settings, backend.limits)
        dispatcher = Dispatcher(engine, targets, webhook_targets(sender), dispatch_settings(settings))
        clock = HostClock(settings.agent_down_time_seconds, settings.host_grace_seconds)
        app.state.runtime = Runtime(
            settings=settings, engine=engine, dispatcher=dispatcher, rules=rules, clock=clock,
            address_policy=address_policy, policy=policy, validator=validator,
            limits=RequestLimits(settings),
            realization=watch_of(backend),
        )
        supervisor = Supervisor(_workers(app, settings, engine, backend, clock, dispatcher))
        supervisor.start()
        try:
            yield
        finally:
            await supervisor.stop()
            await sender.close()
            if publisher is not None:
                await publisher.close()
            await backend.stop()
            if isinstance(validator, KeystoneTokenValidator):
                await validator.close()
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
    # The routes go straight onto the app's router: an included router is matched as a
    # nested router of its own, request by request, which cost a seventh of the
    # instructions of a segment show (callgrind: 1.60 M against 1.36 M per request).
    for module in (meta, health, networks, segments, subnets, ports, ip_availability, hosts,
                   agents, event_subscriptions, audit_events, ovn):
        app.router.routes.extend(module.router.routes)
    return app


async def _warn_about_server(engine) -> None:
    """Log what the database server's configuration means for us; a server that cannot be
    asked now (or within a few seconds) is no reason not to start (requests answer 503
    until it is back)."""
    async def ask():
        async with read_connection(engine) as conn:
            return await server_warnings(conn)

    try:
        warnings = await asyncio.wait_for(ask(), SERVER_CHECK_SECONDS)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        LOG.warning("could not read the database server's settings (%s)", type(exc).__name__)
        return
    for warning in warnings:
        LOG.warning("%s", warning)


def _workers(app: FastAPI, settings: Settings, engine, backend, clock,
             dispatcher: Dispatcher) -> list:
    """The loops this process runs, in the order they start (the reverse of stopping)."""
    workers = [dispatcher, every("host-sweeper", settings.host_sweep_interval_seconds,
                                 lambda: sweep_expired(engine, clock, dispatcher.wake))]
    if backend.drift_mode != "off":  # for OVN: ovn.sync_mode, ovn.sync_interval_seconds
        workers.append(Loop(f"{backend.name}-drift",
                            lambda stop: drift.periodic(engine, backend, stop)))
    if (source := backend.chassis()) is not None:  # one process watches at a time
        watcher = ChassisWatcher(engine, source, clock, dispatcher.wake,
                                 settings.ovn.chassis_lease_seconds)
        app.state.chassis_watcher = watcher
        workers.append(Loop(f"{backend.name}-chassis", watcher.run))
    return workers


SETTINGS_ENV = "_SEGMENTD_SETTINGS_JSON"  # how `segmentd serve` hands settings to its workers


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes started by `segmentd serve --workers N`."""
    import os

    app = create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))
    settle_heap()
    return app


def settle_heap() -> None:
    """Keep what the process built at start-up out of the garbage collector's full passes.

    Modules, routes, schemas and policies (about 125,000 objects) live as long as the
    process, yet every full collection walked them: about 0.1 s here, a pause landing on
    whichever requests were in flight, and the long tail of list latencies. Frozen, they
    are skipped. (Only for a serving process: tests build many apps in one process.)
    """
    gc.collect()
    gc.freeze()
