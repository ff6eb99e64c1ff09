"""The backend contract: what realizes segmentd's networks outside its database, and what
it reports back.

A backend is the control plane segmentd programs (OVN's, for one). The rest of segmentd
knows it only through `Backend`:

- **Realization.** The event types it `realizes` go to its `target()`, a dispatcher target
  (segmentd/events/delivery.py): after commit, in order per network, retried until taken.
  While one of the `shapes_network` types is on its way, the network shows status BUILD.
- **Limits.** What it can carry (`limits`: network types, the highest tunnel ID), which
  segment validation applies at API time.
- **Drift.** `compare` reads what the backend holds against the database's `DesiredState`
  and answers a `DriftReport`; `repair` makes the backend match. The drift worker runs
  them every `drift_interval` seconds in `drift_mode` ("off", "log" or "repair").
- **Chassis.** `chassis()` is a live view of the hosts the control plane knows and what
  each reaches (`ChassisState`), which the chassis worker records as host reports.

`start` connects in the background and never blocks or fails for an unreachable control
plane: the API serves, and writes wait in the outbox. Blocking work (a library that is not
async) happens in threads inside the backend; every coroutine here is safe on the loop.
Backends are created by name (segmentd/backends/__init__.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from segmentd.events.delivery import Target, TargetUnavailable

# -- limits -------------------------------------------------------------------------------


class BackendLimits(Protocol):
    """What the backend that realizes segments can carry."""

    name: str
    network_types: frozenset[str]

    def max_tunnel_id(self) -> int | None:
        """The highest tunnel ID it carries now, None when it does not say; no I/O."""


# -- drift --------------------------------------------------------------------------------

MISSING, EXTRA, DIFFERENT, FOREIGN, DUPLICATE = "missing", "extra", "different", "foreign", "duplicate"
REPAIRABLE = (MISSING, EXTRA, DIFFERENT)  # FOREIGN and DUPLICATE are reported, never touched


@dataclass
class DesiredState:
    """The database's side of a comparison: every resource as events show it, and the ids
    whose latest change has not reached the backend yet (converging, not drifting)."""

    networks: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    in_flight: set[str]
    subnets: list[dict[str, Any]] = field(default_factory=list)
    ports: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DriftItem:
    kind: str  # what the backend holds: "switch", "localnet_port", "dhcp_options", "port"
    problem: str  # MISSING, EXTRA, DIFFERENT, FOREIGN or DUPLICATE
    name: str
    resource_id: str
    details: dict[str, Any] = field(default_factory=dict)
    # What repair needs: the resource as the database has it (None for an extra row).
    desired: dict[str, Any] | None = None
    switch: str | None = None  # a port's switch (desired, or the one holding an extra port)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "problem": self.problem, "name": self.name,
                "resource_id": self.resource_id, "details": self.details}


@dataclass
class DriftReport:
    items: list[DriftItem]
    networks_checked: int
    segments_checked: int
    pending: int  # resources left out: an event for them is still on its way
    subnets_checked: int = 0
    ports_checked: int = 0

    @property
    def in_sync(self) -> bool:
        return not self.items

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for item in self.items:
            out[item.problem] += 1
        return dict(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "networks_checked": self.networks_checked,
            "segments_checked": self.segments_checked,
            "subnets_checked": self.subnets_checked,
            "ports_checked": self.ports_checked,
            "pending": self.pending,
            "counts": self.counts(),
            "items": [i.as_dict() for i in self.items],
        }


# -- chassis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChassisState:
    """One host as the control plane knows it (an OVN chassis)."""

    name: str
    hostname: str
    bridge_mappings: tuple[tuple[str, str], ...]  # (physnet, bridge), sorted
    tunnel_types: tuple[str, ...]  # sorted
    error: str | None = None  # why its mappings could not be read

    def configurations(self) -> dict:
        """As the host report of the chassis' agent would carry them."""
        return {"bridge_mappings": dict(self.bridge_mappings),
                "tunnel_types": list(self.tunnel_types)}


class ChassisSource(Protocol):
    """A live copy of the control plane's chassis, connected by `start` in the background."""

    # Called (from any thread) whenever the copy changed or was reloaded.
    on_change: Callable[[], None] | None

    @property
    def connected(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None:
        """Blocking: call it in a thread."""

    def change_seqno(self) -> int | None:
        """Moves whenever the copy changed; None before the first connection."""

    def snapshot(self) -> dict[str, ChassisState]:
        """Every chassis by name, read consistently. Blocking: call it in a thread."""


# -- the backend --------------------------------------------------------------------------


class BackendUnavailable(TargetUnavailable):
    """The control plane is not connected: deliveries wait, checks are skipped."""


class Backend(Protocol):
    name: str  # its name in the configuration, and its dispatcher target's name
    realizes: frozenset[str]  # the event types its target applies; empty: none
    shapes_network: frozenset[str]  # of those, the ones that keep a network BUILD
    limits: BackendLimits | None
    drift_mode: str  # "off", "log" or "repair"
    drift_interval: float  # seconds between drift checks

    @property
    def connected(self) -> bool: ...

    @property
    def last_error(self) -> str | None:
        """Why it is not connected, for logs and tools."""

    def start(self) -> None:
        """Connect in the background; never blocks, never raises for an unreachable peer."""

    async def stop(self) -> None: ...

    async def wait_connected(self) -> bool:
        """For tools: whether it connects within its own connection timeout."""

    def target(self) -> Target | None:
        """Where the dispatcher delivers the events it realizes (None: it realizes none)."""

    def chassis(self) -> ChassisSource | None:
        """Its chassis, when it has any and watching them is configured."""

    async def compare(self, state: DesiredState) -> DriftReport:
        """What differs between `state` and what the backend holds."""

    async def repair(self, report: DriftReport) -> int:
        """Fix the report's REPAIRABLE items, the database winning; how many."""
