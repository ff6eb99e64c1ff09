"""Host reports, agents, and what each host reaches.

A host reaches the union of what its live agents report: the physnets of their bridge,
interface and device mappings, and their tunnel types. Only that union is stored (as
reach keys, see db/hosts.py); which segments a host reaches is derived from it in SQL.
So a report writes only the keys that changed, a new segment writes nothing per host,
and every change of a host's reach is one `host.segments_changed` event naming the
segments gained and lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.db import agents as agent_rows
from segmentd.db import chassis as chassis_rows
from segmentd.db import hosts as rows
from segmentd.db.hosts import ReachKey
from segmentd.errors import (
    AgentNotFound,
    HostClaimedByChassis,
    HostReportNotAllowed,
    InvalidInput,
    PolicyNotAuthorized,
    TooManyAgents,
)
from segmentd.query import ListQuery, Page
from segmentd.services.binding import rebind_host_ports
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.shapes import timestamp
from segmentd.services.uow import UnitOfWork

MAPPING_KINDS = ("bridge_mappings", "interface_mappings", "device_mappings")


def reach_of(configurations: Mapping[str, Any]) -> set[ReachKey]:
    """The reach keys one agent's configurations give its host (gre reaches nothing)."""
    physnets = set().union(*(configurations.get(kind) or {} for kind in MAPPING_KINDS))
    keys = {(t, p) for p in physnets for t in c.PHYSICAL_TYPES}
    keys |= {(t, c.NO_PHYSNET_KEY) for t in configurations.get("tunnel_types") or ()
             if t in c.TUNNEL_TYPES}
    return keys


def describe_reach(keys: Iterable[ReachKey]) -> tuple[list[str], list[str]]:
    """(physnets, tunnel types) of a set of reach keys, sorted."""
    keys = list(keys)
    physnets = sorted({p for _, p in keys if p != c.NO_PHYSNET_KEY})
    tunnels = sorted({t for t, p in keys if p == c.NO_PHYSNET_KEY})
    return physnets, tunnels


def canonical(configurations: Mapping[str, Any]) -> str:
    """One text per meaning, so an identical report compares equal to the stored one."""
    full = {kind: configurations.get(kind) or {} for kind in MAPPING_KINDS}
    full["device_mappings"] = {p: sorted(d) for p, d in full["device_mappings"].items()}
    full["tunnel_types"] = sorted(configurations.get("tunnel_types") or ())
    return orjson.dumps(full, option=orjson.OPT_SORT_KEYS).decode()


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


async def settle_reach(
    ctx: RequestContext | None,
    uow: UnitOfWork,
    host: str,
    live_agents: Iterable[Mapping[str, Any]],
    reason: str,
    current: set[ReachKey] | None = None,
) -> bool:
    """Make the host's stored reach the union over `live_agents`; one event if it changed.

    The caller holds the host's lock and may pass the stored reach if it knows it (a host
    with no agent has none). Returns whether anything changed.
    """
    wanted: set[ReachKey] = set()
    for agent in live_agents:
        wanted |= reach_of(orjson.loads(agent["configurations"]))
    if current is None:
        current = await rows.reach_of_host(uow.conn, host)
    added, removed = wanted - current, current - wanted
    if not added and not removed:
        return False
    # A segment matches exactly one key, so gained and lost are the segments of those keys.
    gained = await rows.add_reach(uow.conn, host, added)
    lost = await rows.remove_reach(uow.conn, host, removed)
    await record_reach_change(ctx, uow, host, reason, wanted, gained, lost)
    return True


async def record_reach_change(ctx, uow: UnitOfWork, host: str, reason: str,
                              reach: set[ReachKey], gained: list[str], lost: list[str],
                              rebind: bool = True) -> None:
    """The host.segments_changed event, then the host's ports bound again as its reach now
    stands (a port whose segment the host lost goes DOWN, with its own event)."""
    physnets, tunnels = describe_reach(reach)
    change = {"host": host, "reason": reason, "physnets": physnets, "tunnel_types": tunnels,
              "gained": gained, "lost": lost}
    uow.record(ctx, c.EVENT_HOST_SEGMENTS_CHANGED, change, None, resource_id=host)
    if rebind:
        await rebind_host_ports(ctx, uow, host)


