"""Time as the services read it: now, as stored, and how long a host's heartbeat counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """Timestamps are stored as naive UTC, whole seconds, as Neutron shows them."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class HostClock:
    """The two time limits on a heartbeat: `alive` (display) and the reach grace period."""

    def __init__(self, down_time_seconds: float, grace_seconds: float) -> None:
        self.down_time = timedelta(seconds=down_time_seconds)
        self.grace = timedelta(seconds=grace_seconds)

    def alive(self, heartbeat: datetime, now: datetime) -> bool:
        return heartbeat >= now - self.down_time

    def cutoff(self, now: datetime) -> datetime:
        """Heartbeats older than this reach nothing."""
        return now - self.grace
