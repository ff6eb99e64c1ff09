"""What waits for a backend is read consistently while the dispatcher fans events out.

Fan-out moves an event from "not fanned out" to "one undelivered delivery per target" in one
transaction. The backlog count and the pending list each read both states; when they did
so in two statements, an event fanned out between them was in neither, and the OVN status
said `backlog: 0`, `pending: []` with two events waiting (a failure seen in CI)."""

from __future__ import annotations

import asyncio

from segmentd.context import RequestContext
from segmentd.db import outbox as outbox_rows
from segmentd.db import realization as rows
from segmentd.db.engine import make_engine
from segmentd.services import networks as network_service
from segmentd.services.clock import utcnow
from segmentd.services.network_types import TypeRules
from segmentd.services.uow import unit_of_work
from tests.conftest import make_settings

ADMIN = RequestContext.admin(request_id="req-backlog-test")
TARGET = "ovn"
TYPES = ["network.created", "segment.created"]
NETWORKS = 30


async def fan_out_one_by_one(engine) -> int:
    """The dispatcher's fan-out, one event per transaction, to a target that never delivers."""
    fanned = 0
    while True:
        async with engine.begin() as conn:
            events = await outbox_rows.unfanned_events(conn, 1)
            if not events:
                return fanned
            ev = events[0]
            await outbox_rows.add_deliveries(conn, [{
                "event_seq": ev["seq"], "target": TARGET, "ordering_key": ev["ordering_key"],
                "attempts": 0, "next_attempt_at": utcnow(), "last_error": None,
                "delivered_at": None}], [ev["seq"]])
        fanned += 1
        await asyncio.sleep(0)


def test_backlog_and_pending_never_miss_an_event_during_fan_out(db_url):
    async def scenario():
        writer, reader = make_engine(db_url), make_engine(db_url)
        try:
            rules = TypeRules(make_settings(db_url))
            for n in range(NETWORKS):
                async with unit_of_work(writer) as uow:
                    await network_service.create_network(ADMIN, uow, rules, {"name": f"n{n}"})
            fanning = asyncio.create_task(fan_out_one_by_one(writer))
            seen: list[tuple[int, int]] = []
            while not fanning.done() or len(seen) < 20:
                async with reader.connect() as conn:
                    backlog = await rows.backlog(conn, TARGET, TYPES)
                    pending = await rows.oldest_pending(conn, TARGET, TYPES, 1000)
                seen.append((backlog, len(pending)))
                await asyncio.sleep(0)
            return await fanning, seen
        finally:
            await writer.dispose()
            await reader.dispose()

    fanned, seen = asyncio.run(scenario())
    expected = 2 * NETWORKS  # each network's event and its segment's
    assert fanned == expected
    assert all(read == (expected, expected) for read in seen), (
        [read for read in seen if read != (expected, expected)][:5])