async def apply_report(
    ctx: RequestContext, uow: UnitOfWork, clock: HostClock, report: dict[str, Any],
    on_change: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Record an agent's report (its heartbeat too) and settle its host's reach.

    A report identical to the agent's last one, from a live agent, only moves the
    heartbeat: no reach, event or audit row is written (`uow.quiet`).
    """
    host = report["host"]
    if not check(ctx, "create_host_report", {"host": host}):
        # Policy decides (rule:own_host); a host's agent is told which host it may name.
        if ctx.host not in (None, host):
            raise HostReportNotAllowed(bound=ctx.host, host=host)
        raise PolicyNotAuthorized(action="create_host_report")
    if report["agent_type"] == c.OVN_AGENT_TYPE:
        raise InvalidInput(error_message=f"agent_type '{c.OVN_AGENT_TYPE}' is learned from "
                           "OVN's Southbound DB, not reported")
    return await record_report(ctx, uow, clock, report, on_change=on_change)


async def record_report(ctx: RequestContext | None, uow: UnitOfWork, clock: HostClock,
                         report: dict[str, Any], claim: str | None = None,
                         on_change: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Record a report and settle its host's reach, under the host's lock.

    With `claim` (a chassis name) the host must be free or that chassis' already, else
    HostClaimedByChassis and nothing is written. `on_change(host)` is called before a
    report that changes something is written (a heartbeat does not call it); it may raise
    to refuse the report (the per-host change budget).
    """
    host = report["host"]
    now = utcnow()
    cutoff = clock.cutoff(now)
    conf = canonical(report["configurations"])
    if len(conf) > c.REPORT_MAX_CONFIGURATION_BYTES:
        raise InvalidInput(error_message=(
            f"configurations of {len(conf)} bytes exceed the limit of "
            f"{c.REPORT_MAX_CONFIGURATION_BYTES}"))
    created = await rows.lock_host(uow.conn, host, now)
    if claim is not None:
        holder = await chassis_rows.claim_host(uow.conn, host, claim)
        if holder != claim:
            raise HostClaimedByChassis(host=host, chassis=holder)
    reason = "report" if claim is None else "chassis"
    # A host this report created has no agents yet (and so no reach).
    agents = [] if created else list(await agent_rows.agents_of_host(uow.conn, host))
    mine = next((a for a in agents if a["agent_type"] == report["agent_type"]), None)

    if mine is not None and live(mine, cutoff) and mine["configurations"] == conf \
            and mine["binary"] == report["binary"]:
        await agent_rows.update_agent(uow.conn, mine["id"], {"heartbeat_at": now})
        uow.quiet = True
        return agent_view({**mine, "heartbeat_at": now}, clock, now)

    if on_change is not None:
        on_change(host)
    if mine is None:
        if len(agents) >= c.HOST_MAX_AGENTS:  # expired ones count: they are kept until deleted
            raise TooManyAgents(host=host, limit=c.HOST_MAX_AGENTS)
        agent = new_agent(report, conf, now)
        if not agents:
            # The host's first agent: its reach is exactly this report's (one statement
            # with the agent on PostgreSQL).
            reach = reach_of(orjson.loads(conf))
            gained = await rows.insert_first_agent(uow.conn, agent, reach)
            view = agent_view(agent, clock, now)
            uow.record(ctx, c.EVENT_AGENT_CREATED, view, None)
            if reach:
                await record_reach_change(ctx, uow, host, reason, reach, gained, [])
            return view
        await agent_rows.insert_agent(uow.conn, agent)
        event = c.EVENT_AGENT_CREATED
    else:
        revived = not live(mine, cutoff)
        values = {"binary": report["binary"], "configurations": conf, "heartbeat_at": now,
                  "expired": False, **({"started_at": now} if revived else {})}
        await agent_rows.update_agent(uow.conn, mine["id"], values)
        agent = {**mine, **values}
        event = c.EVENT_AGENT_UPDATED
    view = agent_view(agent, clock, now)
    uow.record(ctx, event, view, None)
    others = [a for a in agents if a["id"] != agent["id"] and live(a, cutoff)]
    # Reach is only ever written from agents, so a host without agents reaches nothing.
    known = set() if not agents else None
    await settle_reach(ctx, uow, host, [agent, *others], reason, known)
    return view


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


async def expire_host(uow: UnitOfWork, clock: HostClock, host: str) -> bool:
    """Mark the host's silent agents expired and drop what they alone gave it.

    Safe to run in several processes at once: the host lock orders them and the second
    finds nothing left to expire.
    """
    now = utcnow()
    cutoff = clock.cutoff(now)
    await rows.lock_existing_host(uow.conn, host)
    if await agent_rows.expire_agents(uow.conn, host, cutoff) == 0:
        return False
    agents = await agent_rows.agents_of_host(uow.conn, host)
    await settle_reach(None, uow, host, [a for a in agents if live(a, cutoff)], "expired")
    return True


async def stale_hosts(conn: AsyncConnection, clock: HostClock, limit: int) -> list[str]:
    """Hosts with an agent whose heartbeat is past the grace period (the sweeper's work)."""
    return await agent_rows.hosts_with_stale_agents(conn, clock.cutoff(utcnow()), limit)
