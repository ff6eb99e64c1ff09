"""In-process event delivery after commit. The durable outbox will feed the same subscribers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change: `segment.created` with the resource as it is afterwards."""

    type: str
    resource_id: str
    resource: dict[str, Any]
    project_id: str | None = None
    request_id: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


Subscriber = Callable[[Event], Awaitable[None]]


class EventBus:
    """Subscribers are registered by create_app; nothing subscribes at import time."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    async def publish(self, events: list[Event]) -> None:
        """Deliver committed events; a failing subscriber is logged and does not stop others."""
        for ev in events:
            for subscriber in self._subscribers:
                try:
                    await subscriber(ev)
                except Exception:
                    LOG.exception("event subscriber failed for %s %s", ev.type, ev.id)
