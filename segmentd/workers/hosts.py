"""The host sweeper: hosts whose agents went silent past the grace period are expired
(their reach goes, with one event each), a batch per round."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.db.engine import read_connection
from segmentd.services.clock import HostClock
from segmentd.services.hosts import expire_host, stale_hosts
from segmentd.services.uow import transact

SWEEP_BATCH = 500  # hosts expired per round; the next round takes the rest


async def sweep_expired(engine: AsyncEngine, clock: HostClock, after_commit) -> int:
    """Expire the hosts whose agents went silent; one transaction per host."""
    async with read_connection(engine) as conn:
        stale = await stale_hosts(conn, clock, SWEEP_BATCH)
    expired = 0
    for host in stale:
        expired += await transact(engine, lambda uow: expire_host(uow, clock, host),
                                  after_commit=after_commit)
    return expired
