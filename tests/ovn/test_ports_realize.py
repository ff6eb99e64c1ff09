"""Subnets and ports become Northbound rows: a DHCP_Options row per DHCP subnet, a VIF
Logical_Switch_Port per port (none while its allocation is deferred), kept in step with
updates and deletes, and their drift reported and repaired by `segmentd ovn sync`."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import pytest

from tests.conftest import build_api, wait_until
from tests.factories import (
    bridges,
    make_port,
    make_subnet,
    send_report,
    update_port,
    update_subnet,
)
from tests.ovn.test_drift import problems, sync
from tests.ovn.test_realize import (
    OWNER,
    create_vlan_network,
    pending_ovn_deliveries,
    switch,
)

# What the OVN backend writes for subnets and ports does not depend on the database: the
# outbox and the drift records under it run on all three in tests/events and test_drift.py.
pytestmark = pytest.mark.sqlite_only

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# -- the app, the API calls and the Northbound reads -------------------------------------

@pytest.fixture
def ovn_api(db_url, ovn_dbs):
    """An app realizing into a fresh, empty Northbound DB."""
    ovn_dbs.stop()
    ovn_dbs.start(fresh=True)
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5},
                    event_dispatch_interval_seconds=0.1)
    with api.client:
        yield api


def in_flight(api) -> int:
    """Events not fanned out yet, and OVN deliveries not done yet."""
    from sqlalchemy import text

    async def count(conn):
        q = text("SELECT count(*) FROM outbox_events WHERE NOT fanned_out")
        return (await conn.execute(q)).scalar()

    return api._run(count) + pending_ovn_deliveries(api)


def settled(api) -> None:
    wait_until(lambda: not in_flight(api), "every event fanned out and delivered to OVN")


def dhcp(ovn_dbs, subnet_id: str) -> dict | None:
    rows = ovn_dbs.find("DHCP_Options", f"external_ids:subnet_id={subnet_id}")
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def lsp(ovn_dbs, port_id: str) -> dict | None:
    rows = ovn_dbs.find("Logical_Switch_Port", f"name={port_id}")
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def ports_of(ls: dict) -> list[str]:
    """A switch's `ports` column as a list of UUIDs (ovn-nbctl prints one as a bare UUID)."""
    ports = ls["ports"]
    return ports if isinstance(ports, list) else [ports]


def at_revision(get, revision: int, what: str) -> dict:
    """Wait for the row `get()` to carry neutron:revision_number = revision; return it."""
    def current():
        row = get()
        return row if row and row["external_ids"].get("neutron:revision_number") == str(
            revision) else None
    return wait_until(current, f"{what} at revision {revision}")


def addresses_of(port: dict) -> str:
    return " ".join([port["mac_address"], *(f["ip_address"] for f in port["fixed_ips"])])


def address_not_of(port: dict, *candidates: str) -> str:
    """The first candidate the port does not hold (its address was drawn at random)."""
    held = {ip["ip_address"] for ip in port["fixed_ips"]}
    return next(c for c in candidates if c not in held)


# -- 1. subnets: DHCP_Options -------------------------------------------------------------

