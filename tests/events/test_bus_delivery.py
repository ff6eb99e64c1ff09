"""Events from the running app to in-process subscribers and to a real RabbitMQ broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aio_pika
import pytest
from sqlalchemy import select, text

from segmentd.db.models import event_deliveries, outbox_events
from segmentd.events.bus import Event, EventBus
from segmentd.events.signing import SignatureError, verify_delivery
from tests.conftest import build_api, wait_until
from tests.events.brokers import AMQP_URL
from tests.factories import error_of, make_network

FAST = {"event_dispatch_interval_seconds": 0.05, "event_retry_base_seconds": 0.1,
        "event_retry_max_seconds": 1.0}
AMQP_SECRET = "bus-secret-" + "b" * 32


# -- in-process subscribers -------------------------------------------------------------------

class TestInProcessBus:
    def test_subscriber_gets_each_event_after_its_commit(self, db_url):
        bus = EventBus()
        got: list[tuple[Event, bool]] = []
        api = build_api(db_url, bus=bus, **FAST)

        async def committed(event: Event) -> None:
            """Look for the resource through another connection: only a commit shows it."""
            engine = api.client.app.state.runtime.engine
            table = "networks" if event.resource_type == "network" else "segments"
            async with engine.connect() as conn:
                found = (await conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE id = :id"),
                    {"id": event.resource_id})).scalar()
            got.append((event, found == 1))

        bus.subscribe(committed)
        with api.client:
            net = make_network(api, name="seen")
            bad = api.post("/v2.0/networks", json={"network": {"name": "x", "mtu": -1}})
            assert bad.status_code == 400
            assert error_of(bad) == {
                "type": "HTTPBadRequest", "detail": "",
                "message": "Invalid input for mtu. Reason: Input should be greater than or equal "
                           "to 0."}
            wait_until(lambda: len(got) >= 2, "two events")
            time.sleep(0.2)
            assert [(e.type, e.resource_id, ok) for e, ok in got][:1] == [
                ("network.created", net["id"], True)]
            assert [e.type for e, _ in got] == ["network.created", "segment.created"]
            assert all(ok for _, ok in got)
            assert [e.document() for e, _ in got] == [e.document() for e in api.events]

    def test_a_failing_subscriber_makes_the_event_retried_and_holds_its_key(self, db_url):
        bus = EventBus()
        calls: list[tuple[str, str]] = []  # (subscriber, event type)
        failures = {"left": 2}

        async def flaky(event: Event) -> None:
            calls.append(("flaky", event.type))
            if event.type == "network.created" and failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("subscriber not ready")

        async def steady(event: Event) -> None:
            calls.append(("steady", event.type))

        bus.subscribe(flaky)
        bus.subscribe(steady)
        api = build_api(db_url, bus=bus, **FAST)
        with api.client:
            net = make_network(api)
            assert api.put(f"/v2.0/networks/{net['id']}",
                           json={"network": {"name": "later"}}).status_code == 200

            def settled():
                rows = api._run(_local_deliveries)
                return len(rows) == 3 and all(r["delivered_at"] for r in rows) and rows

            rows = wait_until(settled, "all three delivered")
        # Three attempts of network.created, each reaching both subscribers (at least once).
        assert [c for c in calls if c[1] == "network.created"] == [
            ("flaky", "network.created"), ("steady", "network.created")] * 3
        flaky_types = [t for s, t in calls if s == "flaky"]
        assert flaky_types == ["network.created"] * 3 + ["segment.created", "network.updated"]
        by_type = {r["type"]: r for r in rows}
        assert by_type["network.created"]["attempts"] == 3
        assert by_type["network.updated"]["attempts"] == 1
        assert by_type["network.created"]["last_error"] is None  # cleared once delivered


async def _local_deliveries(conn):
    d, e = event_deliveries, outbox_events
    stmt = (select(d.c.attempts, d.c.last_error, d.c.delivered_at, e.c.type)
            .join(e, e.c.seq == d.c.event_seq).where(d.c.target == "local").order_by(d.c.id))
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]


# -- RabbitMQ ------------------------------------------------------------------------------------

class Queue:
    """A durable queue bound to the app's exchange (it outlives a broker stop_app)."""

    def __init__(self, exchange: str, url: str = AMQP_URL) -> None:
        self.exchange = exchange
        self.url = url
        self.name = f"segmentd.test.{uuid.uuid4()}"
        asyncio.run(self._declare())

    async def _declare(self) -> None:
        async with await aio_pika.connect(self.url) as conn:
            channel = await conn.channel()
            ex = await channel.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC,
                                                durable=True)
            queue = await channel.declare_queue(self.name, durable=True)
            await queue.bind(ex, routing_key="#")

    def take(self, count: int, timeout: float = 20.0) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Wait for `count` messages, then return them (and any more already there)."""

        async def take():
            got = []
            async with await aio_pika.connect(self.url) as conn:
                channel = await conn.channel()
                queue = await channel.get_queue(self.name)
                deadline = time.monotonic() + timeout
                while len(got) < count and time.monotonic() < deadline:
                    msg = await queue.get(no_ack=True, fail=False)
                    if msg is None:
                        await asyncio.sleep(0.05)
                    else:
                        got.append(msg)
                while (msg := await queue.get(no_ack=True, fail=False)) is not None:
                    got.append(msg)
            return got

        return asyncio.run(take())

    def delete(self) -> None:
        async def delete():
            async with await aio_pika.connect(self.url) as conn:
                channel = await conn.channel()
                await channel.queue_delete(self.name)
                await channel.exchange_delete(self.exchange)

        asyncio.run(delete())


@pytest.fixture
def exchange_queue(shared_broker):
    queue = Queue(f"segmentd.test.{uuid.uuid4()}", shared_broker)
    yield queue
    queue.delete()


@pytest.fixture
def private_queue(private_broker):
    """A queue on the test process's private node (deleted there; the node is its own)."""
    queue = Queue(f"segmentd.test.{uuid.uuid4()}", private_broker.url)
    yield queue
    queue.delete()


