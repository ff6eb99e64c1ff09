"""The dispatcher on real databases: several at once, one dying mid-delivery, pruning."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from segmentd.context import RequestContext
from segmentd.db.engine import make_engine
from segmentd.db.models import event_deliveries, outbox_events
from segmentd.events import outbox
from segmentd.events.addresses import AddressPolicy
from segmentd.events.bus import Event, EventBus
from segmentd.events.signing import verify_delivery
from segmentd.events.targets import LocalTarget, webhook_targets
from segmentd.events.webhooks import WebhookSender
from segmentd.services import networks as network_service
from segmentd.services import subscriptions as subscription_service
from segmentd.services.clock import utcnow
from segmentd.services.network_types import TypeRules
from segmentd.services.uow import unit_of_work
from segmentd.workers.dispatcher import Dispatcher, DispatchSettings
from tests.conftest import make_settings
from tests.events.test_subscriptions_api import SECRET, HookReceiver

ADMIN = RequestContext.admin(request_id="req-dispatch-test")
LOOPBACK = AddressPolicy(["127.0.0.1/32"])
FAST = DispatchSettings(interval=0.02, retry_base=0.1, retry_max=1.0, lease=30.0)


class CountingSender(WebhookSender):
    """A real sender that also counts what it sent, to tell which dispatcher did the work."""

    def __init__(self) -> None:
        super().__init__(LOOPBACK, 5.0)
        self.sent = 0

    async def send(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        await super().send(url, secret, event_id, body)
        self.sent += 1


async def wait_until(check, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return found


async def outbox_ids(engine) -> list[tuple[str, str, int]]:
    """(event id, ordering key, seq) of every event, in commit order."""
    async with engine.connect() as conn:
        stmt = select(outbox_events.c.id, outbox_events.c.ordering_key, outbox_events.c.seq)
        return [tuple(r) for r in (await conn.execute(stmt.order_by(outbox_events.c.seq)))]


async def undelivered(engine) -> int:
    async with engine.connect() as conn:
        unfanned = await conn.execute(
            select(func.count()).select_from(outbox_events)
            .where(outbox_events.c.fanned_out.is_(False)))
        pending = await conn.execute(
            select(func.count()).select_from(event_deliveries)
            .where(event_deliveries.c.delivered_at.is_(None)))
        return unfanned.scalar() + pending.scalar()


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_dispatchers_of_several_processes_share_one_postgresql_outbox(db_url):
    """Two dispatchers, each with its own engine, as two server processes would be: one
    delivers alone, the other joins, the first leaves, both run; writers never stop."""
    receiver = HookReceiver()
    receiver.delay = 0.002

    async def scenario():
        writer = make_engine(db_url)
        engines = [make_engine(db_url) for _ in range(2)]
        senders = [CountingSender(), CountingSender()]
        dispatchers = [Dispatcher(e, [], webhook_targets(s), FAST)
                       for e, s in zip(engines, senders)]
        rules = TypeRules(make_settings(db_url))
        try:
            async with unit_of_work(writer) as uow:
                await subscription_service.create_subscription(ADMIN, uow, LOOPBACK, {
                    "url": receiver.url(), "secret": SECRET,
                    "event_types": ["network.created", "network.updated", "segment.created"]})
            nets = []
            for n in range(8):
                async with unit_of_work(writer) as uow:
                    nets.append(await network_service.create_network(
                        ADMIN, uow, rules, {"name": f"n{n}-0"}))

            async def renames(net, start, count):
                for i in range(start, start + count):
                    async with unit_of_work(writer) as uow:
                        await network_service.update_network(
                            ADMIN, uow, rules, net["id"], {"name": f"{net['id']}-{i}"})

            async def burst(start):
                await asyncio.gather(*(renames(net, start, 8) for net in nets))

            first, second = dispatchers
            first.start()
            await burst(1)                     # the first alone
            await wait_until(lambda: _sent_any(senders[0]), "the first delivering alone")
            second.start()
            await burst(9)                     # both
            await first.stop()
            sent_by_first = senders[0].sent
            await burst(17)                    # the second alone
            await wait_until(lambda: _sent_any(senders[1]), "the second delivering alone")
            first = dispatchers[0] = Dispatcher(engines[0], [], webhook_targets(senders[0]),
                                                FAST)
            first.start()
            await burst(25)                    # both again
            await wait_until(lambda: _none_left(writer), "every event delivered")
            return await outbox_ids(writer), [s.sent for s in senders], sent_by_first
        finally:
            for d in dispatchers:
                await d.stop()
            for s in senders:
                await s.close()
            for e in (writer, *engines):
                await e.dispose()

    try:
        events, sent, sent_by_first = asyncio.run(scenario())
    finally:
        receiver.stop()

    got = receiver.got()
    received = [d.event_id for d in got]
    assert sorted(received) == sorted(e for e, _, _ in events)  # each exactly once, none lost
    assert len(events) == 8 * 2 + 8 * 32  # created + segment, then 32 renames each
    assert sum(sent) == len(events)
    # Both did real work; how it split between them is the race for the dispatch lock.
    assert sent_by_first > 0 and sent[1] > 0
    seq_of = {e: seq for e, _, seq in events}
    key_of = {e: key for e, key, _ in events}
    by_key: dict[str, list[int]] = {}
    for d in got:
        verify_delivery(SECRET, d.headers, d.body)
        by_key.setdefault(key_of[d.event_id], []).append(seq_of[d.event_id])
    assert len(by_key) == 8
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), key  # per key, in commit order
    for net_events in by_key.values():
        assert len(net_events) == 34


async def _sent_any(sender: CountingSender) -> bool:
    return sender.sent > 0


async def _none_left(engine) -> bool:
    return await undelivered(engine) == 0


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_a_batch_slower_than_its_lease_is_not_taken_over_midway(db_url):
    """One key's backlog takes longer to deliver than the lease lasts. The dispatcher that
    claimed it must give the rest back in time, not let another start the key over while
    it is still sending: the receiver sees each event once, in order."""
    lease, count = 1.0, 16
    receiver = HookReceiver()
    receiver.delay = 0.1  # 16 events: 1.6 s, longer than the lease
    settings = DispatchSettings(interval=0.02, retry_base=0.1, retry_max=1.0, lease=lease)
    net = str(uuid.uuid4())
    events = [network_event(net, rev) for rev in range(count)]

    async def scenario():
        engines = [make_engine(db_url) for _ in range(2)]
        senders = [CountingSender(), CountingSender()]
        dispatchers = [Dispatcher(e, [], webhook_targets(s), settings)
                       for e, s in zip(engines, senders)]
        try:
            async with unit_of_work(engines[0]) as uow:
                await subscription_service.create_subscription(ADMIN, uow, LOOPBACK, {
                    "url": receiver.url(), "secret": SECRET, "event_types": ["network.updated"]})
            await write_events(engines[0], events)
            for d in dispatchers:
                d.start()
            await wait_until(lambda: _none_left(engines[0]), "every event delivered")
        finally:
            for d in dispatchers:
                await d.stop()
            for s in senders:
                await s.close()
            for e in engines:
                await e.dispose()

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()
    revisions = [d.event["resource"]["revision_number"] for d in receiver.got()]
    assert revisions == list(range(count))


# -- a dispatcher that dies mid-delivery -----------------------------------------------------

def network_event(net_id: str, revision: int) -> Event:
    now = "2026-01-02T03:04:05Z"
    return Event(type="network.updated", resource_id=net_id, resource={
        "id": net_id, "name": f"r{revision}", "description": "", "project_id": "p1",
        "tenant_id": "p1", "admin_state_up": True, "shared": False, "status": "ACTIVE",
        "mtu": 1450, "subnets": [], "created_at": now, "updated_at": now,
        "revision_number": revision})


async def write_events(engine, events: list[Event], at=None) -> None:
    async with engine.begin() as conn:
        await outbox.write(conn, events, at or utcnow())


def test_deliveries_leased_by_a_dispatcher_that_died_are_delivered_after_the_lease(db_url):
    """The first dispatcher claims a batch and hangs delivering it, then is cancelled (its
    process killed). Nothing is lost: once the lease ends another delivers all, in order."""
    lease = 1.5
    settings = DispatchSettings(interval=0.02, retry_base=0.1, retry_max=1.0, lease=lease)
    net_a, net_b = str(uuid.uuid4()), str(uuid.uuid4())
    events = [network_event(net, rev) for rev in range(5) for net in (net_a, net_b)]

    async def scenario():
        dying_engine, engine = make_engine(db_url), make_engine(db_url)
        hung, never = asyncio.Event(), asyncio.Event()
        seen_by_dying: list[str] = []
        delivered: list[Event] = []

        async def hang(event: Event) -> None:
            seen_by_dying.append(event.id)
            hung.set()
            await never.wait()

        async def record(event: Event) -> None:
            delivered.append(event)

        dying_bus, bus = EventBus(), EventBus()
        dying_bus.subscribe(hang)
        bus.subscribe(record)
        dying = Dispatcher(dying_engine, [LocalTarget(dying_bus)], settings=settings)
        survivor = Dispatcher(engine, [LocalTarget(bus)], settings=settings)
        try:
            await write_events(engine, events)
            cycle = asyncio.create_task(dying.run_once())
            await asyncio.wait_for(hung.wait(), 10)
            cycle.cancel()  # killed mid-delivery: its leases stay behind
            await asyncio.gather(cycle, return_exceptions=True)
            killed_at = time.monotonic()

            await survivor.run_once()
            early = list(delivered)
            while len(delivered) < len(events) and time.monotonic() - killed_at < lease + 5:
                await survivor.run_once()
                await asyncio.sleep(0.05)
            return early, delivered, seen_by_dying, time.monotonic() - killed_at
        finally:
            never.set()
            for e in (dying_engine, engine):
                await e.dispose()

    early, delivered, seen_by_dying, waited = asyncio.run(scenario())
    assert len(seen_by_dying) == 2  # one per key: each chain stopped at its first event
    assert early == []  # leased: not taken over while the lease lasts
    assert sorted(e.id for e in delivered) == sorted(e.id for e in events)
    assert waited >= lease * 0.9
    for net in (net_a, net_b):
        revisions = [e.resource["revision_number"] for e in delivered if e.resource_id == net]
        assert revisions == [0, 1, 2, 3, 4]


# -- pruning ---------------------------------------------------------------------------------

def test_prune_removes_old_delivered_events_and_keeps_the_rest(db_url):
    retention = 3600.0
    old = utcnow() - timedelta(seconds=retention * 2)
    recent = utcnow() - timedelta(seconds=retention / 2)
    settings = DispatchSettings(interval=0.02, retry_base=30.0, retry_max=60.0, lease=30.0,
                                retention=retention)
    old_ok = network_event(str(uuid.uuid4()), 0)
    old_failing = network_event(str(uuid.uuid4()), 0)
    old_behind_failing = network_event(old_failing.resource_id, 1)
    recent_ok = network_event(str(uuid.uuid4()), 0)

    async def scenario():
        engine = make_engine(db_url)

        async def subscriber(event: Event) -> None:
            if event.id == old_failing.id:
                raise RuntimeError("receiver down")

        bus = EventBus()
        bus.subscribe(subscriber)
        try:
            await write_events(engine, [old_ok, old_failing, old_behind_failing], at=old)
            await write_events(engine, [recent_ok], at=recent)
            # One cycle fans out, delivers (all but the failing one and the one behind it)
            # and prunes.
            await Dispatcher(engine, [LocalTarget(bus)], settings=settings).run_once()
            async with engine.connect() as conn:
                left = {r.id for r in await conn.execute(select(outbox_events.c.id))}
                deliveries = (await conn.execute(
                    select(event_deliveries.c.event_seq, event_deliveries.c.delivered_at,
                           outbox_events.c.id)
                    .join(outbox_events, outbox_events.c.seq == event_deliveries.c.event_seq)
                )).all()
                orphans = (await conn.execute(
                    select(func.count()).select_from(event_deliveries)
                    .where(~event_deliveries.c.event_seq.in_(select(outbox_events.c.seq))))
                ).scalar()
            # Nobody wants events in a process without subscribers: fanned out to nothing,
            # they are pruned once old, kept while recent.
            nobody_old = network_event(str(uuid.uuid4()), 0)
            nobody_recent = network_event(str(uuid.uuid4()), 0)
            await write_events(engine, [nobody_old], at=old)
            await write_events(engine, [nobody_recent], at=recent)
            await Dispatcher(engine, [LocalTarget(EventBus())], settings=settings).run_once()
            async with engine.connect() as conn:
                later = {r.id for r in await conn.execute(select(outbox_events.c.id))}
            return left, deliveries, orphans, later, nobody_old.id, nobody_recent.id
        finally:
            await engine.dispose()

    left, deliveries, orphans, later, nobody_old, nobody_recent = asyncio.run(scenario())
    assert left == {old_failing.id, old_behind_failing.id, recent_ok.id}
    assert {d.id: d.delivered_at is not None for d in deliveries} == {
        old_failing.id: False, old_behind_failing.id: False, recent_ok.id: True}
    assert orphans == 0  # the pruned events' deliveries went with them
    assert later == left | {nobody_recent}
    assert nobody_old not in later


def test_a_dispatcher_without_targets_marks_events_fanned_out_only(db_url):
    """Events committed while nothing wants them are not queued for anyone later."""

    async def scenario():
        engine = make_engine(db_url)
        try:
            await write_events(engine, [network_event(str(uuid.uuid4()), 0)])
            await Dispatcher(engine, [LocalTarget(EventBus())], settings=FAST).run_once()
            async with engine.connect() as conn:
                fanned = (await conn.execute(select(outbox_events.c.fanned_out))).scalars().all()
                count = (await conn.execute(
                    select(func.count()).select_from(event_deliveries))).scalar()
            return fanned, count
        finally:
            await engine.dispose()

    fanned, count = asyncio.run(scenario())
    assert fanned == [True] and count == 0



# -- the idle look -------------------------------------------------------------------------

def test_the_idle_look_sees_unfanned_events_and_the_next_retry(db_url):
    """What an idle dispatcher's one statement reports: an unfanned event, then the time of
    a failed delivery's retry, then nothing once it is delivered."""
    from segmentd.db import outbox as rows

    settings = DispatchSettings(interval=0.02, retry_base=30.0, retry_max=60.0, lease=30.0)
    event = network_event(str(uuid.uuid4()), 0)
    failures = [RuntimeError("receiver down")]

    async def subscriber(_event: Event) -> None:
        if failures:
            raise failures.pop()

    async def look(engine):
        async with engine.connect() as conn:
            return await rows.next_work(conn, utcnow())

    async def scenario():
        engine = make_engine(db_url)
        bus = EventBus()
        bus.subscribe(subscriber)
        dispatcher = Dispatcher(engine, [LocalTarget(bus)], settings=settings)
        try:
            empty = await look(engine)
            await write_events(engine, [event])
            waiting = await look(engine)
            before = utcnow()
            await dispatcher.run_once()  # fans out; the one attempt fails and backs off
            backing_off = await look(engine)
            async with engine.begin() as conn:  # the retry is due now
                await conn.execute(event_deliveries.update().values(next_attempt_at=utcnow()))
            due = await dispatcher._work_due()
            await dispatcher.run_once()
            return empty, waiting, before, backing_off, due, await look(engine)
        finally:
            await engine.dispose()

    empty, waiting, before, backing_off, due, done = asyncio.run(scenario())
    assert empty == (False, False, None)
    assert waiting == (True, False, None)
    unfanned, due_now, retry_at = backing_off
    assert not unfanned and not due_now
    assert retry_at >= before + timedelta(seconds=14)  # half of 30 s, at least
    assert due is True
    assert done == (False, False, None)


