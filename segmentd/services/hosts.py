"""Host reports and expiry: an agent's report recorded (its heartbeat too) and its host's
reach settled under the host's lock, and silent agents expired.

What a host reaches is derived in services/reach.py; agents, their shape and their API,
are in services/agents.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check
from segmentd.context import RequestContext
from segmentd.db import agents as agent_rows
from segmentd.db import chassis as chassis_rows
from segmentd.db import hosts as rows
from segmentd.errors import (
    HostClaimedByChassis,
    HostReportNotAllowed,
    InvalidInput,
    PolicyNotAuthorized,
    TooManyAgents,
)
from segmentd.services.agents import agent_view, live, new_agent
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.reach import (
    canonical,
    reach_of,
    record_reach_change,
    settle_reach,
)
from segmentd.services.uow import UnitOfWork


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
