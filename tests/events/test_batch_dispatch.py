"""Targets that take a whole batch (the OVN backend): one call in order, isolation on failure."""

from __future__ import annotations

import asyncio

import orjson
from sqlalchemy import select

from segmentd.context import RequestContext
from segmentd.db.engine import make_engine
from segmentd.db.models import event_deliveries as d
from segmentd.events.delivery import TargetUnavailable
from segmentd.services import networks as network_service
from segmentd.services.network_types import TypeRules
from segmentd.services.uow import unit_of_work
from segmentd.workers.dispatcher import Dispatcher, DispatchSettings
from tests.conftest import make_settings

ADMIN = RequestContext.admin(request_id="req-batch-test")
NOW = DispatchSettings(interval=0.02, retry_base=0.01, retry_max=0.05, lease=30.0)


class BatchRecorder:
    """A batch target that records calls; it can refuse one network's events, or everything."""

    name = "batcher"

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []  # (event type, network name)
        self.singles: list[tuple[str, str]] = []
        self.refuse_name: str | None = None
        self.down = False

    def wants(self, event_type: str) -> bool:
        return event_type.startswith("network.")

    @staticmethod
    def _describe(item) -> tuple[str, str]:
        _, event_type, body = item
        return event_type, orjson.loads(body)["resource"]["name"]

    def _check(self, described) -> None:
        if self.down:
            raise TargetUnavailable("controller down")
        if any(name == self.refuse_name for _, name in described):
            raise RuntimeError(f"refused {self.refuse_name}")

    async def deliver_batch(self, items) -> None:
        described = [self._describe(i) for i in items]
        self.batches.append(described)
        self._check(described)

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        described = self._describe((event_id, event_type, body))
        self.singles.append(described)
        self._check([described])


async def _attempts(engine) -> list[int]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(select(d.c.attempts).order_by(d.c.id))]


def scenario(db_url, work):
    async def go():
        engine = make_engine(db_url)
        rules = TypeRules(make_settings(db_url))
        target = BatchRecorder()
        dispatcher = Dispatcher(engine, [target], settings=NOW)

        async def create(name):
            async with unit_of_work(engine) as uow:
                return await network_service.create_network(ADMIN, uow, rules, {"name": name})

        async def rename(net, name):
            async with unit_of_work(engine) as uow:
                await network_service.update_network(ADMIN, uow, rules, net["id"], {"name": name})

        try:
            return await work(engine, dispatcher, target, create, rename)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_all_claimed_events_go_in_one_call_in_commit_order(db_url):
    async def work(engine, dispatcher, target, create, rename):
        nets = [await create(f"n{i}") for i in range(5)]
        await rename(nets[0], "n0-renamed")
        await dispatcher.run_once()
        return target.batches, target.singles, await _attempts(engine)

    batches, singles, attempts = scenario(db_url, work)
    assert batches == [[("network.created", f"n{i}") for i in range(5)]
                       + [("network.updated", "n0-renamed")]]
    assert singles == []
    assert attempts == [1] * 6  # every delivery recorded once, as delivered


def test_a_failed_batch_is_retried_one_by_one_and_the_bad_event_backs_off_alone(db_url):
    async def work(engine, dispatcher, target, create, rename):
        await create("good")
        bad = await create("bad")
        await rename(bad, "bad-later")  # same key as the bad event: must wait behind it
        target.refuse_name = "bad"
        await dispatcher.run_once()
        first = (list(target.singles), await _attempts(engine))
        target.refuse_name = None
        for _ in range(100):  # the backoff is tens of milliseconds
            await asyncio.sleep(0.02)
            await dispatcher.run_once()
            if 0 not in await _attempts(engine) and len(target.singles) >= 3:
                break
        return first, target.singles, target.batches

    (singles, attempts), all_singles, batches = scenario(db_url, work)
    # One at a time after the batch failed: "good" went through, "bad" failed, and the
    # rename of "bad" was not attempted (it waits behind the failed event of its key).
    assert singles == [("network.created", "good"), ("network.created", "bad")]
    assert attempts == [1, 1, 0]
    # Once the target takes it, the held events arrive, in order.
    delivered_later = [*all_singles[2:], *(e for b in batches[1:] for e in b)]
    assert delivered_later == [("network.created", "bad"), ("network.updated", "bad-later")]


def test_an_unavailable_target_is_not_probed_event_by_event(db_url):
    async def work(engine, dispatcher, target, create, rename):
        for i in range(3):
            await create(f"n{i}")
        target.down = True
        await dispatcher.run_once()
        after_outage = (len(target.batches), list(target.singles), await _attempts(engine))
        target.down = False
        for _ in range(100):
            await asyncio.sleep(0.02)
            await dispatcher.run_once()
            if len(target.batches) >= 2:
                break
        return after_outage, target.batches[-1]

    (calls, singles, attempts), last = scenario(db_url, work)
    assert (calls, singles, attempts) == (1, [], [1, 1, 1])  # one try, all backing off
    assert last == [("network.created", f"n{i}") for i in range(3)]