def amqp_api(db_url: str, queue: Queue):
    return build_api(db_url, amqp_url=queue.url, amqp_secret=AMQP_SECRET,
                     amqp_exchange=queue.exchange, **FAST)


def amqp_rows(api) -> list[dict]:
    async def read(conn):
        d, e = event_deliveries, outbox_events
        stmt = (select(d.c.attempts, d.c.last_error, d.c.delivered_at, e.c.id)
                .join(e, e.c.seq == d.c.event_seq).where(d.c.target == "amqp").order_by(d.c.id))
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    return api._run(read)


class TestRabbitMq:
    def test_events_arrive_signed_with_the_type_as_routing_key(self, db_url, exchange_queue):
        api = amqp_api(db_url, exchange_queue)
        with api.client:
            net = make_network(api, name="to-the-bus")
            assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
            messages = exchange_queue.take(4)
            committed = {e.id: e for e in api.events}
        assert [m.routing_key for m in messages] == [
            "network.created", "segment.created", "segment.deleted", "network.deleted"]
        for msg in messages:
            assert verify_delivery(AMQP_SECRET, msg.headers, msg.body)
            doc = json.loads(msg.body)
            assert msg.message_id == doc["id"]
            assert doc == committed[doc["id"]].document()
            assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        with pytest.raises(SignatureError):
            verify_delivery(AMQP_SECRET, messages[0].headers, messages[0].body + b" ")

    @pytest.mark.xdist_group("private-rabbitmq")
    def test_events_wait_while_the_broker_is_down_and_follow_when_it_returns(
        self, db_url, private_broker, private_queue
    ):
        api = amqp_api(db_url, private_queue)
        with api.client:
            before = make_network(api, name="before")
            assert len(private_queue.take(2)) == 2
            private_broker.stop_app()
            try:
                during = make_network(api, name="during")  # the change still commits
                assert api.put(f"/v2.0/networks/{during['id']}", json={
                    "network": {"name": "during-2"}}).status_code == 200

                def waiting():
                    rows = [r for r in amqp_rows(api)[2:] if r["last_error"]]
                    return rows if rows else None

                rows = wait_until(waiting, "a failed publish recorded")
                assert rows[0]["delivered_at"] is None and rows[0]["attempts"] >= 1
                assert f"AMQP bus at 127.0.0.1:{private_broker.port}" in rows[0]["last_error"]
                assert "guest" not in rows[0]["last_error"]
                assert api.get(f"/v2.0/networks/{during['id']}").status_code == 200
            finally:
                private_broker.start_app()
            messages = private_queue.take(3)

            def all_published():
                rows = amqp_rows(api)
                return len(rows) == 5 and all(r["delivered_at"] for r in rows)

            wait_until(all_published, "every event published")
            committed = [e.id for e in api.events]
        ids = [json.loads(m.body)["id"] for m in messages]
        assert ids == committed[2:]  # after the broker returned, in commit order
        assert json.loads(messages[0].body)["resource"]["name"] == "during"
        for msg in messages:
            verify_delivery(AMQP_SECRET, msg.headers, msg.body)
        assert before["id"] not in {json.loads(m.body)["resource_id"] for m in messages}
