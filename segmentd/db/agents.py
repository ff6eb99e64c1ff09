"""Agents: what each reported last (its configurations) and when (its heartbeat)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import driver
from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import agents as a
from segmentd.query import ListQuery

AGENT_COLUMNS = (
    a.c.id, a.c.host, a.c.agent_type, a.c.binary, a.c.description, a.c.admin_state_up,
    a.c.configurations, a.c.heartbeat_at, a.c.expired, a.c.started_at, a.c.created_at,
)
AGENTS_OF_HOST = select(*AGENT_COLUMNS).where(a.c.host == bindparam("host"))
AGENT_BY_ID = select(*AGENT_COLUMNS).where(a.c.id == bindparam("agent_id"))
DELETE_AGENT = delete(a).where(a.c.id == bindparam("agent_id"))
AGENT_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(a.c.id),
    "host": Attribute(a.c.host),
    "agent_type": Attribute(a.c.agent_type),
    "binary": Attribute(a.c.binary),
    "admin_state_up": Attribute(a.c.admin_state_up),
    "description": Attribute(a.c.description, sort=False),
}


async def agents_of_host(conn: AsyncConnection, host: str) -> list[dict[str, Any]]:
    return await driver.fetch_dicts(conn, AGENTS_OF_HOST, {"host": host})


async def get_agent(conn: AsyncConnection, agent_id: str):
    return (await conn.execute(AGENT_BY_ID, {"agent_id": agent_id})).mappings().first()


@lru_cache(maxsize=32)
def _update_agent(columns: tuple[str, ...]):
    # "agent_id", not "id": an UPDATE reserves its columns' names for the SET clause.
    return (
        update(a)
        .where(a.c.id == bindparam("agent_id"))
        .values({col: bindparam(col) for col in columns})
    )


async def update_agent(conn: AsyncConnection, agent_id: str, values: dict[str, Any]) -> None:
    await driver.fetch(conn, _update_agent(tuple(sorted(values))), {**values, "agent_id": agent_id})


async def delete_agent(conn: AsyncConnection, agent_id: str) -> bool:
    return (await conn.execute(DELETE_AGENT, {"agent_id": agent_id})).rowcount == 1


async def list_agents(conn: AsyncConnection, q: ListQuery):
    return await fetch_page(conn, select(*AGENT_COLUMNS), AGENT_ATTRIBUTES, a.c.id, q)


# A chassis' agent never expires: it lives while its Chassis row does.
STALE_AGENTS = (
    select(a.c.host)
    .where(a.c.expired.is_(False), a.c.heartbeat_at < bindparam("cutoff"),
           a.c.agent_type != c.OVN_AGENT_TYPE)
    .group_by(a.c.host)
    .order_by(a.c.host)
    .limit(bindparam("limit"))
)
# An UPDATE of agents reserves the bind name "host" for its SET clause: hence "of_host".
EXPIRE = (
    update(a)
    .where(a.c.host == bindparam("of_host"), a.c.expired.is_(False),
           a.c.heartbeat_at < bindparam("cutoff"), a.c.agent_type != c.OVN_AGENT_TYPE)
    .values(expired=True)
)


async def hosts_with_stale_agents(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[str]:
    """Hosts with an agent silent since before `cutoff` that is not yet marked expired."""
    result = await conn.execute(STALE_AGENTS, {"cutoff": cutoff, "limit": limit})
    return [row[0] for row in result]


async def expire_agents(conn: AsyncConnection, host: str, cutoff: datetime) -> int:
    """Mark the host's silent agents expired; 0 if another process already did."""
    return (await conn.execute(EXPIRE, {"of_host": host, "cutoff": cutoff})).rowcount




@lru_cache(maxsize=16)
def insert_statement(columns: tuple[str, ...]):
    """INSERT of an agent with these columns (cached per column set)."""
    return insert(a).values({col: bindparam(col) for col in columns})


async def insert_agent(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await driver.fetch(conn, insert_statement(tuple(row)), row)
