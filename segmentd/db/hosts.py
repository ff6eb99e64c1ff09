"""Hosts, their agents and what they reach; segment-host pairs are a join, never rows.

A reach key is (network_type, physnet): (flat, P) and (vlan, P) for a physnet P, (T, "")
for a tunnel type T. It equals a segment's allocation key prefix (network_type,
alloc_physnet), which the segments' unique index already covers, so both directions of
the mapping are one indexed join whatever the number of hosts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import driver
from segmentd.db.agents import insert_agent, insert_statement
from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import host_reach as r
from segmentd.db.models import hosts as h
from segmentd.db.models import segments as s
from segmentd.query import ListQuery

ReachKey = tuple[str, str]


# -- the host row: created on first report, locked by every change to the host's reach

LOCK = select(h.c.name).where(h.c.name == bindparam("host")).with_for_update()


def _upsert_host(dialect: str):
    """Insert the host or move its heartbeat: one statement, which also takes the row lock."""
    values = {"name": bindparam("host"), "reported_at": bindparam("now"),
              "created_at": bindparam("now")}
    if dialect == "mysql":
        stmt = mysql.insert(h).values(values)
        return stmt.on_duplicate_key_update(reported_at=stmt.inserted.reported_at)
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(h).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[h.c.name], set_={"reported_at": stmt.excluded.reported_at}
    )
    if dialect == "postgresql":
        # xmax is 0 on a row version this statement inserted, a lock id on one it updated.
        stmt = stmt.returning(literal_column("xmax = 0").label("created"))
    return stmt


UPSERT_HOST = {d: _upsert_host(d) for d in ("postgresql", "sqlite", "mysql")}


async def lock_host(conn: AsyncConnection, host: str, now: datetime) -> bool | None:
    """Record a heartbeat for the host, creating it if new, and hold its row lock.

    Every change to a host's agents or reach takes this lock first, so two processes
    handling reports for one host apply them one after the other. Returns whether this
    call created the host (which then has no agents and no reach yet) on PostgreSQL,
    None where the database does not say.
    """
    rows = await driver.fetch(conn, UPSERT_HOST[conn.dialect.name], {"host": host, "now": now})
    return bool(rows[0][0]) if rows else None


async def lock_existing_host(conn: AsyncConnection, host: str) -> None:
    """Hold the host's row lock without recording a heartbeat (deletes, expiry)."""
    if conn.dialect.name != "sqlite":  # SQLite's write transaction is already exclusive
        await conn.execute(LOCK, {"host": host})


SHARE_HOST = select(h.c.name).where(h.c.name == bindparam("host")).with_for_update(read=True)


def _insert_placeholder(dialect: str):
    """Insert the host row unless it exists; waits for a transaction inserting it."""
    values = {"name": bindparam("host"), "reported_at": bindparam("now"),
              "created_at": bindparam("now")}
    if dialect == "mysql":
        return mysql.insert(h).values(values).prefix_with("IGNORE")
    return postgresql.insert(h).values(values).on_conflict_do_nothing(index_elements=[h.c.name])


INSERT_PLACEHOLDER = {d: _insert_placeholder(d) for d in ("postgresql", "mysql")}
DROP_PLACEHOLDERS = delete(h).where(h.c.name.in_(bindparam("hosts", expanding=True)))


async def share_lock_hosts(conn: AsyncConnection, hosts, now: datetime) -> list[str]:
    """Hold the hosts' row locks shared (in name order): a port write reading what a host
    reaches keeps a report for that host from changing it until the port is committed, so
    the report's rebinding sees the port.

    A host that never reported has no row to lock. It gets one for the length of this
    transaction, a placeholder: the first report for that host, which creates the row,
    then waits for this transaction as it would for a lock. Returns the placeholders,
    which the caller drops (drop_placeholders) before it commits.
    """
    placeholders: list[str] = []
    if conn.dialect.name == "sqlite":  # SQLite's write transaction is already exclusive
        return placeholders
    for name in sorted({name for name in hosts if name}):
        if await _hold_host(conn, name, now):
            placeholders.append(name)
    return placeholders


HOLD_ATTEMPTS = 5  # a host created and deleted again between two statements, each time


