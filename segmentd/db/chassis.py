"""OVN chassis as hosts, in SQL: which chassis holds which host, a fleet of new hosts
recorded in a few multi-row statements, and the watcher's lease and refused chassis.

Recording many hosts at once costs a handful of round trips instead of a transaction
each; reach keys are the same as db/hosts.py's, only the number of rows per statement
differs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import driver
from segmentd.db.hosts import ReachKey
from segmentd.db.models import agents as a
from segmentd.db.models import host_reach as r
from segmentd.db.models import hosts as h
from segmentd.db.models import ovn_chassis_watch as watch
from segmentd.db.models import segments as s

EXISTING = select(h.c.name).where(h.c.name.in_(bindparam("names", expanding=True)))
SEGMENTS_OF_KEYS = (
    select(s.c.network_type, s.c.alloc_physnet, s.c.id)
    .where(tuple_(s.c.network_type, s.c.alloc_physnet).in_(bindparam("keys", expanding=True)))
)


async def existing_hosts(conn: AsyncConnection, names: list[str]) -> set[str]:
    """Which of the names are hosts already."""
    if not names:
        return set()
    return {row[0] for row in await conn.execute(EXISTING, {"names": names})}


async def insert_hosts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert hosts that do not exist (a concurrent insert of one fails the transaction)."""
    await driver.insert_many(conn, h, rows)


async def insert_agents(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await driver.insert_many(conn, a, rows)


async def insert_reach(conn: AsyncConnection, reach: dict[str, set[ReachKey]]) -> None:
    """Store {host: reach keys} for hosts that had none."""
    rows = [{"host": host, "network_type": t, "physnet": p}
            for host, keys in reach.items() for t, p in sorted(keys)]
    await driver.insert_many(conn, r, rows)


async def segments_by_key(conn: AsyncConnection, keys: Iterable[ReachKey]) -> dict[ReachKey, list[str]]:
    """{reach key: ids of the segments it covers} for the keys (one indexed range each)."""
    keys = sorted(set(keys))
    found: dict[ReachKey, list[str]] = defaultdict(list)
    if keys:
        for network_type, physnet, segment_id in await conn.execute(SEGMENTS_OF_KEYS, {"keys": keys}):
            found[(network_type, physnet)].append(segment_id)
    return found


# -- which chassis holds which host (under the host's lock, see db/hosts.py)

CLAIM = (
    update(h).where(h.c.name == bindparam("of_host"), h.c.chassis.is_(None))
    .values(chassis=bindparam("chassis"))
)
HOLDER = select(h.c.chassis).where(h.c.name == bindparam("host"))
RELEASE = (
    update(h).where(h.c.name == bindparam("of_host"), h.c.chassis == bindparam("of_chassis"))
    .values(chassis=None)
)
CHASSIS_AGENTS = (
    select(h.c.chassis, h.c.name, a.c.configurations)
    .join(a, and_(a.c.host == h.c.name, a.c.agent_type == c.OVN_AGENT_TYPE))
    .where(h.c.chassis.is_not(None))
)


async def claim_host(conn: AsyncConnection, host: str, chassis: str) -> str | None:
    """Under the host's lock: give the host to `chassis` unless a chassis holds it already;
    the holder afterwards."""
    await conn.execute(CLAIM, {"of_host": host, "chassis": chassis})
    return (await conn.execute(HOLDER, {"host": host})).scalar_one_or_none()


async def release_host(conn: AsyncConnection, host: str, chassis: str) -> bool:
    """Under the host's lock: the chassis lets the host go; False if it did not hold it."""
    return (await conn.execute(RELEASE, {"of_host": host, "of_chassis": chassis})).rowcount == 1


async def chassis_hosts(conn: AsyncConnection) -> dict[str, tuple[str, str]]:
    """{chassis: (host, its agent's configurations)} for every host a chassis holds."""
    return {ch: (host, conf) for ch, host, conf in await conn.execute(CHASSIS_AGENTS)}


# -- the chassis watcher's lease (one process watches the Southbound DB at a time)

WATCH_ID = 1
TAKE_LEASE = (
    update(watch)
    .where(watch.c.id == WATCH_ID,
           or_(watch.c.holder == bindparam("me"), watch.c.lease_until.is_(None),
               watch.c.lease_until < bindparam("now")))
    .values(holder=bindparam("me"), lease_until=bindparam("until"))
)


async def take_lease(conn: AsyncConnection, me: str, now: datetime, until: datetime) -> bool:
    """Hold (or renew) the watcher lease until `until`; False while another holds it."""
    params = {"me": me, "now": now, "until": until}
    if (await conn.execute(TAKE_LEASE, params)).rowcount == 1:
        return True
    if (await conn.execute(select(watch.c.id).where(watch.c.id == WATCH_ID))).first():
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(insert(watch).values(id=WATCH_ID, holder=me, lease_until=until))
    except IntegrityError:  # another process created the row first, and so holds the lease
        return False
    return True


async def save_conflicts(conn: AsyncConnection, conflicts: str, at: datetime) -> None:
    await conn.execute(update(watch).where(watch.c.id == WATCH_ID)
                       .values(conflicts=conflicts, updated_at=at))


async def chassis_conflicts(conn: AsyncConnection) -> str | None:
    found = await conn.execute(select(watch.c.conflicts).where(watch.c.id == WATCH_ID))
    return found.scalar_one_or_none()
