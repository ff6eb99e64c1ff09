"""The OVN drift check: the database against the Northbound DB, reported, maybe repaired.

`segmentd ovn sync` runs it once; the server runs it every `ovn.sync_interval_seconds` in
the mode `ovn.sync_mode` (one process per round, whichever claims it first). The last
report is stored in the database and served at GET /v2.0/ovn/drift.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.backends.ovn import drift
from segmentd.db.engine import snapshot_connection, write_connection
from segmentd.services import realization
from segmentd.services.common import utcnow
from segmentd.services.views import timestamp

LOG = logging.getLogger(__name__)
TARGET = "ovn"


async def _compare(engine: AsyncEngine, api, owner: str) -> drift.DriftReport:
    async with snapshot_connection(engine) as conn:  # one snapshot of every table read
        state = await realization.desired_state(conn, TARGET)
    return await asyncio.to_thread(drift.snapshot_compare, api, owner, state.networks,
                                   state.segments, state.in_flight, state.subnets, state.ports)


async def check(engine: AsyncEngine, api, owner: str, mode: str) -> dict[str, Any]:
    """Compare (and in repair mode fix); store and return the report."""
    now = utcnow()
    report = await _compare(engine, api, owner)
    repaired = 0
    if mode == "repair" and report.counts().keys() & set(drift.REPAIRABLE):
        # Repair only what a second look, with a newer database snapshot, still finds:
        # a change committed and realized between the two reads is not drift.
        again = await _compare(engine, api, owner)
        confirmed = {(i.kind, i.problem, i.name) for i in again.items}
        report.items = [i for i in report.items if (i.kind, i.problem, i.name) in confirmed]
        repaired = await asyncio.to_thread(drift.repair, api, owner, report)
    doc = {"checked_at": timestamp(now), "mode": mode, **report.as_dict(), "repaired": repaired}
    text = orjson.dumps(doc).decode()
    async with write_connection(engine) as conn:
        await realization.save_report(conn, text, mode, now)
    level = logging.INFO if report.in_sync else logging.WARNING
    LOG.log(level, "OVN drift check (%s): %s, %d repaired", mode,
            "in sync" if report.in_sync else report.counts(), repaired)
    return doc


async def periodic(engine: AsyncEngine, northbound, owner: str, mode: str,
                   every: float, stop: asyncio.Event) -> None:
    """Every `every` seconds, in one process of all that share the database."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(every, 5.0))
            return
        except TimeoutError:
            pass
        if northbound.api is None or not northbound.connected:
            continue
        try:
            async with write_connection(engine) as conn:
                mine = await realization.claim_check(conn, utcnow(), timedelta(seconds=every))
            if mine:
                await check(engine, northbound.api, owner, mode)
        except Exception:  # the next round tries again; the log says why
            LOG.exception("OVN drift check failed")
