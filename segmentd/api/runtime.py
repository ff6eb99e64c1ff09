"""What create_app puts on app.state for the routes, and the audited write path."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.api.ratelimit import RequestLimits
from segmentd.auth.policy import Policy
from segmentd.auth.tokens import TokenValidator
from segmentd.config import Settings
from segmentd.context import RequestContext
from segmentd.db.engine import read_connection
from segmentd.events.addresses import AddressPolicy
from segmentd.services import audit
from segmentd.services.clock import HostClock
from segmentd.services.network_types import TypeRules
from segmentd.services.realization import Watch
from segmentd.services.uow import UnitOfWork, transact
from segmentd.workers.dispatcher import Dispatcher

T = TypeVar("T")
SUCCESS_STATUS = {"POST": 201, "PUT": 200, "DELETE": 204}


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    dispatcher: Dispatcher
    rules: TypeRules
    clock: HostClock
    address_policy: AddressPolicy
    policy: Policy
    validator: TokenValidator | None
    limits: RequestLimits
    realization: Watch | None = None  # the backend realizing changes, when there is one

    async def write(self, ctx: RequestContext, request: Request,
                    work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in one transaction holding the change, its events and its audit row
        (run again from the start if the database aborts it as a deadlock victim)."""

        def audit_success(uow: UnitOfWork) -> dict | list[dict] | None:
            if uow.quiet:  # a heartbeat: nothing changed that an audit row would describe
                return None
            action, resource_type, resource_id = audit_target(request)

            def row(of_id: str | None) -> dict:
                return audit.audit_row(
                    ctx, request_id=ctx.request_id, action=action, resource_type=resource_type,
                    resource_id=of_id, status=SUCCESS_STATUS.get(request.method, 200),
                )

            if uow.bulk:  # a row per resource a bulk create made, as for single creates
                return [row(e.resource_id) for e in uow.events
                        if e.type == f"{resource_type}.created"]
            if resource_id is None and uow.events:
                resource_id = uow.events[0].resource_id
            return row(resource_id)

        result = await transact(self.engine, work, audit=audit_success,
                                after_commit=self.dispatcher.wake)
        # Committed, with its audit row: an error answered after this point is not
        # recorded again as a refusal. (Set only now: work may ask for the audit row and
        # still fail, and its refusal must be recorded.)
        request.state.audited = True
        return result

    def read(self):
        return read_connection(self.engine)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def route_resource_type(path_template: str) -> str:
    """The resource a route acts on, from its path template (`/v2.0/networks/{network_id}`:
    network): a name from the route table, never text of a request's path."""
    parts = [p for p in path_template.split("/") if p and not p.startswith("{")]
    collection = parts[1] if len(parts) > 1 and parts[0] == "v2.0" else (parts[0] if parts else "")
    return (collection[:-1] if collection.endswith("s") else collection) or "none"


# What a path's id must look like to be recorded as one: every mutating route names its
# resource by UUID (a host, named by its host name, is only ever read).
ID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def audit_target(request) -> tuple[str, str, str | None]:
    """(action, resource type, resource id) of a request, from the route that took it.

    A request no route took (404), or whose method its route does not take (405), is
    `<method>_unrouted` on resource type "none": its path is the caller's free text and is
    never recorded. Nor is an id in the path that is not shaped like one (`<invalid>`).
    """
    scope = request.scope
    route = scope.get("route")
    path_template = getattr(route, "path", None)
    if path_template is None or scope["method"] not in getattr(route, "methods", ()):
        return f"{scope['method'].lower()}_unrouted", "none", None
    params = scope.get("path_params") or {}
    resource_id = next(iter(params.values()), None) if params else None
    if resource_id is not None and not ID_SHAPE.fullmatch(resource_id):
        resource_id = "<invalid>"  # free text where an id goes: not recorded
    return route.name, route_resource_type(path_template), resource_id
