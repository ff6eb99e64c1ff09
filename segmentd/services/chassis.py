"""OVN chassis as hosts: each is its hostname's "OVN Controller agent".

The rules are the host service's (services/hosts.py, reach.py and agents.py): a chassis
is recorded as a host report, so one set of rules decides what every host reaches. What
is particular to chassis is here: a hostname is held by the first chassis that claims
it, a chassis that goes takes its agent with it, and a fleet seen for the first time is
recorded in a few multi-row statements instead of a transaction per chassis.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import agents as agent_rows
from segmentd.db import chassis as chassis_rows
from segmentd.db import hosts as rows
from segmentd.db import ports as port_rows
from segmentd.services.agents import agent_view, is_chassis_agent, live, new_agent
from segmentd.services.binding import rebind_host_ports
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.hosts import record_report
from segmentd.services.reach import (
    canonical,
    reach_of,
    record_reach_change,
    settle_reach,
)
from segmentd.services.uow import UnitOfWork


async def apply_chassis(uow: UnitOfWork, clock: HostClock, chassis: str,
                        report: dict[str, Any]) -> None:
    """What an OVN chassis reaches, recorded as its host's OVN agent reporting it.

    The first chassis to claim a hostname holds it; another chassis with that hostname is
    refused (HostClaimedByChassis, nothing written) so it cannot take the host's segments.
    """
    await record_report(None, uow, clock, report, claim=chassis)


async def apply_new_chassis(uow: UnitOfWork, clock: HostClock,
                            fleet: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Record chassis (with their reports, distinct hostnames) whose hosts do not exist
    yet, all in the unit of work's transaction: the same rows and events as apply_chassis
    one by one, in five statements plus the change's records.

    Returns the chassis left out because their host exists already (another agent's
    report made it, or another chassis holds it); the caller applies those one by one.
    A host created concurrently makes an insert fail, and the whole transaction with it.
    """
    now = utcnow()
    taken = await chassis_rows.existing_hosts(uow.conn, [report["host"] for _, report in fleet])
    fresh = [(ch, report) for ch, report in fleet if report["host"] not in taken]
    agents, reach = [], {}
    for chassis, report in fresh:
        conf = canonical(report["configurations"])
        agents.append(new_agent(report, conf, now))
        reach[report["host"]] = reach_of(orjson.loads(conf))
    await chassis_rows.insert_hosts(uow.conn, [
        {"name": report["host"], "chassis": chassis, "reported_at": now, "created_at": now}
        for chassis, report in fresh])
    await chassis_rows.insert_agents(uow.conn, agents)
    await chassis_rows.insert_reach(uow.conn, reach)
    by_key = await chassis_rows.segments_by_key(uow.conn, set().union(*reach.values()))
    for agent in agents:
        uow.record(None, c.EVENT_AGENT_CREATED, agent_view(agent, clock, now), None)
        keys = reach[agent["host"]]
        if keys:
            gained = sorted(s for key in keys for s in by_key.get(key, ()))
            await record_reach_change(None, uow, agent["host"], "chassis", keys, gained, [],
                                      rebind=False)
    # New hosts rarely have ports already (bound before their chassis came): one query
    # finds those that do, rather than one per host.
    for host in await port_rows.hosts_with_ports(uow.conn, list(reach)):
        await rebind_host_ports(None, uow, host)
    return [ch for ch, report in fleet if report["host"] in taken]


async def remove_chassis(uow: UnitOfWork, clock: HostClock, chassis: str, host: str) -> bool:
    """The chassis is gone: its agent goes, and the host keeps what other live agents
    report (nothing, and the host goes, when it had no other). False if it held no host."""
    await rows.lock_existing_host(uow.conn, host)
    if not await chassis_rows.release_host(uow.conn, host, chassis):
        return False
    agents = list(await agent_rows.agents_of_host(uow.conn, host))
    mine = next((a for a in agents if is_chassis_agent(a)), None)
    others = [a for a in agents if a is not mine]
    if mine is not None:
        await agent_rows.delete_agent(uow.conn, mine["id"])
    cutoff = clock.cutoff(utcnow())
    await settle_reach(None, uow, host, [a for a in others if live(a, cutoff)], "chassis_deleted")
    if not others:
        await rows.delete_host(uow.conn, host)
    if mine is not None:
        uow.record(None, c.EVENT_AGENT_DELETED, agent_view(mine, clock, utcnow()), None)
    return True


async def applied_chassis(conn: AsyncConnection) -> dict[str, tuple[str, str]]:
    """{chassis: (host, canonical configurations)} as the database holds them."""
    return await chassis_rows.chassis_hosts(conn)


# -- the watcher's lease (one process watches at a time) and the chassis it refused

async def take_lease(conn: AsyncConnection, me: str, now, until) -> bool:
    return await chassis_rows.take_lease(conn, me, now, until)


async def save_conflicts(conn: AsyncConnection, conflicts: list[dict[str, Any]], at) -> None:
    await chassis_rows.save_conflicts(conn, orjson.dumps(conflicts).decode(), at)


async def chassis_conflicts(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The chassis the watcher refused last time it looked (see segmentd/workers/chassis.py)."""
    text = await chassis_rows.chassis_conflicts(conn)
    return orjson.loads(text) if text else []
