"""What each host reaches, and settling it when its agents change.

A host reaches the union of what its live agents report: the physnets of their bridge,
interface and device mappings, and their tunnel types. Only that union is stored (as
reach keys, see db/hosts.py); which segments a host reaches is derived from it in SQL.
So a report writes only the keys that changed, a new segment writes nothing per host,
and every change of a host's reach is one `host.segments_changed` event naming the
segments gained and lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from segmentd import constants as c
from segmentd.context import RequestContext
from segmentd.db import hosts as rows
from segmentd.db.hosts import ReachKey
from segmentd.services.binding import rebind_host_ports
from segmentd.services.uow import UnitOfWork

MAPPING_KINDS = ("bridge_mappings", "interface_mappings", "device_mappings")


def reach_of(configurations: Mapping[str, Any]) -> set[ReachKey]:
    """The reach keys one agent's configurations give its host (gre reaches nothing)."""
    physnets = set().union(*(configurations.get(kind) or {} for kind in MAPPING_KINDS))
    keys = {(t, p) for p in physnets for t in c.PHYSICAL_TYPES}
    keys |= {(t, c.NO_PHYSNET_KEY) for t in configurations.get("tunnel_types") or ()
             if t in c.TUNNEL_TYPES}
    return keys


def describe_reach(keys: Iterable[ReachKey]) -> tuple[list[str], list[str]]:
    """(physnets, tunnel types) of a set of reach keys, sorted."""
    keys = list(keys)
    physnets = sorted({p for _, p in keys if p != c.NO_PHYSNET_KEY})
    tunnels = sorted({t for t, p in keys if p == c.NO_PHYSNET_KEY})
    return physnets, tunnels


def canonical(configurations: Mapping[str, Any]) -> str:
    """One text per meaning, so an identical report compares equal to the stored one."""
    full = {kind: configurations.get(kind) or {} for kind in MAPPING_KINDS}
    full["device_mappings"] = {p: sorted(d) for p, d in full["device_mappings"].items()}
    full["tunnel_types"] = sorted(configurations.get("tunnel_types") or ())
    return orjson.dumps(full, option=orjson.OPT_SORT_KEYS).decode()


async def settle_reach(
    ctx: RequestContext | None,
    uow: UnitOfWork,
    host: str,
    live_agents: Iterable[Mapping[str, Any]],
    reason: str,
    current: set[ReachKey] | None = None,
) -> bool:
    """Make the host's stored reach the union over `live_agents`; one event if it changed.

    The caller holds the host's lock and may pass the stored reach if it knows it (a host
    with no agent has none). Returns whether anything changed.
    """
    wanted: set[ReachKey] = set()
    for agent in live_agents:
        wanted |= reach_of(orjson.loads(agent["configurations"]))
    if current is None:
        current = await rows.reach_of_host(uow.conn, host)
    added, removed = wanted - current, current - wanted
    if not added and not removed:
        return False
    # A segment matches exactly one key, so gained and lost are the segments of those keys.
    gained = await rows.add_reach(uow.conn, host, added)
    lost = await rows.remove_reach(uow.conn, host, removed)
    await record_reach_change(ctx, uow, host, reason, wanted, gained, lost)
    return True


async def record_reach_change(ctx, uow: UnitOfWork, host: str, reason: str,
                              reach: set[ReachKey], gained: list[str], lost: list[str],
                              rebind: bool = True) -> None:
    """The host.segments_changed event, then the host's ports bound again as its reach now
    stands (a port whose segment the host lost goes DOWN, with its own event)."""
    physnets, tunnels = describe_reach(reach)
    change = {"host": host, "reason": reason, "physnets": physnets, "tunnel_types": tunnels,
              "gained": gained, "lost": lost}
    uow.record(ctx, c.EVENT_HOST_SEGMENTS_CHANGED, change, None, resource_id=host)
    if rebind:
        await rebind_host_ports(ctx, uow, host)
