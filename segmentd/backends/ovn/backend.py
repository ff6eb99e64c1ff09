"""The OVN backend: networks, segments, subnets and ports realized in OVN's Northbound DB,
hosts read from its Southbound chassis.

It owns both connections (opened in the background, retried; see connection.py), the
dispatcher target that turns events into Northbound transactions (target.py), the drift
comparison and repair (drift.py, vif_drift.py), the chassis view (southbound.py) and what
OVN can carry (OvnLimits).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from segmentd.backends.base import BackendUnavailable, DesiredState, DriftReport
from segmentd.backends.ovn import drift
from segmentd.backends.ovn.connection import NorthboundConnection, OvnLimits, endpoint_of
from segmentd.backends.ovn.southbound import SouthboundConnection
from segmentd.backends.ovn.target import HANDLED, NETWORK_SHAPE, OvnTarget

if TYPE_CHECKING:
    from segmentd.config import OvnSettings, Settings


class OvnBackend:
    name = OvnTarget.name
    realizes = HANDLED
    shapes_network = NETWORK_SHAPE

    def __init__(self, ovn: OvnSettings) -> None:
        self._owner = ovn.owner
        self._timeout = ovn.timeout_seconds
        self.drift_mode = ovn.sync_mode
        self.drift_interval = ovn.sync_interval_seconds
        self.northbound = NorthboundConnection(endpoint_of(ovn))
        self.limits = OvnLimits(self.northbound)
        self._target = OvnTarget(self.northbound, ovn.owner)
        self._southbound = (
            SouthboundConnection(endpoint_of(ovn, ovn.sb_connection)) if ovn.watch_chassis
            else None)

    @classmethod
    def from_settings(cls, settings: Settings) -> OvnBackend:
        return cls(settings.ovn)

    @property
    def connected(self) -> bool:
        return self.northbound.connected

    @property
    def last_error(self) -> str | None:
        return self.northbound.last_error

    def start(self) -> None:
        self.northbound.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.northbound.stop)

    async def wait_connected(self) -> bool:
        return await asyncio.to_thread(self.northbound.wait_connected, self._timeout + 1)

    def target(self) -> OvnTarget:
        return self._target

    def chassis(self) -> SouthboundConnection | None:
        """The Southbound chassis (ovn.watch_chassis); the chassis worker starts it."""
        return self._southbound

    def _api(self):
        api = self.northbound.api
        if api is None or not self.northbound.connected:
            raise BackendUnavailable(self.northbound.last_error
                                     or "not connected to the Northbound DB")
        return api

    async def compare(self, state: DesiredState) -> DriftReport:
        return await asyncio.to_thread(
            drift.snapshot_compare, self._api(), self._owner, state.networks, state.segments,
            state.in_flight, state.subnets, state.ports)

    async def repair(self, report: DriftReport) -> int:
        return await asyncio.to_thread(drift.repair, self._api(), self._owner, report)