def test_dhcp_subnet_becomes_dhcp_options_and_follows_update_mtu_disable_and_delete(
        ovn_api, ovn_dbs):
    net, _ = create_vlan_network(ovn_api, name="dhcp", vlan=401)
    subnet = make_subnet(ovn_api, net["id"], cidr="10.10.0.0/24",
                         dns_nameservers=["10.10.0.53", "10.10.0.54"],
                         host_routes=[{"destination": "10.20.0.0/16", "nexthop": "10.10.0.254"}])
    row = wait_until(lambda: dhcp(ovn_dbs, subnet["id"]), "the subnet's DHCP_Options row")
    assert row["cidr"] == "10.10.0.0/24"
    server_mac = row["options"]["server_mac"]
    assert MAC.match(server_mac), server_mac
    assert row["options"] == {
        "lease_time": "43200",
        "router": "10.10.0.1",
        "server_id": "10.10.0.1",
        "server_mac": server_mac,
        "mtu": str(net["mtu"]),
        "dns_server": "{10.10.0.53, 10.10.0.54}",
        "classless_static_route": "{10.20.0.0/16,10.10.0.254, 0.0.0.0/0,10.10.0.1}",
    }
    assert row["external_ids"] == {
        "subnet_id": subnet["id"],
        "neutron:revision_number": "0",
        "segmentd:network_id": net["id"],
        "segmentd:owner": OWNER,
    }

    # An update is mirrored, on the same row.
    updated = update_subnet(ovn_api, subnet["id"], dns_nameservers=["10.10.0.99"])
    row2 = at_revision(lambda: dhcp(ovn_dbs, subnet["id"]), updated["revision_number"],
                       "the DHCP options")
    assert row2["_uuid"] == row["_uuid"]
    assert row2["options"]["dns_server"] == "{10.10.0.99}"
    assert row2["options"]["server_mac"] == server_mac  # stable per subnet

    # The network's MTU follows into the DHCP options.
    r = ovn_api.client.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1400}})
    assert r.status_code == 200, r.text
    wait_until(lambda: dhcp(ovn_dbs, subnet["id"])["options"]["mtu"] == "1400",
               "the DHCP options' mtu following the network's")

    # enable_dhcp false removes the row, true brings it back, the delete removes it.
    update_subnet(ovn_api, subnet["id"], enable_dhcp=False)
    wait_until(lambda: dhcp(ovn_dbs, subnet["id"]) is None, "the DHCP options' removal")
    update_subnet(ovn_api, subnet["id"], enable_dhcp=True)
    back = wait_until(lambda: dhcp(ovn_dbs, subnet["id"]), "the DHCP options again")
    assert back["options"]["mtu"] == "1400" and back["options"]["router"] == "10.10.0.1"
    assert ovn_api.client.delete(f"/v2.0/subnets/{subnet['id']}").status_code == 204
    wait_until(lambda: dhcp(ovn_dbs, subnet["id"]) is None, "the deleted subnet's DHCP options")
    settled(ovn_api)
    assert ovn_dbs.find("DHCP_Options") == []


def test_ipv6_stateless_gets_dhcp_options_slaac_none_and_dhcp_disabled_none(ovn_api, ovn_dbs):
    net, _ = create_vlan_network(ovn_api, name="v6", vlan=402)
    stateless = make_subnet(ovn_api, net["id"], cidr="2001:db8:1::/64",
                            ipv6_ra_mode="dhcpv6-stateless",
                            ipv6_address_mode="dhcpv6-stateless",
                            dns_nameservers=["2001:db8::53"])
    slaac = make_subnet(ovn_api, net["id"], cidr="2001:db8:2::/64",
                        ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    no_dhcp = make_subnet(ovn_api, net["id"], cidr="10.12.0.0/24", enable_dhcp=False)
    row = wait_until(lambda: dhcp(ovn_dbs, stateless["id"]), "the stateless subnet's row")
    assert row["cidr"] == "2001:db8:1::/64"
    server_id = row["options"]["server_id"]
    assert MAC.match(server_id), server_id
    assert row["options"] == {"server_id": server_id, "dhcpv6_stateless": "true",
                              "dns_server": "{2001:db8::53}"}
    assert row["external_ids"]["segmentd:owner"] == OWNER
    settled(ovn_api)  # every subnet event applied: the others have no row, not a late one
    assert dhcp(ovn_dbs, slaac["id"]) is None
    assert dhcp(ovn_dbs, no_dhcp["id"]) is None
    assert len(ovn_dbs.find("DHCP_Options")) == 1


def test_network_mtu_change_reaches_every_ipv4_dhcp_options_row(ovn_api, ovn_dbs):
    net, _ = create_vlan_network(ovn_api, name="mtu", vlan=403)
    routed = make_subnet(ovn_api, net["id"], cidr="10.13.0.0/24")
    gatewayless = make_subnet(ovn_api, net["id"], cidr="10.14.0.0/24", gateway_ip=None)
    settled(ovn_api)
    row = dhcp(ovn_dbs, gatewayless["id"])
    assert "router" not in row["options"] and row["options"]["server_id"] == "10.14.0.1"
    assert row["options"]["mtu"] == str(net["mtu"])
    r = ovn_api.client.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1300}})
    assert r.status_code == 200, r.text
    settled(ovn_api)
    assert dhcp(ovn_dbs, routed["id"])["options"]["mtu"] == "1300"
    assert dhcp(ovn_dbs, gatewayless["id"])["options"]["mtu"] == "1300"


