"""A second backend, in memory: what a backend must do to plug into segmentd, and nothing
OVN-specific. It realizes networks (a dict of what it holds), carries VLAN, VXLAN and flat
only, up to VNI 5000, and can be disconnected and tampered with by the test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from segmentd import constants as c
from segmentd.backends.base import (
    DIFFERENT,
    EXTRA,
    MISSING,
    REPAIRABLE,
    BackendUnavailable,
    DesiredState,
    DriftItem,
    DriftReport,
)

NETWORK_EVENTS = frozenset({c.EVENT_NETWORK_CREATED, c.EVENT_NETWORK_UPDATED,
                            c.EVENT_NETWORK_DELETED})


class MemoryLimits:
    name = "memory"
    network_types = frozenset({"flat", "vlan", "vxlan"})

    def max_tunnel_id(self) -> int | None:
        return 5000


class MemoryTarget:
    name = "memory"

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend

    def wants(self, event_type: str) -> bool:
        return event_type in NETWORK_EVENTS

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        await self.deliver_batch([(event_id, event_type, body)])

    async def deliver_batch(self, events: Sequence[tuple[str, str, bytes]]) -> None:
        backend = self._backend
        if not backend.connected:
            raise BackendUnavailable("the memory backend is disconnected")
        for _, event_type, body in events:
            resource = orjson.loads(body)["resource"]
            backend.applied.append((event_type, resource["id"]))
            if event_type == c.EVENT_NETWORK_DELETED:
                backend.networks.pop(resource["id"], None)
            else:
                backend.networks[resource["id"]] = resource["name"]


class MemoryBackend:
    name = "memory"
    realizes = NETWORK_EVENTS
    shapes_network = NETWORK_EVENTS
    drift_mode = "repair"
    drift_interval = 0.2

    def __init__(self) -> None:
        self.limits = MemoryLimits()
        self.networks: dict[str, str] = {}  # id: name, what it holds
        self.applied: list[tuple[str, str]] = []
        self.connected = False
        self.started = self.stopped = False
        self._target = MemoryTarget(self)

    @property
    def last_error(self) -> str | None:
        return None if self.connected else "disconnected"

    def start(self) -> None:
        self.started = self.connected = True

    async def stop(self) -> None:
        self.stopped = True

    async def wait_connected(self) -> bool:
        return self.connected

    def target(self) -> MemoryTarget:
        return self._target

    def chassis(self) -> None:
        return None

    async def compare(self, state: DesiredState) -> DriftReport:
        if not self.connected:
            raise BackendUnavailable("the memory backend is disconnected")
        wanted = {n["id"]: n for n in state.networks if n["id"] not in state.in_flight}
        items = []
        for net_id, net in wanted.items():
            if net_id not in self.networks:
                items.append(DriftItem("network", MISSING, net_id, net_id, desired=net))
            elif self.networks[net_id] != net["name"]:
                items.append(DriftItem("network", DIFFERENT, net_id, net_id,
                                       {"name": {"database": net["name"],
                                                 "backend": self.networks[net_id]}},
                                       desired=net))
        for net_id in self.networks.keys() - wanted.keys() - state.in_flight:
            items.append(DriftItem("network", EXTRA, net_id, net_id))
        return DriftReport(items, len(wanted), 0, len(state.in_flight))

    async def repair(self, report: DriftReport) -> int:
        fixed = [i for i in report.items if i.problem in REPAIRABLE]
        for item in fixed:
            if item.problem == EXTRA:
                self.networks.pop(item.resource_id, None)
            else:
                self.networks[item.resource_id] = item.desired["name"]
        return len(fixed)


def holder(created: list[MemoryBackend]) -> Any:
    """A factory for backends.register that keeps each backend it made in `created`."""

    def factory(settings) -> MemoryBackend:
        backend = MemoryBackend()
        created.append(backend)
        return backend

    return factory
