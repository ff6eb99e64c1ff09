"""Drift between the database and the Northbound DB: found, reported, and repaired.

The comparison reads the NB from the IDL's in-memory copy (no query per row) and the
database's networks and segments as the same views events carry. Each difference is an
item of a report:

- `missing`: in the database, not in the NB;
- `extra`: carries this segmentd's owner marker, unknown to the database;
- `different`: both exist, a column segmentd manages differs (the details say which);
- `foreign`: has the name segmentd would use but not its marker: reported, never touched;
- `duplicate`: several switches with one name (the NB has no unique index on it).

Resources with an event still on its way to OVN are left out (they are converging, not
drifting). Repair fixes missing, extra and different items with the same idempotent
commands the dispatcher uses, in batched transactions, the database's state winning.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from segmentd.backends.base import (
    DIFFERENT,
    DUPLICATE,
    EXTRA,
    FOREIGN,
    MISSING,
    REPAIRABLE,
    DriftItem,
    DriftReport,
)
from segmentd.backends.ovn import commands as cmd
from segmentd.backends.ovn import naming, vif_drift

SWITCH_NAME = re.compile(r"^neutron-([0-9a-f-]{36})$")
PORT_NAME = re.compile(r"^provnet-([0-9a-f-]{36})$")
REPAIR_BATCH = 500


def _managed_differences(current: dict[str, str], wanted: dict[str, str], prefix: str):
    return {f"{prefix}:{k}": {"database": v, "northbound": current.get(k)}
            for k, v in wanted.items() if current.get(k) != v}


# The switch columns kept up to date by every network event. (The neutron:provnet-* keys
# describe the segments at the network's creation, as Neutron's do, and are not compared.)
SWITCH_IDS_COMPARED = ("neutron:network_name", "neutron:mtu", "neutron:revision_number")
SWITCH_CONFIG_COMPARED = ("mcast_snoop", "mcast_flood_unregistered", "vlan-passthru")


def _switch_differences(row, network: dict[str, Any], owner: str) -> dict[str, Any]:
    external_ids, other_config = naming.switch_columns(network)
    wanted_ids = {k: external_ids[k] for k in SWITCH_IDS_COMPARED}
    details = _managed_differences(dict(row.external_ids), wanted_ids, "external_ids")
    wanted_config = {k: other_config[k] for k in SWITCH_CONFIG_COMPARED}
    details.update(_managed_differences(dict(row.other_config), wanted_config, "other_config"))
    return details


def _port_differences(row, segment: dict[str, Any], holder: str | None, switch: str):
    tag, external_ids, options = naming.localnet_columns(segment)
    details = _managed_differences(dict(row.options), options, "options")
    details.update(_managed_differences(dict(row.external_ids), external_ids, "external_ids"))
    current_tag = row.tag_request[0] if row.tag_request else None
    if current_tag != tag:
        details["tag_request"] = {"database": tag, "northbound": current_tag}
    if row.type != "localnet":
        details["type"] = {"database": "localnet", "northbound": row.type}
    if holder != switch:
        details["switch"] = {"database": switch, "northbound": holder}
    return details


def compare(api, owner: str, networks: Iterable[dict[str, Any]],
            segments: Iterable[dict[str, Any]], pending: set[str],
            subnets: Iterable[dict[str, Any]] = (),
            ports: Iterable[dict[str, Any]] = ()) -> DriftReport:
    """The report for the database's networks and segments against the NB's copy.

    Call with the IDL's lock held (see `snapshot_compare`)."""
    switches_by_name: dict[str, list] = defaultdict(list)
    holder_of: dict[Any, str] = {}
    for row in api.tables[cmd.SWITCH].rows.values():
        switches_by_name[row.name].append(row)
        for port in row.ports:
            holder_of[port.uuid] = row.name
    ports_by_name = {row.name: row for row in api.tables[cmd.PORT].rows.values()}

    items: list[DriftItem] = []
    networks = [n for n in networks if n["id"] not in pending]
    segments = [s for s in segments if s["id"] not in pending and s["network_id"] not in pending]
    known_networks = {n["id"] for n in networks}
    known_ports = set()

    for network in networks:
        name = naming.switch_name(network["id"])
        rows = switches_by_name.get(name, [])
        if not rows:
            items.append(DriftItem("switch", MISSING, name, network["id"], desired=network))
            continue
        if len(rows) > 1:
            items.append(DriftItem("switch", DUPLICATE, name, network["id"],
                                   {"count": len(rows)}))
        row = rows[0]
        if row.external_ids.get(cmd.OWNER_KEY) != owner:
            items.append(DriftItem("switch", FOREIGN, name, network["id"],
                                   {"owner": row.external_ids.get(cmd.OWNER_KEY)}))
            continue
        details = _switch_differences(row, network, owner)
        if details:
            items.append(DriftItem("switch", DIFFERENT, name, network["id"], details,
                                   desired=network))

    for segment in segments:
        if not naming.has_localnet_port(segment):
            continue
        name = naming.localnet_port_name(segment["id"])
        known_ports.add(name)
        switch = naming.switch_name(segment["network_id"])
        row = ports_by_name.get(name)
        if row is None:
            items.append(DriftItem("localnet_port", MISSING, name, segment["id"],
                                   desired=segment, switch=switch))
            continue
        if row.external_ids.get(cmd.OWNER_KEY) != owner:
            items.append(DriftItem("localnet_port", FOREIGN, name, segment["id"],
                                   {"owner": row.external_ids.get(cmd.OWNER_KEY)}))
            continue
        details = _port_differences(row, segment, holder_of.get(row.uuid), switch)
        if details:
            items.append(DriftItem("localnet_port", DIFFERENT, name, segment["id"], details,
                                   desired=segment, switch=switch))

    for name, rows in switches_by_name.items():
        match = SWITCH_NAME.match(name)
        if match is None or match.group(1) in known_networks or match.group(1) in pending:
            continue
        if any(r.external_ids.get(cmd.OWNER_KEY) == owner for r in rows):
            items.append(DriftItem("switch", EXTRA, name, match.group(1)))
    for name, row in ports_by_name.items():
        match = PORT_NAME.match(name)
        if match is None or name in known_ports or match.group(1) in pending:
            continue
        if row.external_ids.get(cmd.OWNER_KEY) == owner:
            items.append(DriftItem("localnet_port", EXTRA, name, match.group(1),
                                   switch=holder_of.get(row.uuid)))

    subnets = [x for x in subnets if x["id"] not in pending and x["network_id"] not in pending]
    ports = [x for x in ports if x["id"] not in pending and x["network_id"] not in pending]
    switch_rows = {name: rows[0] for name, rows in switches_by_name.items()}
    items += vif_drift.compare_dhcp(api, owner, subnets, pending, switch_rows)
    items += vif_drift.compare_ports(api, owner, ports, pending, ports_by_name, holder_of)
    return DriftReport(items, len(networks), len(segments), len(pending), len(subnets),
                       len(ports))