# -- 2. ports: Logical_Switch_Port -----------------------------------------------------------

def test_port_becomes_a_logical_switch_port_and_follows_updates_and_delete(ovn_api, ovn_dbs):
    net, _ = create_vlan_network(ovn_api, name="ports", vlan=404)
    subnet = make_subnet(ovn_api, net["id"], cidr="10.30.0.0/24")
    send_report(ovn_api, "host-1", bridge_mappings=bridges("physnet1"))
    send_report(ovn_api, "host-2", bridge_mappings=bridges("physnet1"))
    port = make_port(ovn_api, net["id"], name="vm-port", device_id="vm-1",
                     device_owner="compute:nova", **{"binding:host_id": "host-1"})
    (fixed,) = port["fixed_ips"]
    assert fixed["subnet_id"] == subnet["id"]
    ip = fixed["ip_address"]

    row = wait_until(lambda: lsp(ovn_dbs, port["id"]), "the port's Logical_Switch_Port")
    dhcp_row = dhcp(ovn_dbs, subnet["id"])
    assert row["type"] == ""
    assert row["addresses"] == f"{port['mac_address']} {ip}"
    assert row["port_security"] == f"{port['mac_address']} {ip}"
    assert row["enabled"] is True
    assert row["options"] == {"requested-chassis": "host-1"}
    assert row["external_ids"] == {
        "neutron:port_name": "vm-port",
        "neutron:device_id": "vm-1",
        "neutron:device_owner": "compute:nova",
        "neutron:project_id": port["project_id"],
        "neutron:network_name": f"neutron-{net['id']}",
        "neutron:cidrs": f"{ip}/24",
        "neutron:security_group_ids": "",
        "neutron:revision_number": str(port["revision_number"]),
        "neutron:vnic_type": "normal",
        "neutron:host_id": "host-1",
        "segmentd:owner": OWNER,
    }
    assert row["dhcpv4_options"] == dhcp_row["_uuid"]
    assert row["dhcpv6_options"] == []
    assert row["_uuid"] in ports_of(switch(ovn_dbs, net["id"]))

    def mirrored(port):
        return at_revision(lambda: lsp(ovn_dbs, port["id"]), port["revision_number"],
                           "the port's LSP")

    port = update_port(ovn_api, port["id"], name="renamed")
    assert mirrored(port)["external_ids"]["neutron:port_name"] == "renamed"

    port = update_port(ovn_api, port["id"], admin_state_up=False)
    assert mirrored(port)["enabled"] is False

    port = update_port(ovn_api, port["id"], **{"binding:host_id": "host-2"})
    row = mirrored(port)
    assert row["options"] == {"requested-chassis": "host-2"}
    assert row["external_ids"]["neutron:host_id"] == "host-2"

    # A new address: not the one the port drew at random (naming that one changes nothing).
    new_ip = address_not_of(port, "10.30.0.77", "10.30.0.78")
    port = update_port(ovn_api, port["id"],
                       fixed_ips=[{"subnet_id": subnet["id"], "ip_address": new_ip}])
    row = mirrored(port)
    assert row["addresses"] == f"{port['mac_address']} {new_ip}"
    assert row["port_security"] == f"{port['mac_address']} {new_ip}"
    assert row["external_ids"]["neutron:cidrs"] == f"{new_ip}/24"
    assert row["dhcpv4_options"] == dhcp_row["_uuid"]
    assert row["enabled"] is False and row["external_ids"]["neutron:port_name"] == "renamed"

    # A port without a host has no requested-chassis.
    hostless = make_port(ovn_api, net["id"])
    other = wait_until(lambda: lsp(ovn_dbs, hostless["id"]), "the host-less port's LSP")
    assert other["options"] == {} and other["external_ids"]["neutron:host_id"] == ""
    assert other["addresses"] == addresses_of(hostless)

    uuid_of_first = row["_uuid"]
    assert ovn_api.client.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    wait_until(lambda: lsp(ovn_dbs, port["id"]) is None, "the deleted port's LSP removal")
    assert uuid_of_first not in ports_of(switch(ovn_dbs, net["id"]))
    assert lsp(ovn_dbs, hostless["id"]) == other  # the other port stays as it was