async def _hold_host(conn: AsyncConnection, name: str, now: datetime) -> bool:
    """The host's row lock, shared; True when that took inserting a placeholder.

    On MariaDB the insert comes first: a locking read of a missing key takes a gap lock,
    and two port writes holding one would then deadlock on their inserts. (On PostgreSQL,
    which has no gap locks, the common case, a host that exists, is one statement.)
    """
    insert_first = conn.dialect.name == "mysql"
    for _ in range(HOLD_ATTEMPTS):
        if not insert_first and (await conn.execute(SHARE_HOST, {"host": name})).first():
            return False
        inserted = await conn.execute(INSERT_PLACEHOLDER[conn.dialect.name],
                                      {"host": name, "now": now})
        if inserted.rowcount == 1:
            return True
        insert_first = False  # the host exists: lock its row (or insert again if it just went)
    return False


async def drop_placeholders(conn: AsyncConnection, hosts: list[str]) -> None:
    """Remove the placeholder host rows this transaction inserted: they are never seen."""
    if hosts:
        await conn.execute(DROP_PLACEHOLDERS, {"hosts": hosts})


DELETE_HOST = delete(h).where(h.c.name == bindparam("host"))


async def delete_host(conn: AsyncConnection, host: str) -> None:
    await conn.execute(DELETE_HOST, {"host": host})


# -- a host's first agent, with the host's reach (one statement on PostgreSQL)

@lru_cache(maxsize=64)
def _first_agent(columns: tuple[str, ...], n: int):
    """PostgreSQL: a host's first agent and its n reach keys, returning the segments gained."""
    stmt = _segments_of_keys(n).add_cte(insert_statement(columns).cte("agent"))
    return stmt.add_cte(_insert_reach(n).cte("added"))


async def insert_first_agent(
    conn: AsyncConnection, row: dict[str, Any], keys: Iterable[ReachKey]
) -> list[str]:
    """Insert the agent of a host that had none, and the host's reach from it.

    Returns the ids of the segments the reach covers, sorted: one statement on PostgreSQL.
    """
    keys = sorted(keys)
    if not keys or conn.dialect.name != "postgresql" or len(keys) > REACH_CHUNK:
        await insert_agent(conn, row)
        return await add_reach(conn, row["host"], keys)
    params = {**row, **_key_params(keys)}
    return [r[0] for r in await driver.fetch(conn, _first_agent(tuple(row), len(keys)), params)]


# -- reach

REACH_OF_HOST = select(r.c.network_type, r.c.physnet).where(r.c.host == bindparam("host"))


async def reach_of_host(conn: AsyncConnection, host: str) -> set[ReachKey]:
    return {tuple(row) for row in await conn.execute(REACH_OF_HOST, {"host": host})}


# Reach keys go into statements this many at a time: a statement's size (and the time to
# build it, on the event loop) stays bounded however many keys a host gains or loses at
# once, and under every database's limit on bound parameters (two per key).
REACH_CHUNK = 200


def _chunks(keys: list[ReachKey]) -> list[list[ReachKey]]:
    return [keys[i:i + REACH_CHUNK] for i in range(0, len(keys), REACH_CHUNK)]


def _keys_in(columns, n: int):
    """(col1, col2) IN ((:t0, :p0), ...) for n keys: one cached statement per count."""
    return tuple_(*columns).in_(
        [tuple_(bindparam(f"t{i}"), bindparam(f"p{i}")) for i in range(n)]
    )


def _key_params(keys: list[ReachKey]) -> dict[str, str]:
    params = {}
    for i, (network_type, physnet) in enumerate(keys):
        params[f"t{i}"], params[f"p{i}"] = network_type, physnet
    return params


@lru_cache(maxsize=64)
def _segments_of_keys(n: int):
    return select(s.c.id).where(_keys_in((s.c.network_type, s.c.alloc_physnet), n)).order_by(s.c.id)


@lru_cache(maxsize=64)
def _insert_reach(n: int):
    return insert(r).values(
        [{"host": bindparam("host"), "network_type": bindparam(f"t{i}"),
          "physnet": bindparam(f"p{i}")} for i in range(n)]
    )


@lru_cache(maxsize=64)
def _add_reach(n: int, dialect: str):
    """Insert n reach keys; on PostgreSQL the same statement returns the segments gained."""
    if dialect != "postgresql":
        return _insert_reach(n)
    return _segments_of_keys(n).add_cte(_insert_reach(n).cte("added"))


@lru_cache(maxsize=64)
def _remove_reach(n: int):
    # "of_host": a DELETE keeps no SET clause, but one name for the host binds everywhere.
    return delete(r).where(r.c.host == bindparam("of_host"),
                           _keys_in((r.c.network_type, r.c.physnet), n))


