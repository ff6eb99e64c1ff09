"""The drift check: the database against what the backend holds, reported, maybe repaired.

`segmentd ovn sync` runs it once; the server runs it every `backend.drift_interval`
seconds in `backend.drift_mode` (for OVN: `ovn.sync_interval_seconds`, `ovn.sync_mode`),
in one process per round, whichever claims it first. The last report is stored in the
database and served at GET /v2.0/ovn/drift.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.backends.base import REPAIRABLE, Backend, DriftReport
from segmentd.db.engine import snapshot_connection, write_connection
from segmentd.services import drift as drift_state
from segmentd.services.clock import utcnow
from segmentd.services.shapes import timestamp

LOG = logging.getLogger(__name__)


async def _compare(engine: AsyncEngine, backend: Backend) -> DriftReport:
    async with snapshot_connection(engine) as conn:  # one snapshot of every table read
        state = await drift_state.desired_state(conn, backend.name)
    return await backend.compare(state)


async def check(engine: AsyncEngine, backend: Backend, mode: str) -> dict[str, Any]:
    """Compare (and in repair mode fix); store and return the report."""
    now = utcnow()
    report = await _compare(engine, backend)
    repaired = 0
    if mode == "repair" and report.counts().keys() & set(REPAIRABLE):
        # Repair only what a second look, with a newer database snapshot, still finds:
        # a change committed and realized between the two reads is not drift.
        again = await _compare(engine, backend)
        confirmed = {(i.kind, i.problem, i.name) for i in again.items}
        report.items = [i for i in report.items if (i.kind, i.problem, i.name) in confirmed]
        repaired = await backend.repair(report)
    doc = {"checked_at": timestamp(now), "mode": mode, **report.as_dict(), "repaired": repaired}
    text = orjson.dumps(doc).decode()
    async with write_connection(engine) as conn:
        await drift_state.save_report(conn, text, mode, now)
    level = logging.INFO if report.in_sync else logging.WARNING
    LOG.log(level, "%s drift check (%s): %s, %d repaired", backend.name.upper(), mode,
            "in sync" if report.in_sync else report.counts(), repaired)
    return doc


async def periodic(engine: AsyncEngine, backend: Backend, stop: asyncio.Event) -> None:
    """Every `backend.drift_interval` seconds, in one process of all sharing the database."""
    every, mode = backend.drift_interval, backend.drift_mode
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(every, 5.0))
            return
        except TimeoutError:
            pass
        if not backend.connected:
            continue
        try:
            async with write_connection(engine) as conn:
                mine = await drift_state.claim_check(conn, utcnow(), timedelta(seconds=every))
            if mine:
                await check(engine, backend, mode)
        except Exception:  # the next round tries again; the log says why
            LOG.exception("%s drift check failed", backend.name.upper())
