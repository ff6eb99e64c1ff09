"""AmqpPublisher against the real RabbitMQ on this machine: signed, confirmed, reconnecting."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import traceback
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed

from segmentd.events import signing
from segmentd.events.amqp import BUS_ERROR_MAX_LEN, AmqpPublisher, BusError
from segmentd.events.signing import SignatureError, verify_delivery
from tests.events.brokers import AMQP_URL, PrivateRabbitMq

SECRET = "test-secret-" + "x" * 32
EVENT_TYPE = "segment.created"
QUICK = 3.0  # publisher timeout in these tests; the broker answers in milliseconds


@pytest.fixture(autouse=True)
def broker(shared_broker: str) -> None:
    """Every test here needs the shared broker (the fault tests their private node as well)."""


@pytest.fixture
def exchange() -> Iterator[str]:
    """A unique exchange name, deleted after the test."""
    name = f"segmentd.test.{uuid.uuid4()}"
    yield name

    async def delete() -> None:
        async with await aio_pika.connect(AMQP_URL) as conn:
            channel = await conn.channel()
            await channel.exchange_delete(name)

    asyncio.run(delete())


def body_of(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "type": EVENT_TYPE, "resource": {"id": "s1"}}).encode()


async def bind_queue(
    conn: aio_pika.abc.AbstractConnection, exchange: str, key: str, **arguments
) -> aio_pika.abc.AbstractQueue:
    """A temporary exclusive queue bound to `exchange` with `key`; declares it as segmentd does."""
    channel = await conn.channel()
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, arguments=arguments or None)
    await queue.bind(ex, routing_key=key)
    return queue


async def publish_and_get(
    publisher: AmqpPublisher, queue: aio_pika.abc.AbstractQueue, event_type: str = EVENT_TYPE
) -> tuple[bytes, aio_pika.abc.AbstractIncomingMessage]:
    event_id = str(uuid.uuid4())
    body = body_of(event_id)
    await publisher.publish(event_type, event_id, body)
    # A confirm means the broker has enqueued it, so a plain Basic.Get finds it at once.
    return body, await queue.get(no_ack=True, timeout=5)


class TestPublish:
    def test_consumer_receives_a_signed_persistent_message(self, exchange):
        async def scenario():
            publisher = AmqpPublisher(AMQP_URL, exchange, SECRET, timeout=QUICK)
            async with await aio_pika.connect(AMQP_URL) as conn:
                queue = await bind_queue(conn, exchange, EVENT_TYPE)
                try:
                    body, msg = await publish_and_get(publisher, queue)
                finally:
                    await publisher.close()
            return body, msg

        body, msg = asyncio.run(scenario())
        assert msg.body == body
        assert msg.routing_key == EVENT_TYPE
        assert msg.exchange == exchange
        assert msg.content_type == "application/json"
        assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        event_id = json.loads(body)["id"]
        assert msg.message_id == event_id
        names = {signing.HEADER_EVENT_ID, signing.HEADER_TIMESTAMP, signing.HEADER_SIGNATURE}
        assert set(msg.headers) == names
        assert msg.headers[signing.HEADER_EVENT_ID] == event_id
        assert abs(verify_delivery(SECRET, msg.headers, msg.body) - time.time()) < 60
        with pytest.raises(SignatureError, match="does not match"):
            verify_delivery(SECRET, msg.headers, msg.body.replace(b"s1", b"s2"))
        with pytest.raises(SignatureError, match="does not match"):
            verify_delivery("another-secret-" + "y" * 32, msg.headers, msg.body)

    def test_routing_key_is_the_event_type(self, exchange):
        async def scenario():
            publisher = AmqpPublisher(AMQP_URL, exchange, SECRET, timeout=QUICK)
            async with await aio_pika.connect(AMQP_URL) as conn:
                segments = await bind_queue(conn, exchange, "segment.*")
                try:
                    await publisher.publish("network.deleted", "e1", b"{}")
                    await publisher.publish("segment.deleted", "e2", b"{}")
                finally:
                    await publisher.close()
                first = await segments.get(no_ack=True, timeout=5)
                rest = await segments.get(no_ack=True, fail=False, timeout=5)
            return first, rest

        first, rest = asyncio.run(scenario())
        assert (first.routing_key, first.message_id) == ("segment.deleted", "e2")
        assert rest is None

    def test_unroutable_event_is_confirmed_on_a_durable_topic_exchange(self, exchange):
        async def scenario():
            publisher = AmqpPublisher(AMQP_URL, exchange, SECRET, timeout=QUICK)
            try:
                await publisher.publish(EVENT_TYPE, "e1", b"{}")  # no queue bound: still no error
                await publisher.publish(EVENT_TYPE, "e2", b"{}")  # the same connection again
            finally:
                await publisher.close()
            async with await aio_pika.connect(AMQP_URL) as conn:
                channel = await conn.channel()
                # Redeclaring with other properties fails only if the exchange is durable topic.
                with pytest.raises(ChannelPreconditionFailed, match="durable"):
                    await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC)

        asyncio.run(scenario())

    def test_broker_nack_is_a_bus_error_and_the_connection_stays_usable(self, exchange):
        async def scenario():
            publisher = AmqpPublisher(AMQP_URL, exchange, SECRET, timeout=QUICK)
            async with await aio_pika.connect(AMQP_URL) as conn:
                # A full queue that rejects new messages makes the broker nack the publish.
                full = {"x-max-length": 0, "x-overflow": "reject-publish"}
                await bind_queue(conn, exchange, "full.#", **full)
                ok = await bind_queue(conn, exchange, EVENT_TYPE)
                try:
                    with pytest.raises(BusError, match="refused") as err:
                        await publisher.publish("full.segment", "e1", b"{}")
                    _, msg = await publish_and_get(publisher, ok)
                finally:
                    await publisher.close()
            return err.value, msg

        error, msg = asyncio.run(scenario())
        assert "DeliveryError" in str(error)
        assert msg.routing_key == EVENT_TYPE


class TestUnavailable:
    def test_closed_port_is_a_bus_error_within_the_timeout(self):
        password = "hunter2-" + uuid.uuid4().hex
        url = f"amqp://segmentd:{password}@127.0.0.1:1/"
        publisher = AmqpPublisher(url, "x", SECRET, timeout=QUICK)
        started = time.monotonic()
        with pytest.raises(BusError, match="127.0.0.1:1") as err:
            asyncio.run(publisher.publish(EVENT_TYPE, "e1", b"{}"))
        assert time.monotonic() - started < QUICK
        assert password not in str(err.value)

    def test_silent_server_is_a_bus_error_after_the_timeout(self):
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP, never speaks AMQP
            port = silent.getsockname()[1]
            url = f"amqp://guest:guest@127.0.0.1:{port}/"
            publisher = AmqpPublisher(url, "x", SECRET, timeout=0.5)
            started = time.monotonic()
            with pytest.raises(BusError, match=f"127.0.0.1:{port}"):
                asyncio.run(publisher.publish(EVENT_TYPE, "e1", b"{}"))
            elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 0.5 + 2.0  # the timeout, plus at most the bounded close

    @pytest.mark.xdist_group("private-rabbitmq")
    def test_broker_restarted_while_idle_next_publish_reconnects(
        self, private_broker: PrivateRabbitMq
    ):
        url, exchange = private_broker.url, f"segmentd.test.{uuid.uuid4()}"

        async def scenario():
            publisher = AmqpPublisher(url, exchange, SECRET, timeout=QUICK)
            try:
                await publisher.publish(EVENT_TYPE, "before", b"{}")  # connected and declared
                await asyncio.to_thread(private_broker.stop_app)
                await asyncio.to_thread(private_broker.start_app)
                async with await aio_pika.connect(url) as conn:
                    queue = await bind_queue(conn, exchange, EVENT_TYPE)
                    _, msg = await publish_and_get(publisher, queue)  # first try, no error first
            finally:
                await publisher.close()
            return msg

        assert asyncio.run(scenario()).routing_key == EVENT_TYPE

    @pytest.mark.xdist_group("private-rabbitmq")
    def test_broker_down_is_a_bus_error_then_reconnects_when_it_returns(
        self, private_broker: PrivateRabbitMq
    ):
        url, exchange = private_broker.url, f"segmentd.test.{uuid.uuid4()}"

        async def scenario():
            publisher = AmqpPublisher(url, exchange, SECRET, timeout=QUICK)
            try:
                await publisher.publish(EVENT_TYPE, "before", b"{}")
                # rabbitmqctl runs in a thread so the loop keeps reading, as in the service.
                await asyncio.to_thread(private_broker.stop_app)
                try:
                    started = time.monotonic()
                    with pytest.raises(BusError, match="publish failed"):
                        await publisher.publish(EVENT_TYPE, "during", b"{}")
                    with pytest.raises(BusError):  # still down: fails again, does not hang
                        await publisher.publish(EVENT_TYPE, "during", b"{}")
                    elapsed = time.monotonic() - started
                finally:
                    await asyncio.to_thread(private_broker.start_app)
                async with await aio_pika.connect(url) as conn:
                    queue = await bind_queue(conn, exchange, EVENT_TYPE)
                    _, msg = await publish_and_get(publisher, queue)
            finally:
                await publisher.close()
            return elapsed, msg

        elapsed, msg = asyncio.run(scenario())
        assert elapsed < QUICK
        assert msg.routing_key == EVENT_TYPE


class TestBusErrorMessage:
    def test_wrong_password_is_not_in_the_message_or_traceback(self):
        password = "wrong-" + uuid.uuid4().hex
        url = AMQP_URL.replace("guest:guest@", f"guest:{password}@")
        assert password in url
        publisher = AmqpPublisher(url, "x", SECRET, timeout=QUICK)
        with pytest.raises(BusError, match="ACCESS_REFUSED") as err:
            asyncio.run(publisher.publish(EVENT_TYPE, "e1", b"{}"))
        assert password not in "".join(traceback.format_exception(err.value))

    def test_password_echoed_by_the_broker_is_redacted(self, exchange):
        """The broker names the exchange in its error; here that name contains the password."""
        password = urlsplit(AMQP_URL).password
        name = f"{exchange}.{password}"

        async def scenario():
            async with await aio_pika.connect(AMQP_URL) as conn:
                channel = await conn.channel()
                await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT)
                publisher = AmqpPublisher(AMQP_URL, name, SECRET, timeout=QUICK)
                try:
                    with pytest.raises(BusError, match="PRECONDITION_FAILED") as err:
                        await publisher.publish(EVENT_TYPE, "e1", b"{}")
                finally:
                    await publisher.close()
                    await (await conn.channel()).exchange_delete(name)
            return err.value

        error = asyncio.run(scenario())
        assert password not in str(error)
        assert f"{exchange}.***" in str(error)

    def test_message_is_bounded(self):
        assert len(str(BusError("x" * 10_000))) == BUS_ERROR_MAX_LEN
        assert str(BusError("short")) == "short"