async def add_reach(conn: AsyncConnection, host: str, keys: Iterable[ReachKey]) -> list[str]:
    """Store reach keys for a host; returns the ids of the segments they cover, sorted."""
    keys = sorted(keys)
    if not keys:
        return []
    gained: list[str] = []
    for chunk in _chunks(keys):
        params = {"host": host, **_key_params(chunk)}
        stmt = _add_reach(len(chunk), conn.dialect.name)
        if conn.dialect.name == "postgresql":
            gained += [row[0] for row in await driver.fetch(conn, stmt, params)]
        else:
            await conn.execute(stmt, params)
    if conn.dialect.name == "postgresql":
        return sorted(gained)
    return await segments_with_keys(conn, keys)


async def remove_reach(conn: AsyncConnection, host: str, keys: Iterable[ReachKey]) -> list[str]:
    """Drop reach keys of a host; returns the ids of the segments they covered, sorted."""
    keys = sorted(keys)
    if not keys:
        return []
    lost = await segments_with_keys(conn, keys)
    for chunk in _chunks(keys):
        await driver.fetch(conn, _remove_reach(len(chunk)),
                             {"of_host": host, **_key_params(chunk)})
    return lost


async def segments_with_keys(conn: AsyncConnection, keys: Iterable[ReachKey]) -> list[str]:
    """Ids of the segments a set of reach keys covers (an index range per key)."""
    keys = sorted(keys)
    if not keys:
        return []
    found: list[str] = []
    for chunk in _chunks(keys):
        rows = await driver.fetch(conn, _segments_of_keys(len(chunk)), _key_params(chunk))
        found += [row[0] for row in rows]
    return sorted(found)


# -- mapping queries (a host counts only while its newest heartbeat is within the grace)

def _live_host(cutoff):
    """A host counts while its newest heartbeat is in the grace period, or a chassis holds it."""
    return or_(h.c.reported_at >= cutoff, h.c.chassis.is_not(None))


HOSTS_OF_KEY = (
    select(r.c.host.label("host"), h.c.reported_at, h.c.chassis)
    .join(h, h.c.name == r.c.host)
    .where(r.c.network_type == bindparam("network_type"), r.c.physnet == bindparam("physnet"),
           _live_host(bindparam("cutoff")))
)
HOST_NAME_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(r.c.host),
    "host": Attribute(r.c.host),
}


async def hosts_reaching(
    conn: AsyncConnection, key: ReachKey, cutoff: datetime, q: ListQuery, marker_ok
):
    """A page of the live hosts that reach one segment's key, by host name."""
    stmt = HOSTS_OF_KEY.params(network_type=key[0], physnet=key[1], cutoff=cutoff)
    return await fetch_page(conn, stmt, HOST_NAME_ATTRIBUTES, r.c.host, q, marker_ok)


def reached_by(host: str, cutoff: datetime | None):
    """WHERE clause on the segments table: the segments a host reaches, if it is live
    (`cutoff` None: as its stored reach stands, for a caller that just settled it)."""
    conditions = [
        r.c.host == host,
        r.c.network_type == s.c.network_type,
        r.c.physnet == s.c.alloc_physnet,
    ]
    if cutoff is not None:
        conditions.append(exists().where(h.c.name == host, _live_host(cutoff)))
    return exists().where(*conditions)


SEGMENT_COUNT = (
    select(func.count())
    .select_from(s)
    .join(r, and_(r.c.network_type == s.c.network_type, r.c.physnet == s.c.alloc_physnet))
    .where(r.c.host == h.c.name)
    .scalar_subquery()
)
HOSTS = select(h.c.name.label("host"), h.c.reported_at, h.c.chassis,
               SEGMENT_COUNT.label("segment_count"))
HOST_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(h.c.name),
    "host": Attribute(h.c.name),
}


async def list_hosts(conn: AsyncConnection, q: ListQuery, marker_ok):
    """A page of hosts with how many segments each reaches (0 once it has expired)."""
    return await fetch_page(conn, HOSTS, HOST_ATTRIBUTES, h.c.name, q, marker_ok)


REACH_OF_HOSTS = select(r.c.host, r.c.network_type, r.c.physnet).where(
    r.c.host.in_(bindparam("hosts", expanding=True))
)


async def reach_of_hosts(conn: AsyncConnection, hosts: list[str]) -> dict[str, set[ReachKey]]:
    out: dict[str, set[ReachKey]] = {host: set() for host in hosts}
    if hosts:
        for host, network_type, physnet in await conn.execute(REACH_OF_HOSTS, {"hosts": hosts}):
            out[host].add((network_type, physnet))
    return out



HOST_EXISTS = select(h.c.name).where(h.c.name == bindparam("host"))


async def host_exists(conn: AsyncConnection, host: str) -> bool:
    return (await conn.execute(HOST_EXISTS, {"host": host})).first() is not None
