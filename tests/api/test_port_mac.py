"""Changing a port's MAC address (PUT mac_address), as Neutron allows an admin or a service."""

from __future__ import annotations

import ipaddress

from tests.api import test_ports as tp
from tests.factories import (
    SERVICE,
    bridges,
    make_network,
    make_port,
    make_subnet,
    make_vlan_network,
    send_report,
    update_port,
)


def eui64(cidr: str, mac: str) -> str:
    """The modified EUI-64 address (RFC 4291), written out here rather than imported."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    interface = bytes(octets[:3] + [0xFF, 0xFE] + octets[3:])
    net = ipaddress.ip_network(cidr)
    return str(ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(interface, "big")))


class TestUpdateMac:
    def test_admin_changes_the_mac_of_an_unbound_port(self, api):
        net = make_network(api)
        port = make_port(api, net["id"])
        api.clear_events()
        got = update_port(api, port["id"], mac_address="12:34:56:78:BE:6D")
        assert got["mac_address"] == "12:34:56:78:be:6d"
        assert got["revision_number"] == port["revision_number"] + 1
        assert {k: v for k, v in got.items() if k not in ("mac_address", "revision_number",
                                                            "updated_at")} == {
            k: v for k, v in port.items() if k not in ("mac_address", "revision_number",
                                                         "updated_at")}
        assert tp.show_port(api, port["id"]) == got
        assert [(e.type, e.resource) for e in tp.port_events(api)] == [("port.updated", got)]
        # The port's own MAC again (any spelling) is no conflict; nothing else asked for it.
        again = update_port(api, port["id"], mac_address="12-34-56-78-be-6d", description="d")
        assert (again["mac_address"], again["description"]) == ("12:34:56:78:be:6d", "d")
        # The old MAC is free on the network again.
        assert make_port(api, net["id"], mac_address=port["mac_address"])["mac_address"] == (
            port["mac_address"])

    def test_a_service_may_change_it_too_and_a_failed_binding_does_not_stop_it(self, api):
        net = make_vlan_network(api)
        port = make_port(api, net["id"], **{"binding:host_id": "host-9"})  # reaches nothing
        assert port["binding:vif_type"] == "binding_failed"
        got = update_port(api, port["id"], headers=SERVICE, mac_address="fa:16:3e:aa:bb:cc")
        assert got["mac_address"] == "fa:16:3e:aa:bb:cc"

    def test_eui64_addresses_follow_the_new_mac(self, api):
        net = make_network(api)
        v4 = make_subnet(api, net["id"])
        slaac = make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_ra_mode="slaac",
                            ipv6_address_mode="slaac")
        port = make_port(api, net["id"], mac_address="fa:16:3e:00:00:01")
        old = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
        assert old[slaac["id"]] == eui64(slaac["cidr"], "fa:16:3e:00:00:01")
        got = update_port(api, port["id"], mac_address="fa:16:3e:00:00:02")
        assert {f["subnet_id"]: f["ip_address"] for f in got["fixed_ips"]} == {
            v4["id"]: old[v4["id"]], slaac["id"]: eui64(slaac["cidr"], "fa:16:3e:00:00:02")}
        assert tp.row_counts(api)["ip_allocations"] == 2
        # The old EUI-64 address is free: a port given the old MAC derives it again.
        again = make_port(api, net["id"], mac_address="fa:16:3e:00:00:01")
        assert eui64(slaac["cidr"], "fa:16:3e:00:00:01") in [
            f["ip_address"] for f in again["fixed_ips"]]

    def test_refused_changes_are_4xx_and_change_nothing(self, api):
        net = make_vlan_network(api)
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        port = make_port(api, net["id"])
        other = make_port(api, net["id"])
        bound = make_port(api, net["id"], **{"binding:host_id": "host-1"})
        assert bound["binding:vif_type"] == "ovs"
        dhcp = make_port(api, net["id"], device_owner="network:dhcp")
        before = tp.state(api)
        for mac in ("zz:bb:cc:dd:ee:ff", "01:00:5e:00:00:01", "00:00:00:00:00:00", ""):
            tp.refused(tp.put_port(api, port["id"], mac_address=mac), 400, what=mac)
        tp.refused(tp.put_port(api, port["id"], mac_address=None), 400, "HTTPBadRequest")
        for mac in (other["mac_address"], other["mac_address"].upper()):
            resp = tp.put_port(api, port["id"], mac_address=mac)
            err = tp.refused(resp, 409, "MacAddressInUse")
            assert err["message"] == (f"Unable to complete operation for network {net['id']}. "
                                      f"The mac address {other['mac_address']} is in use.")
        err = tp.refused(tp.put_port(api, bound["id"], mac_address="fa:16:3e:12:34:56"), 409,
                      "PortBound")
        assert err["message"] == (
            f"Unable to complete operation on port {bound['id']}, port is already bound, "
            f"port type: ovs, old_mac {bound['mac_address']}, new_mac fa:16:3e:12:34:56.")
        err = tp.refused(tp.put_port(api, dhcp["id"], mac_address="fa:16:3e:12:34:56"), 409,
                      "UnsupportedPortDeviceOwner")
        assert err["message"] == ("Operation mac address update is not supported for "
                                  f"device_owner network:dhcp on port {dhcp['id']}.")
        tp.refused(tp.put_port(api, port["id"], mac_address="fa:16:3e:12:34:56",
                               device_owner="network:dhcp"), 409, "UnsupportedPortDeviceOwner")
        assert tp.state(api) == before

    def test_only_admin_or_service_may_change_it(self, api):
        net = make_network(api, headers=tp.MEMBER)
        port = make_port(api, net["id"], headers=tp.MEMBER)
        before = tp.state(api)
        resp = tp.put_port(api, port["id"], headers=tp.MEMBER, mac_address="fa:16:3e:12:34:56")
        tp.refused(resp, 403, "PolicyNotAuthorized")
        assert tp.state(api) == before
        # Its own MAC is no change, but the rule is on the attribute, as in Neutron.
        resp = tp.put_port(api, port["id"], headers=tp.MEMBER, mac_address=port["mac_address"])
        tp.refused(resp, 403, "PolicyNotAuthorized")