def test_port_on_a_subnet_whose_dhcp_is_turned_back_on_points_at_the_new_options(
        ovn_api, ovn_dbs):
    """A port's dhcpv4_options are its subnet's DHCP_Options row, whenever that row is
    (re)created: turning DHCP off and on again must not leave the port without DHCP."""
    net, _ = create_vlan_network(ovn_api, name="toggle", vlan=405)
    subnet = make_subnet(ovn_api, net["id"], cidr="10.31.0.0/24")
    port = make_port(ovn_api, net["id"])
    row = wait_until(lambda: lsp(ovn_dbs, port["id"]), "the port's LSP")
    assert row["dhcpv4_options"] == dhcp(ovn_dbs, subnet["id"])["_uuid"]
    update_subnet(ovn_api, subnet["id"], enable_dhcp=False)
    wait_until(lambda: dhcp(ovn_dbs, subnet["id"]) is None, "the DHCP options' removal")
    assert lsp(ovn_dbs, port["id"])["dhcpv4_options"] == []
    update_subnet(ovn_api, subnet["id"], enable_dhcp=True)
    new = wait_until(lambda: dhcp(ovn_dbs, subnet["id"]), "the DHCP options again")
    settled(ovn_api)
    assert lsp(ovn_dbs, port["id"])["dhcpv4_options"] == new["_uuid"]


# -- 3. routed network: a deferred port has no LSP until it is bound ------------------------

def test_deferred_port_on_a_routed_network_appears_once_bound(ovn_api, ovn_dbs):
    net, seg1 = create_vlan_network(ovn_api, name="routed", physnet="physnet1", vlan=406)
    r = ovn_api.client.post("/v2.0/segments", json={"segment": {
        "network_id": net["id"], "network_type": "vlan", "physical_network": "physnet2",
        "segmentation_id": 407}})
    assert r.status_code == 201, r.text
    seg2 = r.json()["segment"]
    sub1 = make_subnet(ovn_api, net["id"], cidr="10.40.1.0/24", segment_id=seg1["id"])
    sub2 = make_subnet(ovn_api, net["id"], cidr="10.40.2.0/24", segment_id=seg2["id"])
    send_report(ovn_api, "host-a", bridge_mappings=bridges("physnet1"))

    port = make_port(ovn_api, net["id"], name="later")
    assert (port["ip_allocation"], port["fixed_ips"]) == ("deferred", [])
    settled(ovn_api)  # its port.created was applied, and made nothing
    assert lsp(ovn_dbs, port["id"]) is None
    assert [dhcp(ovn_dbs, s["id"])["cidr"] for s in (sub1, sub2)] == [
        "10.40.1.0/24", "10.40.2.0/24"]

    bound = update_port(ovn_api, port["id"], **{"binding:host_id": "host-a"})
    (fixed,) = bound["fixed_ips"]
    assert fixed["subnet_id"] == sub1["id"] and bound["ip_allocation"] == "deferred"  # how it was created
    row = wait_until(lambda: lsp(ovn_dbs, port["id"]), "the bound port's LSP")
    assert row["addresses"] == f"{bound['mac_address']} {fixed['ip_address']}"
    assert row["options"] == {"requested-chassis": "host-a"}
    assert row["external_ids"]["neutron:cidrs"] == f"{fixed['ip_address']}/24"
    assert row["external_ids"]["neutron:revision_number"] == str(bound["revision_number"])
    assert row["dhcpv4_options"] == dhcp(ovn_dbs, sub1["id"])["_uuid"]
    assert row["_uuid"] in ports_of(switch(ovn_dbs, net["id"]))


# -- 4. drift of ports and DHCP options ------------------------------------------------------

