"""Drift of ports (their Logical_Switch_Port rows) and subnets (their DHCP_Options rows)."""

from __future__ import annotations

import re
from typing import Any

from segmentd.backends.ovn import commands as cmd
from segmentd.backends.ovn import naming
from segmentd.backends.ovn import port_commands as pcmd
from segmentd.backends.base import DIFFERENT, EXTRA, FOREIGN, MISSING, DriftItem

KINDS = ("dhcp_options", "port")
VIF_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PORT_IDS_COMPARED = (
    "neutron:port_name", "neutron:device_id", "neutron:device_owner", "neutron:project_id",
    "neutron:revision_number", "neutron:vnic_type", "neutron:host_id",
)


def _owned(row, owner: str) -> bool:
    return row.external_ids.get(cmd.OWNER_KEY) == owner


def compare_dhcp(api, owner: str, subnets, pending: set[str], switches) -> list[DriftItem]:
    items: list[DriftItem] = []
    rows_by_subnet: dict[str, list] = {}
    for row in api.tables[pcmd.DHCP].rows.values():
        rows_by_subnet.setdefault(row.external_ids.get("subnet_id", ""), []).append(row)
    wanted = set()
    for subnet in subnets:
        if not naming.has_dhcp_options(subnet):
            continue
        wanted.add(subnet["id"])
        rows = rows_by_subnet.get(subnet["id"], [])
        if not rows:
            items.append(DriftItem("dhcp_options", MISSING, subnet["id"], subnet["id"],
                                   desired=subnet))
            continue
        row = rows[0]
        if not _owned(row, owner):
            items.append(DriftItem("dhcp_options", FOREIGN, subnet["id"], subnet["id"],
                                   {"owner": row.external_ids.get(cmd.OWNER_KEY)}))
            continue
        switch = switches.get(naming.switch_name(subnet["network_id"]))
        mtu = naming.switch_mtu(switch) if switch is not None else None
        cidr, options, _ids = naming.dhcp_columns(subnet, mtu)
        details = {f"options:{k}": {"database": v, "northbound": row.options.get(k)}
                   for k, v in options.items() if row.options.get(k) != v}
        details.update({f"options:{k}": {"database": None, "northbound": v}
                        for k, v in row.options.items() if k not in options})
        if row.cidr != cidr:
            details["cidr"] = {"database": cidr, "northbound": row.cidr}
        if details:
            items.append(DriftItem("dhcp_options", DIFFERENT, subnet["id"], subnet["id"],
                                   details, desired=subnet))
    for subnet_id, rows in rows_by_subnet.items():
        if subnet_id in wanted or subnet_id in pending:
            continue
        if any(_owned(r, owner) for r in rows):
            items.append(DriftItem("dhcp_options", EXTRA, subnet_id, subnet_id))
    return items


def _dhcp_refs(port: dict[str, Any], dhcp_by_subnet) -> dict[str, list]:
    """The DHCP rows a port should point at: those of its first IPv4 and IPv6 subnets
    that have one in the NB (what EnsureVifPort sets)."""
    refs: dict[str, list] = {"dhcpv4_options": [], "dhcpv6_options": []}
    for fixed in port["fixed_ips"]:
        row = dhcp_by_subnet.get(fixed["subnet_id"])
        if row is None:
            continue
        column = "dhcpv6_options" if ":" in row.cidr else "dhcpv4_options"
        if not refs[column]:
            refs[column] = [row.uuid]
    return refs


def _port_differences(row, port: dict[str, Any], holder: str | None,
                      dhcp_by_subnet) -> dict[str, Any]:
    cidrs = {}
    for ref in list(row.dhcpv4_options) + list(row.dhcpv6_options):
        cidrs[ref.external_ids.get("subnet_id", "")] = ref.cidr
    wanted = naming.lsp_columns(port, cidrs)
    details: dict[str, Any] = {}
    for column in ("addresses", "port_security", "enabled"):
        current = list(getattr(row, column))
        if current != wanted[column]:
            details[column] = {"database": wanted[column], "northbound": current}
    if dict(row.options) != wanted["options"]:
        details["options"] = {"database": wanted["options"], "northbound": dict(row.options)}
    for key in PORT_IDS_COMPARED:
        if row.external_ids.get(key) != wanted["external_ids"][key]:
            details[f"external_ids:{key}"] = {"database": wanted["external_ids"][key],
                                              "northbound": row.external_ids.get(key)}
    for column, wanted_refs in _dhcp_refs(port, dhcp_by_subnet).items():
        current_refs = [ref.uuid for ref in getattr(row, column)]
        if current_refs != wanted_refs:
            details[column] = {"database": [str(u) for u in wanted_refs],
                               "northbound": [str(u) for u in current_refs]}
    switch = naming.switch_name(port["network_id"])
    if holder != switch:
        details["switch"] = {"database": switch, "northbound": holder}
    return details


def compare_ports(api, owner: str, ports, pending: set[str], lsps, holder_of) -> list[DriftItem]:
    items: list[DriftItem] = []
    dhcp_by_subnet = {}
    for dhcp in api.tables[pcmd.DHCP].rows.values():
        if _owned(dhcp, owner):
            dhcp_by_subnet.setdefault(dhcp.external_ids.get("subnet_id", ""), dhcp)
    wanted = set()
    for port in ports:
        if not naming.realizes_port(port):
            continue
        wanted.add(port["id"])
        switch = naming.switch_name(port["network_id"])
        row = lsps.get(port["id"])
        if row is None:
            items.append(DriftItem("port", MISSING, port["id"], port["id"], desired=port,
                                   switch=switch))
            continue
        if not _owned(row, owner):
            items.append(DriftItem("port", FOREIGN, port["id"], port["id"],
                                   {"owner": row.external_ids.get(cmd.OWNER_KEY)}))
            continue
        details = _port_differences(row, port, holder_of.get(row.uuid), dhcp_by_subnet)
        if details:
            items.append(DriftItem("port", DIFFERENT, port["id"], port["id"], details,
                                   desired=port, switch=switch))
    for name, row in lsps.items():
        if (VIF_NAME.match(name) and row.type == "" and name not in wanted
                and name not in pending and _owned(row, owner)):
            items.append(DriftItem("port", EXTRA, name, name, switch=holder_of.get(row.uuid)))
    return items


def repair_commands(api, batch: cmd.Batch, item: DriftItem) -> list:
    if item.kind == "dhcp_options":
        if item.problem == EXTRA:
            return [pcmd.DeleteDhcpOptions(api, batch, item.name)]
        return [pcmd.EnsureDhcpOptions(api, batch, item.desired, force=True)]
    if item.problem == EXTRA:
        return [cmd.DeletePort(api, batch, item.switch or "", item.name)]
    out = []
    moved = item.details.get("switch")
    if moved and moved["northbound"]:
        out.append(cmd.DeletePort(api, batch, moved["northbound"], item.name))
    out.append(pcmd.EnsureVifPort(api, batch, item.desired, force=True))
    return out
