"""Where the dispatcher sends events: in-process subscribers, webhooks, the message bus."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import subscriptions as subscription_rows
from segmentd.events.amqp import AmqpPublisher
from segmentd.events.bus import Event, EventBus
from segmentd.events.delivery import TargetHeld
from segmentd.events.webhooks import WebhookSender


class LocalTarget:
    """The subscribers of this process's EventBus (the OVN backend, tests)."""

    name = "local"

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def wants(self, event_type: str) -> bool:
        return self._bus.has_subscribers

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        await self._bus.publish(Event.from_document(orjson.loads(body)))


class AmqpTarget:
    """Every event, to the configured RabbitMQ exchange, signed, once the broker confirms."""

    name = "amqp"

    def __init__(self, publisher: AmqpPublisher) -> None:
        self._publisher = publisher

    def wants(self, event_type: str) -> bool:
        return True

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        await self._publisher.publish(event_type, event_id, body)


class WebhookTarget:
    """One subscription: its event types, URL and signing secret.

    A disabled one wants no new event and holds what it was already owed, so its deliveries
    say why they wait (and resume, in order, once it is enabled again).
    """

    def __init__(self, row, sender: WebhookSender) -> None:
        self.name = c.WEBHOOK_TARGET_PREFIX + row["id"]
        self._enabled = bool(row["enabled"])
        self._types = frozenset(orjson.loads(row["event_types"]))
        self._url = row["url"]
        self._secret = row["secret"]
        self._sender = sender

    def wants(self, event_type: str) -> bool:
        return self._enabled and event_type in self._types

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        if not self._enabled:
            raise TargetHeld("subscription is disabled")
        await self._sender.send(self._url, self._secret, event_id, body)


def webhook_targets(sender: WebhookSender):
    """The dispatcher's source of webhook targets: the subscriptions, read each cycle."""

    async def read(conn: AsyncConnection) -> Sequence[WebhookTarget]:
        found = await subscription_rows.target_subscriptions(conn)
        return [WebhookTarget(row, sender) for row in found]

    return read
