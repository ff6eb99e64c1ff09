"""Agents: their rows and Neutron's wire shape, which of them count, and Neutron's agents
API (show, list, update, delete). A host reaches what its live agents report (see
services/reach.py); agents are created and refreshed by host reports (services/hosts.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.db import agents as agent_rows
from segmentd.db import hosts as rows
from segmentd.errors import AgentNotFound
from segmentd.query import ListQuery, Page
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.reach import settle_reach
from segmentd.services.shapes import timestamp
from segmentd.services.uow import UnitOfWork


def agent_view(row: Mapping[str, Any], clock: HostClock, now: datetime) -> dict[str, Any]:
    return {
        "id": row["id"],
        "host": row["host"],
        "agent_type": row["agent_type"],
        "binary": row["binary"],
        "alive": is_chassis_agent(row) or (clock.alive(row["heartbeat_at"], now)
                                         and not row["expired"]),
        "admin_state_up": row["admin_state_up"],
        "description": row["description"],
        "configurations": orjson.loads(row["configurations"]),
        "heartbeat_timestamp": timestamp(row["heartbeat_at"]),
        "started_at": timestamp(row["started_at"]),
        "created_at": timestamp(row["created_at"]),
        "availability_zone": None,
        "topic": None,
    }


def new_agent(report: Mapping[str, Any], conf: str, now: datetime) -> dict[str, Any]:
    """The row of an agent's first report (`conf`: its canonical configurations)."""
    return {
        "id": str(uuid.uuid4()), "host": report["host"], "agent_type": report["agent_type"],
        "binary": report["binary"], "description": "", "admin_state_up": True,
        "configurations": conf, "heartbeat_at": now, "expired": False,
        "started_at": now, "created_at": now,
    }


def is_chassis_agent(agent: Mapping[str, Any]) -> bool:
    return agent["agent_type"] == c.OVN_AGENT_TYPE


def live(agent: Mapping[str, Any], cutoff: datetime) -> bool:
    """Whether the agent counts: a chassis' agent always (it is deleted with the chassis)."""
    return is_chassis_agent(agent) or (not agent["expired"] and agent["heartbeat_at"] >= cutoff)


async def get_agent(ctx: RequestContext, conn: AsyncConnection, clock: HostClock, agent_id: str):
    """The agent; to a caller who may not read agents it is missing (Neutron's 404)."""
    row = await agent_rows.get_agent(conn, agent_id) if check(ctx, "get_agent") else None
    if row is None:
        raise AgentNotFound(id=agent_id)
    return agent_view(row, clock, utcnow())


async def list_agents(ctx: RequestContext, conn: AsyncConnection, q: ListQuery, clock: HostClock):
    """Neutron answers a caller who may read no agent with an empty list, not a 403."""
    if not check(ctx, "get_agent"):
        return Page([])
    found = await agent_rows.list_agents(conn, q)
    now = utcnow()
    return Page([agent_view(r, clock, now) for r in found])


def _changeable(ctx: RequestContext, action: str, row, agent_id: str):
    """The agent `action` may change: Neutron's 404 to a caller who may not even read
    agents (or when it is missing), 403 to one who may read but not change them."""
    if row is None or not (check(ctx, action) or check(ctx, "get_agent")):
        raise AgentNotFound(id=agent_id)
    enforce(ctx, action)
    return row


async def update_agent(
    ctx: RequestContext, uow: UnitOfWork, clock: HostClock, agent_id: str, data: dict[str, Any]
):
    """admin_state_up and description; neither changes what the host reaches."""
    row = _changeable(ctx, "update_agent", await agent_rows.get_agent(uow.conn, agent_id), agent_id)
    values = {k: data[k] for k in ("admin_state_up", "description") if k in data}
    if values.get("description", "") is None:
        values["description"] = ""
    if not values:  # `{"agent": {}}`: nothing to write (an empty UPDATE is a syntax error)
        return agent_view(row, clock, utcnow())
    await agent_rows.update_agent(uow.conn, agent_id, values)
    view = agent_view({**row, **values}, clock, utcnow())
    uow.record(ctx, c.EVENT_AGENT_UPDATED, view, None)
    return view


async def host_of_agent(ctx: RequestContext, conn: AsyncConnection, agent_id: str) -> str:
    """The host of an agent the caller may delete, read before the deleting transaction."""
    return _changeable(ctx, "delete_agent", await agent_rows.get_agent(conn, agent_id), agent_id)["host"]


async def delete_agent(
    ctx: RequestContext, uow: UnitOfWork, clock: HostClock, agent_id: str, host: str
):
    """Delete an agent (on `host`, see host_of_agent); the host keeps only what its other
    live agents still report.

    The host lock is this transaction's first statement: on MariaDB (REPEATABLE READ) an
    earlier plain read would fix the snapshot before the lock, and the agents and reach
    read under it would miss a report committed in between.
    """
    enforce(ctx, "delete_agent")
    now = utcnow()
    await rows.lock_existing_host(uow.conn, host)
    row = await agent_rows.get_agent(uow.conn, agent_id)
    if row is None:  # deleted by someone else since we looked
        raise AgentNotFound(id=agent_id)
    await agent_rows.delete_agent(uow.conn, agent_id)
    remaining = await agent_rows.agents_of_host(uow.conn, row["host"])
    cutoff = clock.cutoff(now)
    await settle_reach(ctx, uow, row["host"], [a for a in remaining if live(a, cutoff)],
                       "agent_deleted")
    if not remaining:
        await rows.delete_host(uow.conn, row["host"])
    uow.record(ctx, c.EVENT_AGENT_DELETED, agent_view(row, clock, now), None)
