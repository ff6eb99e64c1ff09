"""Many new hosts at once: a fleet of chassis seen for the first time.

Each statement here takes rows for many hosts, so recording a few hundred hosts costs a
handful of round trips instead of a transaction each. Reach keys are the same as
db/hosts.py's; only the number of rows per statement differs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import fastpath
from segmentd.db.hosts import ReachKey
from segmentd.db.models import agents as a
from segmentd.db.models import host_reach as r
from segmentd.db.models import hosts as h
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
    await fastpath.insert_many(conn, h, rows)


async def insert_agents(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await fastpath.insert_many(conn, a, rows)


async def insert_reach(conn: AsyncConnection, reach: dict[str, set[ReachKey]]) -> None:
    """Store {host: reach keys} for hosts that had none."""
    rows = [{"host": host, "network_type": t, "physnet": p}
            for host, keys in reach.items() for t, p in sorted(keys)]
    await fastpath.insert_many(conn, r, rows)


async def segments_by_key(conn: AsyncConnection, keys: Iterable[ReachKey]) -> dict[ReachKey, list[str]]:
    """{reach key: ids of the segments it covers} for the keys (one indexed range each)."""
    keys = sorted(set(keys))
    found: dict[ReachKey, list[str]] = defaultdict(list)
    if keys:
        for network_type, physnet, segment_id in await conn.execute(SEGMENTS_OF_KEYS, {"keys": keys}):
            found[(network_type, physnet)].append(segment_id)
    return found