def snapshot_compare(api, owner, networks, segments, pending, subnets=(), ports=()) -> DriftReport:
    """`compare` with the IDL's lock held, so its copy does not change under the walk."""
    with api.ovsdb_connection.lock:
        return compare(api, owner, networks, segments, pending, subnets, ports)


def repair(api, owner: str, report: DriftReport) -> int:
    """Fix every missing, extra and different item; returns how many. Blocking (a thread)."""
    todo = [i for i in report.items if i.problem in REPAIRABLE]
    for start in range(0, len(todo), REPAIR_BATCH):
        batch = cmd.Batch(owner)
        with api.transaction(check_error=True, log_errors=False) as txn:
            for item in todo[start:start + REPAIR_BATCH]:
                for command in _repair_commands(api, batch, item):
                    txn.add(command)
    return len(todo)


def _repair_commands(api, batch: cmd.Batch, item: DriftItem) -> list:
    if item.kind in vif_drift.KINDS:
        return vif_drift.repair_commands(api, batch, item)
    if item.kind == "switch":
        if item.problem == EXTRA:
            return [cmd.DeleteSwitch(api, batch, item.name)]
        external_ids, other_config = naming.switch_columns(item.desired)
        return [cmd.EnsureSwitch(api, batch, item.name, external_ids, other_config,
                                 int(item.desired["revision_number"]), force=True)]
    if item.problem == EXTRA:
        return [cmd.DeletePort(api, batch, item.switch or "", item.name)]
    segment = item.desired
    tag, external_ids, options = naming.localnet_columns(segment)
    out = []
    moved = item.details.get("switch")
    if moved and moved["northbound"]:  # on the wrong switch: take it off that one first
        out.append(cmd.DeletePort(api, batch, moved["northbound"], item.name))
    out.append(cmd.EnsureLocalnetPort(api, batch, item.switch, item.name,
                                      segment["physical_network"], tag, external_ids, options))
    return out
