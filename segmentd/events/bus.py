"""Events, and the in-process subscribers the dispatcher hands committed events to."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def resource_type_of(event_type: str) -> str:
    """`segment.created` is about a segment."""
    return event_type.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change: `segment.created` with the resource as it is afterwards."""

    type: str
    resource_id: str
    resource: dict[str, Any]
    project_id: str | None = None
    request_id: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=_now)

    @property
    def resource_type(self) -> str:
        return resource_type_of(self.type)

    def document(self) -> dict[str, Any]:
        """The JSON document delivered to every subscriber (see events/catalog.py)."""
        return {
            "id": self.id,
            "type": self.type,
            "time": self.time,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "project_id": self.project_id,
            "request_id": self.request_id,
            "resource": self.resource,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Event:
        return cls(
            type=doc["type"], resource_id=doc["resource_id"], resource=doc["resource"],
            project_id=doc["project_id"], request_id=doc["request_id"], id=doc["id"],
            time=doc["time"],
        )


Subscriber = Callable[[Event], Awaitable[None]]


class DeliveryFailed(Exception):
    """Some in-process subscriber failed; the dispatcher retries the event later."""


class EventBus:
    """In-process subscribers, registered by create_app; nothing subscribes at import time."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    async def publish(self, event: Event) -> None:
        """Hand one event to every subscriber; if any failed, raise so it is retried.

        A retry reaches the subscribers that succeeded again: delivery is at least once.
        """
        failed = 0
        for subscriber in list(self._subscribers):
            try:
                await subscriber(event)
            except Exception:
                failed += 1
                LOG.exception("event subscriber failed for %s %s", event.type, event.id)
        if failed:
            raise DeliveryFailed(f"{failed} in-process subscriber(s) failed")
