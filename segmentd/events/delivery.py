"""The contract between the dispatcher and the places events go (targets): webhooks, the
message bus, in-process subscribers and a backend's realization alike.

A target says which event types it wants and takes them one at a time (`deliver`) or, if
it can, many at once in order (`deliver_batch`). It answers by returning (taken) or by
raising: `TargetUnavailable` when nothing would get through now (its server is down),
`TargetHeld` when it exists but takes nothing for now (a disabled webhook), anything else
for a failure of this one event. The dispatcher decides what each means for retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol


class Target(Protocol):
    """Somewhere events go: `deliver` returns once the event is taken, raises otherwise."""

    name: str

    def wants(self, event_type: str) -> bool: ...

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None: ...


class BatchTarget(Target, Protocol):
    """A target that also takes many events in one call, in order, all or none."""

    async def deliver_batch(self, events: Sequence[tuple[str, str, bytes]]) -> None: ...


class TargetUnavailable(Exception):
    """The target cannot take anything now (its server is down): back off, don't probe."""


class TargetHeld(Exception):
    """The target exists but takes nothing now (a disabled webhook): try again much later."""


# Targets that come and go with the database (webhook subscriptions), read each cycle.
TargetSource = Callable[..., Awaitable[Sequence[Target]]]