@pytest.fixture
def realized(ovn_api, ovn_dbs):
    """Two networks with a DHCP subnet each, two ports on the first, all realized."""
    net1, _ = create_vlan_network(ovn_api, name="d1", vlan=411)
    net2, _ = create_vlan_network(ovn_api, name="d2", vlan=412)
    sub1 = make_subnet(ovn_api, net1["id"], cidr="10.51.0.0/24")
    sub2 = make_subnet(ovn_api, net2["id"], cidr="10.52.0.0/24", dns_nameservers=["10.52.0.53"])
    port_a = make_port(ovn_api, net1["id"], name="a")
    port_b = make_port(ovn_api, net1["id"], name="b")
    settled(ovn_api)
    for p in (port_a, port_b):
        assert lsp(ovn_dbs, p["id"])["addresses"] == addresses_of(p), p["name"]
    return SimpleNamespace(net1=net1, net2=net2, sub1=sub1, sub2=sub2, a=port_a, b=port_b)


def test_port_and_dhcp_drift_is_reported_then_repaired(realized, db_url, ovn_dbs):
    net1, sub1, sub2 = realized.net1, realized.sub1, realized.sub2
    port_a, port_b = realized.a, realized.b
    dhcp1, dhcp2 = dhcp(ovn_dbs, sub1["id"]), dhcp(ovn_dbs, sub2["id"])
    stray_port, stray_subnet = str(uuid.uuid4()), str(uuid.uuid4())
    bogus = f"{port_b['mac_address']} {address_not_of(port_b, '10.51.0.250', '10.51.0.251')}"

    ovn_dbs.nbctl("lsp-del", port_a["id"])
    ovn_dbs.nbctl("lsp-set-addresses", port_b["id"], bogus)
    ovn_dbs.nbctl("lsp-add", f"neutron-{net1['id']}", stray_port, "--",
                  "set", "Logical_Switch_Port", stray_port,
                  f"external_ids:segmentd\\:owner={OWNER}")
    stray_lsp = lsp(ovn_dbs, stray_port)
    ovn_dbs.nbctl("destroy", "DHCP_Options", dhcp1["_uuid"])
    ovn_dbs.nbctl("set", "DHCP_Options", dhcp2["_uuid"], "options:lease_time=600",
                  "options:ntp_server=10.0.0.123")
    ovn_dbs.nbctl("create", "DHCP_Options", "cidr=10.59.0.0/24",
                  f'external_ids={{subnet_id="{stray_subnet}", "segmentd:owner"="{OWNER}"}}')
    stray_dhcp = dhcp(ovn_dbs, stray_subnet)

    code, rep = sync(db_url, ovn_dbs, "log")
    assert code == 2
    assert problems(rep) == {
        ("port", "missing", port_a["id"]),
        ("port", "different", port_b["id"]),
        ("port", "extra", stray_port),
        ("dhcp_options", "missing", sub1["id"]),
        ("dhcp_options", "different", sub2["id"]),
        ("dhcp_options", "extra", stray_subnet),
    }
    details = {(i["kind"], i["name"]): i["details"] for i in rep["items"]}
    assert details[("port", port_b["id"])] == {
        "addresses": {"database": [addresses_of(port_b)], "northbound": [bogus]}}
    assert details[("dhcp_options", sub2["id"])] == {
        "options:lease_time": {"database": "43200", "northbound": "600"},
        "options:ntp_server": {"database": None, "northbound": "10.0.0.123"},
    }
    assert (rep["repaired"], rep["subnets_checked"], rep["ports_checked"]) == (0, 2, 2)
    # Log mode changed nothing.
    assert lsp(ovn_dbs, port_a["id"]) is None
    assert lsp(ovn_dbs, port_b["id"])["addresses"] == bogus
    assert lsp(ovn_dbs, stray_port) == stray_lsp
    assert dhcp(ovn_dbs, sub1["id"]) is None
    assert dhcp(ovn_dbs, sub2["id"])["options"]["lease_time"] == "600"
    assert dhcp(ovn_dbs, stray_subnet) == stray_dhcp

    code, rep = sync(db_url, ovn_dbs, "repair")
    assert (code, rep["repaired"]) == (0, 6)
    new1 = dhcp(ovn_dbs, sub1["id"])
    assert new1["options"] == dhcp1["options"]
    assert new1["external_ids"] == dhcp1["external_ids"]
    assert dhcp(ovn_dbs, sub2["id"])["options"] == dhcp2["options"]
    assert dhcp(ovn_dbs, stray_subnet) is None
    assert lsp(ovn_dbs, stray_port) is None
    ls = switch(ovn_dbs, net1["id"])
    for p in (port_a, port_b):
        row = lsp(ovn_dbs, p["id"])
        assert row["addresses"] == row["port_security"] == addresses_of(p)
        assert row["external_ids"]["neutron:port_name"] == p["name"]
        assert row["external_ids"]["segmentd:owner"] == OWNER
        assert row["dhcpv4_options"] == new1["_uuid"]
        assert row["_uuid"] in ports_of(ls)

    code, rep = sync(db_url, ovn_dbs, "log")
    assert (code, rep["in_sync"], rep["items"]) == (0, True, [])


