"""What a subnet change does to other rows, realized in the Northbound DB: the switch takes
the network's new revision, a deleted auto-address subnet leaves its ports' LSPs, and a
port's new MAC (with its new EUI-64 address) reaches its LSP; no drift is left."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.factories import make_port, make_subnet, update_port
from tests.ovn.test_drift import sync
from tests.ovn.test_ports_realize import (
    addresses_of,
    at_revision,
    dhcp,
    lsp,
    ovn_api,  # noqa: F401  (the fixture)
    settled,
)
from tests.ovn.test_realize import create_vlan_network, switch

# As in test_ports_realize.py: what the backend writes does not depend on the database.
pytestmark = pytest.mark.sqlite_only


def network(api, network_id) -> dict:
    r = api.client.get(f"/v2.0/networks/{network_id}")
    assert r.status_code == 200, r.text
    return r.json()["network"]


def test_subnet_changes_and_a_new_mac_are_realized_without_drift(ovn_api, ovn_dbs, db_url):
    net, _ = create_vlan_network(ovn_api, name="followups", vlan=421)
    v4 = make_subnet(ovn_api, net["id"], cidr="10.61.0.0/24")
    v6 = make_subnet(ovn_api, net["id"], cidr="2001:db8:61::/64", ipv6_ra_mode="dhcpv6-stateless",
                     ipv6_address_mode="dhcpv6-stateless")
    revision = network(ovn_api, net["id"])["revision_number"]
    assert revision == net["revision_number"] + 2
    at_revision(lambda: switch(ovn_dbs, net["id"]), revision, "the switch")

    port = make_port(ovn_api, net["id"])
    row = wait_until(lambda: lsp(ovn_dbs, port["id"]), "the port's LSP")
    assert row["addresses"] == addresses_of(port) and len(port["fixed_ips"]) == 2
    v6_options = wait_until(lambda: dhcp(ovn_dbs, v6["id"]), "the stateless subnet's row")
    assert row["dhcpv6_options"] == v6_options["_uuid"]

    port = update_port(ovn_api, port["id"], mac_address="fa:16:3e:61:00:01")
    row = at_revision(lambda: lsp(ovn_dbs, port["id"]), port["revision_number"], "the LSP")
    assert row["addresses"] == addresses_of(port)
    assert row["port_security"] == addresses_of(port)
    assert "2001:db8:61:0:f816:3eff:fe61:1" in row["addresses"].split()

    assert ovn_api.client.delete(f"/v2.0/subnets/{v6['id']}").status_code == 204
    port = ovn_api.client.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert [f["subnet_id"] for f in port["fixed_ips"]] == [v4["id"]]
    row = at_revision(lambda: lsp(ovn_dbs, port["id"]), port["revision_number"], "the LSP")
    assert row["addresses"] == addresses_of(port)
    assert row["dhcpv6_options"] == []
    wait_until(lambda: dhcp(ovn_dbs, v6["id"]) is None, "the deleted subnet's row removal")
    at_revision(lambda: switch(ovn_dbs, net["id"]), revision + 1, "the switch")
    settled(ovn_api)
    code, report = sync(db_url, ovn_dbs, "log")
    assert (code, report["items"]) == (0, [])
