"""A port's binding: the segment its host reaches, and keeping that true as hosts change.

Binding follows Neutron's agent and OVN drivers: the candidates are the segments of the
port's addresses when they sit on segments, else every segment of the network; the port
binds to the first candidate, in segment_index order, that its host reaches.
"""

from __future__ import annotations

from typing import Any

from segmentd import constants as c
from segmentd.context import RequestContext
from segmentd.db import networks as network_rows
from segmentd.db import ports as rows
from segmentd.services.clock import utcnow
from segmentd.services.shapes import port_view
from segmentd.services.uow import UnitOfWork


def bind(host: str, reached: list[str], address_segments: set[str | None]) -> dict[str, Any]:
    """The binding columns for a port on `host`, which reaches `reached` of its network's
    segments (in segment_index order); `address_segments`: the segments of its addresses."""
    if not host:
        return {"vif_type": c.VIF_TYPE_UNBOUND, "bound_segment_id": None}
    pinned = {s for s in address_segments if s is not None}
    for segment_id in reached:
        if not pinned or segment_id in pinned:
            return {"vif_type": c.VIF_TYPE_OVS, "bound_segment_id": segment_id}
    return {"vif_type": c.VIF_TYPE_BINDING_FAILED, "bound_segment_id": None}


def status_of(vif_type: str, admin_state_up: bool) -> str:
    return c.STATUS_ACTIVE if vif_type == c.VIF_TYPE_OVS and admin_state_up else c.STATUS_DOWN


async def rebind_host_ports(ctx: RequestContext | None, uow: UnitOfWork, host: str) -> int:
    """After a host's reach changed: bind its ports again as the reach now stands, with a
    port.updated event for each port whose binding or status changed. Returns that count."""
    seen = await rows.ports_of_host(uow.conn, host)
    if not seen:
        return 0
    # Lock order as port writes have it: their networks (shared), then the ports themselves,
    # read again as they stand once a port write in progress is done.
    for network_id in sorted({p["network_id"] for p in seen}):
        await network_rows.share_lock_network(uow.conn, network_id)
    ports = await rows.ports_of_host(uow.conn, host, lock=True)
    ids = [p["id"] for p in ports]
    segments = await rows.segments_of_addresses(uow.conn, ids)
    addresses = await rows.addresses_of_ports(uow.conn, ids)
    reached_by_network: dict[str, list[str]] = {}
    changed = 0
    for port in ports:
        network_id = port["network_id"]
        if network_id not in reached_by_network:
            reached_by_network[network_id] = await rows.reached_segments(
                uow.conn, network_id, host, None)
        values = bind(host, reached_by_network[network_id], segments.get(port["id"], set()))
        values["status"] = status_of(values["vif_type"], port["admin_state_up"])
        if all(port[k] == v for k, v in values.items()):
            continue
        values["updated_at"] = utcnow()
        row = await rows.update_port(uow.conn, port["id"], values)
        uow.record(ctx, c.EVENT_PORT_UPDATED, port_view(row, addresses[port["id"]]),
                   row["project_id"])
        changed += 1
    return changed