def test_repaired_dhcp_options_are_the_ones_their_ports_use(realized, db_url, ovn_dbs):
    """Only the DHCP_Options row is lost (its ports' rows are otherwise right): after the
    repair the ports offer DHCP again, from the recreated row."""
    sub1, port_a, port_b = realized.sub1, realized.a, realized.b
    old1 = dhcp(ovn_dbs, sub1["id"])
    ovn_dbs.nbctl("destroy", "DHCP_Options", old1["_uuid"])
    code, rep = sync(db_url, ovn_dbs, "repair")
    assert code == 0
    assert problems(rep) == {("dhcp_options", "missing", sub1["id"])}
    new1 = dhcp(ovn_dbs, sub1["id"])
    assert (new1["cidr"], new1["options"], new1["external_ids"]) == (
        old1["cidr"], old1["options"], old1["external_ids"])
    assert new1["_uuid"] != old1["_uuid"]
    for p in (port_a, port_b):
        assert lsp(ovn_dbs, p["id"])["dhcpv4_options"] == new1["_uuid"], p["name"]
    code, rep = sync(db_url, ovn_dbs, "log")
    assert (code, rep["in_sync"]) == (0, True)


def test_rows_without_the_owner_marker_are_reported_foreign_and_never_touched(
        realized, ovn_api, db_url, ovn_dbs):
    net1, sub2, port_a = realized.net1, realized.sub2, realized.a
    theirs = f"{port_a['mac_address']} {address_not_of(port_a, '10.51.0.222', '10.51.0.223')}"
    ovn_dbs.nbctl("set", "Logical_Switch_Port", port_a["id"],
                  "external_ids:segmentd\\:owner=someone-else", f'addresses="{theirs}"')
    dhcp2 = dhcp(ovn_dbs, sub2["id"])
    ovn_dbs.nbctl("remove", "DHCP_Options", dhcp2["_uuid"], "external_ids", '"segmentd:owner"')
    ovn_dbs.nbctl("set", "DHCP_Options", dhcp2["_uuid"], "options:lease_time=60")
    # Another system's port with a UUID name no port has: not even reported.
    unknown = str(uuid.uuid4())
    ovn_dbs.nbctl("lsp-add", f"neutron-{net1['id']}", unknown)
    unknown_lsp = lsp(ovn_dbs, unknown)

    code, rep = sync(db_url, ovn_dbs, "log")
    assert code == 2
    assert problems(rep) == {("port", "foreign", port_a["id"]),
                             ("dhcp_options", "foreign", sub2["id"])}
    details = {i["kind"]: i["details"] for i in rep["items"]}
    assert details == {"port": {"owner": "someone-else"}, "dhcp_options": {"owner": None}}

    code, rep = sync(db_url, ovn_dbs, "repair")
    assert (code, rep["repaired"]) == (2, 0)
    # API changes to them are delivered, and leave them as they are too.
    update_port(ovn_api, port_a["id"], name="renamed")
    update_subnet(ovn_api, sub2["id"], dns_nameservers=["10.52.0.99"])
    settled(ovn_api)
    row = lsp(ovn_dbs, port_a["id"])
    assert row["addresses"] == theirs
    assert row["external_ids"]["segmentd:owner"] == "someone-else"
    assert row["external_ids"]["neutron:port_name"] == "a"
    row = dhcp(ovn_dbs, sub2["id"])
    assert row["options"]["lease_time"] == "60"
    assert row["options"]["dns_server"] == "{10.52.0.53}"
    assert "segmentd:owner" not in row["external_ids"]
    assert lsp(ovn_dbs, unknown) == unknown_lsp
