"""OVSDB commands for ports (Logical_Switch_Port rows of VIFs) and subnets (DHCP_Options).

Same rules as `commands`: decided inside the transaction, idempotent, and only rows with
this segmentd's owner marker are changed; a newer `neutron:revision_number` in the NB
wins over an older event delivered late.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from segmentd.backends.ovn import naming
from segmentd.backends.ovn.commands import (
    ABSENT,
    CREATED,
    DELETED,
    FOREIGN,
    OWNER_KEY,
    PORT,
    STALE,
    SWITCH,
    UPDATED,
    Batch,
    _Command,
    _revision,
)

LOG = logging.getLogger(__name__)
DHCP = "DHCP_Options"


def dhcp_rows(api, batch: Batch, subnet_id: str) -> list:
    """The DHCP_Options rows of a subnet (keyed by external_ids:subnet_id, as Neutron's)."""
    found = batch.pending.get((DHCP, subnet_id))
    if found is not None:
        return [found]
    return [row for row in api.tables[DHCP].rows.values()
            if row.external_ids.get("subnet_id") == subnet_id]


def _switch_mtu(api, batch: Batch, network_id: str) -> int | None:
    for row in batch.rows(api, SWITCH, naming.switch_name(network_id)):
        return naming.switch_mtu(row)
    return None


class EnsureDhcpOptions(_Command):
    """A subnet's DHCP_Options row, with the MTU of its network's switch."""

    def __init__(self, api, batch, subnet: dict[str, Any], force: bool = False) -> None:
        super().__init__(api, batch)
        self.subnet, self.force = subnet, force

    def run_idl(self, txn) -> None:
        mtu = _switch_mtu(self.api, self.batch, self.subnet["network_id"])
        cidr, options, external_ids = naming.dhcp_columns(self.subnet, mtu)
        rows = dhcp_rows(self.api, self.batch, self.subnet["id"])
        if rows and not self.batch.owns(rows[0]):
            self.result = FOREIGN
            return
        if rows:
            row = rows[0]
            if _revision(row) > self.subnet["revision_number"] and not self.force:
                self.result = STALE
                return
            self.result = UPDATED
        else:
            row = txn.insert(self.api.tables[DHCP])
            self.batch.pending[(DHCP, self.subnet["id"])] = row
            self.result = CREATED
        row.cidr = cidr
        row.options = options
        row.external_ids = {**external_ids, OWNER_KEY: self.batch.owner}
        if self.result == CREATED:  # ports on the subnet lost their reference with the old row
            self._point_ports_at(row, cidr)

    def _point_ports_at(self, row, cidr: str) -> None:
        column = "dhcpv6_options" if ":" in cidr else "dhcpv4_options"
        network = ipaddress.ip_network(cidr)
        for switch in self.batch.rows(self.api, SWITCH, naming.switch_name(self.subnet["network_id"])):
            for port in switch.ports:
                if (port.type or not self.batch.owns(port) or getattr(port, column)
                        or not _holds_address_in(port, network)):
                    continue
                setattr(port, column, [row])


def _holds_address_in(port, network) -> bool:
    for entry in port.addresses:
        for word in entry.split()[1:]:
            try:
                if ipaddress.ip_address(word) in network:
                    return True
            except ValueError:
                continue
    return False


class DeleteDhcpOptions(_Command):
    def __init__(self, api, batch, subnet_id: str) -> None:
        super().__init__(api, batch)
        self.subnet_id = subnet_id

    def run_idl(self, txn) -> None:
        self.result = ABSENT
        for row in dhcp_rows(self.api, self.batch, self.subnet_id):
            if not self.batch.owns(row):
                self.result = FOREIGN
                continue
            row.delete()
            self.batch.pending.pop((DHCP, self.subnet_id), None)
            self.result = DELETED


class FollowSwitchMtu(_Command):
    """After a network's MTU changed: its subnets' DHCP options offer the new one."""

    def __init__(self, api, batch, network_id: str, mtu: int, revision: int) -> None:
        super().__init__(api, batch)
        self.network_id, self.mtu, self.revision = network_id, mtu, revision

    def run_idl(self, txn) -> None:
        self.result = ABSENT
        for switch in self.batch.rows(self.api, SWITCH, naming.switch_name(self.network_id)):
            if _revision(switch) > self.revision:  # a newer change is in place already
                self.result = STALE
                return
        for row in list(self.api.tables[DHCP].rows.values()):
            if (row.external_ids.get(naming.NETWORK_KEY) == self.network_id
                    and self.batch.owns(row) and ":" not in row.cidr
                    and row.options.get("mtu") != str(self.mtu)):
                row.options = {**row.options, "mtu": str(self.mtu)}
                self.result = UPDATED


class EnsureVifPort(_Command):
    """A port's Logical_Switch_Port on its network's switch, pointing at its subnets'
    DHCP options."""

    def __init__(self, api, batch, port: dict[str, Any], force: bool = False) -> None:
        super().__init__(api, batch)
        self.port, self.force = port, force

    def run_idl(self, txn) -> None:
        switch_name = naming.switch_name(self.port["network_id"])
        switches = self.batch.rows(self.api, SWITCH, switch_name)
        if not switches or not self.batch.owns(switches[0]):
            LOG.warning("port %s: switch %s is missing or not segmentd's", self.port["id"],
                        switch_name)
            self.result = FOREIGN if switches else ABSENT
            return
        switch = switches[0]
        dhcp = {}
        for fixed in self.port["fixed_ips"]:
            rows = [r for r in dhcp_rows(self.api, self.batch, fixed["subnet_id"])
                    if self.batch.owns(r)]
            if rows:
                dhcp[fixed["subnet_id"]] = rows[0]
        columns = naming.lsp_columns(self.port, {sid: row.cidr for sid, row in dhcp.items()})
        ports = self.batch.rows(self.api, PORT, self.port["id"])
        if ports and not self.batch.owns(ports[0]):
            self.result = FOREIGN
            return
        if ports:
            row = ports[0]
            if _revision(row) > self.port["revision_number"] and not self.force:
                self.result = STALE
                return
            row.verify("external_ids")
            self.result = UPDATED
        else:
            row = txn.insert(self.api.tables[PORT])
            row.name = self.port["id"]
            self.batch.pending[(PORT, self.port["id"])] = row
            self.result = CREATED
        row.type = ""
        row.addresses = columns["addresses"]
        row.port_security = columns["port_security"]
        row.enabled = columns["enabled"]
        row.options = columns["options"]
        row.external_ids = {**columns["external_ids"], OWNER_KEY: self.batch.owner}
        v4 = [r for sid, r in dhcp.items() if ":" not in r.cidr]
        v6 = [r for sid, r in dhcp.items() if ":" in r.cidr]
        row.dhcpv4_options = v4[:1]
        row.dhcpv6_options = v6[:1]
        if not ports or row not in switch.ports:
            switch.addvalue("ports", row)