def test_a_dispatcher_whose_database_is_gone_waits_the_interval_between_tries(caplog):
    """No spinning on what a failed look left behind: a retry time already past, or a
    missed lock, must not shorten the wait while every look fails."""
    settings = DispatchSettings(interval=0.5, retry_base=0.1, retry_max=1.0, lease=30.0)

    async def scenario():
        engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
        dispatcher = Dispatcher(engine, [LocalTarget(EventBus())], settings=settings)
        dispatcher._next_attempt = utcnow() - timedelta(seconds=1)
        dispatcher._lock_missed = True
        dispatcher.start()
        await asyncio.sleep(1.6)
        await dispatcher.stop()
        await engine.dispose()

    asyncio.run(scenario())
    failures = [r for r in caplog.records if "dispatch cycle failed" in r.getMessage()]
    assert 2 <= len(failures) <= 5, len(failures)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_stop_ends_the_wait_for_more_commits_at_once(db_url):
    """Woken by a commit, the dispatcher waits `coalesce` seconds for the rest of a burst; a
    stop in that wait ends it then (what was committed waits in the outbox for the next
    start), not after the wait or the cancel fallback of `grace`."""
    settings = DispatchSettings(interval=3600.0, retry_base=0.1, retry_max=1.0, lease=30.0,
                                coalesce=3600.0)

    async def scenario():
        engine = make_engine(db_url)
        dispatcher = Dispatcher(engine, [LocalTarget(EventBus())], settings=settings)
        try:
            dispatcher.start()
            await asyncio.sleep(0.3)   # the first cycle ran; waiting for a wake
            dispatcher.wake()
            await asyncio.sleep(0.3)   # now waiting for more commits
            task = dispatcher._task
            await asyncio.wait_for(dispatcher.stop(grace=3600.0), 10.0)
            return task.done(), task.cancelled()
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == (True, False)  # ended, not cancelled
