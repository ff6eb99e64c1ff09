"""backend = "none": segmentd's database is the whole truth; nothing is realized elsewhere.

It realizes no event, carries every network type the ranges allow, has no chassis and
nothing to drift from. It is always "connected": there is nothing to wait for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segmentd.backends.base import BackendUnavailable, DesiredState, DriftReport

if TYPE_CHECKING:
    from segmentd.config import Settings


class NoBackend:
    name = "none"
    realizes: frozenset[str] = frozenset()
    shapes_network: frozenset[str] = frozenset()
    limits = None
    drift_mode = "off"
    drift_interval = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> NoBackend:
        return cls()

    @property
    def connected(self) -> bool:
        return True

    @property
    def last_error(self) -> str | None:
        return None

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def wait_connected(self) -> bool:
        return True

    def target(self) -> None:
        return None

    def chassis(self) -> None:
        return None

    async def compare(self, state: DesiredState) -> DriftReport:
        raise BackendUnavailable('backend "none" holds nothing to compare')

    async def repair(self, report: DriftReport) -> int:
        raise BackendUnavailable('backend "none" holds nothing to repair')
