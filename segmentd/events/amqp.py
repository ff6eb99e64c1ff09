"""Events onto RabbitMQ: one signed message per event, done only once the broker confirms it."""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError
from yarl import URL

from segmentd.config import AMQP_CONFIRM_TIMEOUT
from segmentd.events.signing import signature_headers

DEFAULT_TIMEOUT_SECONDS = AMQP_CONFIRM_TIMEOUT  # connect + declare + confirm; the caller retries
CLOSE_TIMEOUT_SECONDS = 2.0  # a dead connection must not hold up the error that follows
BUS_ERROR_MAX_LEN = 300  # admins see it in the event's status; a broker reply can be long
AMQP_DEFAULT_PORT = 5672


class BusError(Exception):
    """The bus did not take an event. The message names no credentials and is bounded."""

    def __init__(self, message: str) -> None:
        if len(message) > BUS_ERROR_MAX_LEN:
            message = message[: BUS_ERROR_MAX_LEN - 3] + "..."
        super().__init__(message)


class AmqpPublisher:
    """Publishes events to a durable topic exchange, routing key = event type, with confirms.

    Each (re)connection is a plain `aio_pika.connect`, not `connect_robust`: the outbox
    dispatcher owns retries and backoff, so a publish must fail fast and visibly instead of
    waiting on a background reconnect loop that would also replay state we never asked for.
    A later publish after a failure simply opens a new connection.
    """

    def __init__(
        self, url: str, exchange: str, secret: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._url = url
        self._exchange_name = exchange
        self._secret = secret
        self._timeout = timeout
        parsed = URL(url)
        self._where = f"{parsed.host}:{parsed.port or AMQP_DEFAULT_PORT}"  # no userinfo
        # Both forms, in case it is %-encoded; longest first, so no part of one survives.
        forms = {p for p in (parsed.password, parsed.raw_password) if p}
        self._hidden = sorted(forms, key=len, reverse=True)
        self._lock = asyncio.Lock()  # one connect at a time when publishes overlap
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def publish(self, event_type: str, event_id: str, body: bytes) -> None:
        """Send one event and return once the broker confirmed it; raise BusError otherwise."""
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event_id,
            headers=signature_headers(self._secret, event_id, body),
        )
        exchange: AbstractExchange | None = None
        try:
            async with asyncio.timeout(self._timeout):
                exchange = await self._ready_exchange()
                # mandatory=False: a message no queue is bound for is still acked. The broker
                # accepted the event; who listens is the consumers' business, so it counts as
                # delivered rather than being retried forever.
                await exchange.publish(message, routing_key=event_type, mandatory=False)
        except DeliveryError as exc:  # Basic.Nack: the broker refused it; the connection is fine
            raise self._error("broker refused the event", exc) from None
        except TimeoutError:
            await self._drop(exchange)
            where = self._where
            raise BusError(f"AMQP bus at {where}: no answer within {self._timeout:g} s") from None
        except CONNECTION_EXCEPTIONS as exc:  # aio-pika's own list of connection-level failures
            await self._drop(exchange)
            raise self._error("publish failed", exc) from None

    async def close(self) -> None:
        """Close the connection; a later publish would open a new one."""
        async with self._lock:
            await self._discard()

    async def _ready_exchange(self) -> AbstractExchange:
        async with self._lock:
            if self._exchange is None or self._channel is None or self._channel.is_closed:
                await self._discard()
                try:
                    self._connection = await aio_pika.connect(self._url, timeout=self._timeout)
                    self._channel = await self._connection.channel(publisher_confirms=True)
                    self._exchange = await self._channel.declare_exchange(
                        self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                    )
                except BaseException:  # the timeout's cancellation too: no half-open connection
                    await self._discard()
                    raise
            return self._exchange

    async def _drop(self, exchange: AbstractExchange | None) -> None:
        """After a failed publish on `exchange`, discard its connection unless already replaced."""
        if exchange is not None and exchange is self._exchange:
            await self._discard()

    async def _discard(self) -> None:
        """Forget the connection so the next publish reconnects; close it if it still answers."""
        connection = self._connection
        self._connection, self._channel, self._exchange = None, None, None
        if connection is None or connection.is_closed:
            return
        # Best effort on a connection already judged broken: its close can fail the same way.
        with contextlib.suppress(*CONNECTION_EXCEPTIONS):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await connection.close()

    def _error(self, what: str, exc: BaseException) -> BusError:
        """aiormq's reason, redacted; raised `from None` so the raw exception is not shown too."""
        detail = f"{type(exc).__name__}: {exc}"
        for secret in self._hidden:
            detail = detail.replace(secret, "***")
        return BusError(f"AMQP bus at {self._where}: {what} ({detail})")
