"""Ports on routed networks and their binding to hosts, as host reports change what a host
reaches; the peer-subnet host routes of routed networks; network IP availability. Through
the real app, on every database the `api` fixture gives (helpers: test_ports.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.api.test_ports import (
    MEMBER,
    OTHER,
    READER,
    ZERO_UUID,
    addresses,
    port_events,
    post_port,
    put_port,
    refused,
    row_counts,
    show_port,
    state,
)
from tests.factories import (
    SERVICE,
    bridges,
    make_network,
    make_port,
    make_segment,
    make_subnet,
    make_vlan_network,
    send_report,
    update_port,
)


@dataclass
class Routed:
    """A network with a VLAN segment on physnet1 (seg1) and one on physnet2 (seg2), a subnet
    on each; host-1 reaches physnet1, host-2 physnet2, host-0 only a physnet of neither."""

    net: str
    seg1: str
    seg2: str
    sub1: dict
    sub2: dict


def first_segment(api, network_id) -> str:
    return api.get(f"/v2.0/segments?network_id={network_id}").json()["segments"][0]["id"]


@pytest.fixture
def routed(api) -> Routed:
    net = make_vlan_network(api)["id"]
    seg1 = first_segment(api, net)
    seg2 = make_segment(api, net, network_type="vlan", physical_network="physnet2")["id"]
    sub1 = make_subnet(api, net, cidr="10.1.0.0/24", segment_id=seg1)
    sub2 = make_subnet(api, net, cidr="10.2.0.0/24", segment_id=seg2)
    send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
    send_report(api, "host-2", bridge_mappings=bridges("physnet2"))
    send_report(api, "host-0", bridge_mappings=bridges("small"))
    api.clear_events()
    return Routed(net, seg1, seg2, sub1, sub2)


def binding(port) -> tuple:
    return (port["binding:host_id"], port["binding:vif_type"], port["status"],
            port["ip_allocation"])


def subnet(api, subnet_id) -> dict:
    return api.get(f"/v2.0/subnets/{subnet_id}").json()["subnet"]


class TestRoutedCreate:
    def test_without_a_host_the_allocation_is_deferred(self, api, routed):
        port = make_port(api, routed.net)
        assert binding(port) == ("", "unbound", "DOWN", "deferred")
        assert (port["fixed_ips"], port["binding:vif_details"]) == ([], {})
        assert row_counts(api)["ip_allocations"] == 0
        assert [(e.type, e.resource) for e in port_events(api)] == [("port.created", port)]

    def test_a_host_gets_an_address_on_the_segment_it_reaches(self, api, routed):
        for host, sub in (("host-1", routed.sub1), ("host-2", routed.sub2)):
            port = make_port(api, routed.net, **{"binding:host_id": host})
            assert binding(port) == (host, "ovs", "ACTIVE", "immediate")
            assert port["binding:vif_details"]
            assert [f["subnet_id"] for f in port["fixed_ips"]] == [sub["id"]]
            assert show_port(api, port["id"]) == port
        assert [e.type for e in port_events(api)] == ["port.created"] * 2

    def test_a_host_reaching_no_segment_is_409(self, api, routed):
        before = state(api)
        for host in ("host-0", "never-reported"):
            refused(post_port(api, routed.net, **{"binding:host_id": host}), 409,
                    "HostNotConnectedToAnySegment", what=host)
        assert state(api) == before

    def test_fixed_ips_must_be_on_one_segment_the_host_reaches(self, api, routed):
        before = state(api)
        both = [[{"subnet_id": routed.sub1["id"]}, {"subnet_id": routed.sub2["id"]}],
                [{"ip_address": "10.1.0.9"}, {"ip_address": "10.2.0.9"}]]
        for fixed_ips in both:
            for host in ({}, {"binding:host_id": "host-1"}):
                refused(post_port(api, routed.net, fixed_ips=fixed_ips, **host), 400,
                        "FixedIpsSubnetsNotOnSameSegment", what=(fixed_ips, host))
        for fixed_ips in ([{"subnet_id": routed.sub2["id"]}], [{"ip_address": "10.2.0.9"}]):
            # Neutron's answer on create: the subnet is not one the port can use.
            refused(post_port(api, routed.net, fixed_ips=fixed_ips, **{"binding:host_id": "host-1"}),
                    400, "InvalidInput", what=fixed_ips)
        assert state(api) == before
        port = make_port(api, routed.net, fixed_ips=[{"ip_address": "10.2.0.9"}],
                         **{"binding:host_id": "host-2"})
        assert binding(port) == ("host-2", "ovs", "ACTIVE", "immediate")
        port = make_port(api, routed.net, fixed_ips=[{"subnet_id": routed.sub1["id"]}])
        assert binding(port) == ("", "unbound", "DOWN", "immediate")
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [routed.sub1["id"]]


class TestRoutedUpdate:
    def test_binding_a_deferred_port_gives_its_address(self, api, routed):
        port = make_port(api, routed.net)
        api.clear_events()
        before = state(api)
        refused(put_port(api, port["id"], **{"binding:host_id": "host-0"}), 409,
                "HostNotConnectedToAnySegment")
        assert state(api) == before
        got = update_port(api, port["id"], **{"binding:host_id": "host-2"})
        # ip_allocation tells how the port was created: it stays "deferred", as in Neutron.
        assert binding(got) == ("host-2", "ovs", "ACTIVE", "deferred")
        assert [f["subnet_id"] for f in got["fixed_ips"]] == [routed.sub2["id"]]
        assert got["revision_number"] == 1 and got["binding:vif_details"]
        assert [(e.type, e.resource) for e in port_events(api)] == [("port.updated", got)]
        assert show_port(api, port["id"]) == got

    def test_moving_to_a_host_that_does_not_reach_its_addresses_is_409(self, api, routed):
        port = make_port(api, routed.net, **{"binding:host_id": "host-1"})
        before = state(api)
        for host in ("host-2", "host-0"):
            refused(put_port(api, port["id"], **{"binding:host_id": host}), 409,
                    "HostNotCompatibleWithFixedIps", what=host)
        assert state(api) == before
        send_report(api, "host-3", bridge_mappings=bridges("physnet1", "physnet2"))
        got = update_port(api, port["id"], **{"binding:host_id": "host-3"})
        assert binding(got) == ("host-3", "ovs", "ACTIVE", "immediate")
        assert got["fixed_ips"] == port["fixed_ips"]

    def test_new_fixed_ips_must_fit_one_segment_and_the_host(self, api, routed):
        port = make_port(api, routed.net, **{"binding:host_id": "host-1"})
        before = state(api)
        held = port["fixed_ips"][0]
        refused(put_port(api, port["id"], fixed_ips=[{"subnet_id": routed.sub2["id"]}]), 409,
                "HostNotCompatibleWithFixedIps")
        refused(put_port(api, port["id"], fixed_ips=[held, {"subnet_id": routed.sub2["id"]}]), 400,
                "FixedIpsSubnetsNotOnSameSegment")
        assert state(api) == before
        # An address of sub1 besides the one the port drew at random (naming that one twice
        # would be a 400).
        new = next(a for a in ("10.1.0.77", "10.1.0.78") if a != held["ip_address"])
        got = update_port(api, port["id"], fixed_ips=[held, {"ip_address": new}])
        assert addresses(got) == sorted([held["ip_address"], new],
                                        key=lambda a: int(a.rsplit(".", 1)[1]))
        assert binding(got) == ("host-1", "ovs", "ACTIVE", "immediate")

    def test_admin_state_down_takes_a_bound_port_down(self, api, routed):
        port = make_port(api, routed.net, **{"binding:host_id": "host-1"})
        got = update_port(api, port["id"], admin_state_up=False)
        assert (got["status"], got["binding:vif_type"], got["admin_state_up"]) == (
            "DOWN", "ovs", False)
        got = update_port(api, port["id"], admin_state_up=True)
        assert (got["status"], got["revision_number"]) == ("ACTIVE", 2)


class TestHostReach:
    def test_losing_the_segment_fails_the_binding_and_regaining_it_restores_it(self, api, routed):
        port = make_port(api, routed.net, **{"binding:host_id": "host-1"})
        other = make_port(api, routed.net, **{"binding:host_id": "host-2"})
        api.clear_events()
        # reaches seg2 now, but its address is on seg1
        send_report(api, "host-1", bridge_mappings=bridges("physnet2"))
        got = show_port(api, port["id"])
        assert (got["binding:vif_type"], got["status"], got["binding:vif_details"],
                got["revision_number"]) == ("binding_failed", "DOWN", {}, 1)
        assert (got["fixed_ips"], got["binding:host_id"]) == (port["fixed_ips"], "host-1")
        assert [(e.type, e.resource_id, e.resource) for e in port_events(api)] == [
            ("port.updated", port["id"], got)]
        assert show_port(api, other["id"]) == other
        api.clear_events()
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        got = show_port(api, port["id"])
        assert (got["binding:vif_type"], got["status"], got["revision_number"]) == ("ovs", "ACTIVE", 2)
        assert got["binding:vif_details"]
        assert [(e.type, e.resource) for e in port_events(api)] == [("port.updated", got)]

    def test_a_port_on_a_network_without_subnets_follows_its_host_too(self, api):
        net = make_vlan_network(api)
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        port = make_port(api, net["id"], **{"binding:host_id": "host-1"})
        assert binding(port) == ("host-1", "ovs", "ACTIVE", "immediate")
        send_report(api, "host-1", bridge_mappings=bridges("physnet2"))
        assert binding(show_port(api, port["id"])) == ("host-1", "binding_failed", "DOWN", "immediate")
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        assert binding(show_port(api, port["id"])) == ("host-1", "ovs", "ACTIVE", "immediate")
        assert [e.type for e in port_events(api)] == ["port.created"] + ["port.updated"] * 2


class TestInUse:
    def test_a_segment_with_a_bound_port_is_409_segment_in_use(self, api):
        net = make_vlan_network(api)
        seg2 = make_segment(api, net["id"], network_type="vlan", physical_network="physnet2")["id"]
        send_report(api, "host-2", bridge_mappings=bridges("physnet2"))
        port = make_port(api, net["id"], **{"binding:host_id": "host-2"})
        assert port["binding:vif_type"] == "ovs"
        before = state(api)
        refused(api.delete(f"/v2.0/segments/{seg2}"), 409, "SegmentInUse")
        assert state(api) == before
        assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
        assert api.delete(f"/v2.0/segments/{seg2}").status_code == 204

    def test_a_routed_subnet_or_network_with_ports_is_409(self, api, routed):
        port = make_port(api, routed.net, **{"binding:host_id": "host-1"})
        before = state(api)
        refused(api.delete(f"/v2.0/subnets/{routed.sub1['id']}"), 409, "SubnetInUse")
        refused(api.delete(f"/v2.0/networks/{routed.net}"), 409, "NetworkInUse")
        assert state(api) == before
        assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
        dhcp = make_port(api, routed.net, device_owner="network:dhcp", **{"binding:host_id": "host-1"})
        assert dhcp["binding:vif_type"] == "ovs" and dhcp["fixed_ips"]
        api.clear_events()
        assert api.delete(f"/v2.0/networks/{routed.net}").status_code == 204
        assert [e.resource_id for e in port_events(api)] == [dhcp["id"]]
        assert row_counts(api) == {"ports": 0, "ip_allocations": 0, "subnets": 0, "networks": 0,
                                   "segments": 0}


class TestPeerRoutes:
    def test_each_subnet_routes_to_the_other_segments_subnets(self, api, routed):
        assert subnet(api, routed.sub1["id"])["host_routes"] == [
            {"destination": "10.2.0.0/24", "nexthop": "10.1.0.1"}]
        assert subnet(api, routed.sub2["id"])["host_routes"] == [
            {"destination": "10.1.0.0/24", "nexthop": "10.2.0.1"}]
        # A subnet without a gateway routes nowhere, but the others route to it.
        no_gw = make_subnet(api, routed.net, cidr="10.3.0.0/24", segment_id=routed.seg2,
                            gateway_ip=None)
        assert no_gw["host_routes"] == []
        assert subnet(api, routed.sub1["id"])["host_routes"] == [
            {"destination": "10.2.0.0/24", "nexthop": "10.1.0.1"},
            {"destination": "10.3.0.0/24", "nexthop": "10.1.0.1"}]
        # Same-segment subnets and other IP versions are no peers.
        assert subnet(api, routed.sub2["id"])["host_routes"] == [
            {"destination": "10.1.0.0/24", "nexthop": "10.2.0.1"}]
        v6 = make_subnet(api, routed.net, cidr="2001:db8:1::/64", segment_id=routed.seg1)
        assert v6["host_routes"] == []
        assert len(subnet(api, routed.sub2["id"])["host_routes"]) == 1
        v6b = make_subnet(api, routed.net, cidr="2001:db8:2::/64", segment_id=routed.seg2)
        assert v6b["host_routes"] == [{"destination": "2001:db8:1::/64", "nexthop": "2001:db8:2::1"}]
        assert subnet(api, v6["id"])["host_routes"] == [
            {"destination": "2001:db8:2::/64", "nexthop": "2001:db8:1::1"}]

    def test_user_routes_come_first_and_a_covering_one_replaces_the_peer_route(self, api):
        net = make_vlan_network(api)["id"]
        seg1 = first_segment(api, net)
        seg2 = make_segment(api, net, network_type="vlan", physical_network="physnet2")["id"]
        user = {"destination": "192.168.0.0/24", "nexthop": "10.1.0.254"}
        covering = {"destination": "10.0.0.0/8", "nexthop": "10.2.0.254"}
        a = make_subnet(api, net, cidr="10.1.0.0/24", segment_id=seg1, host_routes=[user])
        b = make_subnet(api, net, cidr="10.2.0.0/24", segment_id=seg2, host_routes=[covering])
        assert b["host_routes"] == [covering]
        assert subnet(api, a["id"])["host_routes"] == [
            user, {"destination": "10.2.0.0/24", "nexthop": "10.1.0.1"}]
        # The same through updates: a covering route replaces, the gateway is the nexthop.
        wide = {"destination": "10.2.0.0/16", "nexthop": "10.1.0.254"}
        resp = api.put(f"/v2.0/subnets/{a['id']}", json={"subnet": {"host_routes": [wide]}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["subnet"]["host_routes"] == [wide]
        resp = api.put(f"/v2.0/subnets/{a['id']}", json={"subnet": {
            "host_routes": [], "gateway_ip": "10.1.0.254",
            "allocation_pools": [{"start": "10.1.0.2", "end": "10.1.0.200"}]}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["subnet"]["host_routes"] == [
            {"destination": "10.2.0.0/24", "nexthop": "10.1.0.254"}]
        assert subnet(api, a["id"]) == resp.json()["subnet"]

    def test_siblings_are_updated_with_an_event_on_create_and_delete(self, api):
        net = make_vlan_network(api)["id"]
        seg1 = first_segment(api, net)
        seg2 = make_segment(api, net, network_type="vlan", physical_network="physnet2")["id"]
        a = make_subnet(api, net, cidr="10.1.0.0/24", segment_id=seg1)
        assert a["host_routes"] == []
        api.clear_events()
        b = make_subnet(api, net, cidr="10.2.0.0/24", segment_id=seg2)
        shown = subnet(api, a["id"])
        assert shown["host_routes"] == [{"destination": "10.2.0.0/24", "nexthop": "10.1.0.1"}]
        events = [(e.type, e.resource_id) for e in api.events if e.type.startswith("subnet.")]
        assert sorted(events) == sorted([("subnet.created", b["id"]), ("subnet.updated", a["id"])])
        assert [e.resource for e in api.events if e.type == "subnet.updated"] == [shown]
        api.clear_events()
        assert api.delete(f"/v2.0/subnets/{b['id']}").status_code == 204
        shown = subnet(api, a["id"])
        assert shown["host_routes"] == []
        assert [(e.type, e.resource_id) for e in api.events if e.type.startswith("subnet.")] in (
            [("subnet.deleted", b["id"]), ("subnet.updated", a["id"])],
            [("subnet.updated", a["id"]), ("subnet.deleted", b["id"])])
        assert [e.resource for e in api.events if e.type == "subnet.updated"] == [shown]


class TestIpAvailability:
    def test_used_and_total_per_network_and_subnet(self, api):
        net = make_network(api, name="n1")
        s24 = make_subnet(api, net["id"], cidr="10.0.0.0/24", name="a")
        s8 = make_subnet(api, net["id"], cidr="11.0.0.0/8", name="b")
        make_port(api, net["id"], fixed_ips=[{"subnet_id": s24["id"]}, {"subnet_id": s8["id"]}])
        make_port(api, net["id"], fixed_ips=[{"subnet_id": s24["id"]}])
        empty = make_network(api, name="n2")
        resp = api.get(f"/v2.0/network-ip-availabilities/{net['id']}")
        assert resp.status_code == 200, resp.text
        shown = resp.json()["network_ip_availability"]
        shown["subnet_ip_availability"].sort(key=lambda s: s["cidr"])
        assert shown == {
            "network_id": net["id"], "network_name": "n1", "project_id": "dev", "tenant_id": "dev",
            "used_ips": 3, "total_ips": 253 + 16777213,
            "subnet_ip_availability": [
                {"subnet_id": s24["id"], "subnet_name": "a", "cidr": "10.0.0.0/24",
                 "ip_version": 4, "used_ips": 2, "total_ips": 253},
                {"subnet_id": s8["id"], "subnet_name": "b", "cidr": "11.0.0.0/8",
                 "ip_version": 4, "used_ips": 1, "total_ips": 16777213},
            ],
        }
        listed = api.get("/v2.0/network-ip-availabilities").json()["network_ip_availabilities"]
        for item in listed:
            item["subnet_ip_availability"].sort(key=lambda s: s["cidr"])
        assert {n["network_id"]: n for n in listed} == {
            net["id"]: shown,
            empty["id"]: {"network_id": empty["id"], "network_name": "n2", "project_id": "dev",
                          "tenant_id": "dev", "used_ips": 0, "total_ips": 0,
                          "subnet_ip_availability": []},
        }

    def test_ipv6_totals_are_exact(self, api):
        net = make_network(api)
        make_subnet(api, net["id"], cidr="2001:db8:1::/64")
        shown = api.get(f"/v2.0/network-ip-availabilities/{net['id']}").json()[
            "network_ip_availability"]
        assert shown["total_ips"] == 2**64 - 2 > 2**63
        make_subnet(api, net["id"], cidr="2001:db8:2::/64")
        resp = api.get(f"/v2.0/network-ip-availabilities/{net['id']}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["network_ip_availability"]["total_ips"] == 2 * (2**64 - 2)
        assert f'"total_ips":{2 * (2**64 - 2)}' in resp.text.replace(" ", "")
        listed = api.get("/v2.0/network-ip-availabilities").json()["network_ip_availabilities"]
        assert [n["total_ips"] for n in listed] == [2 * (2**64 - 2)]

    def test_filters(self, api):
        a = make_network(api, name="a")
        b = make_network(api, name="b", project_id="p7")
        make_subnet(api, a["id"], cidr="10.0.0.0/24")
        v6 = make_subnet(api, a["id"], cidr="2001:db8::/64")
        make_subnet(api, b["id"], cidr="10.0.0.0/24")

        def ids(query):
            resp = api.get(f"/v2.0/network-ip-availabilities?{query}")
            assert resp.status_code == 200, resp.text
            return sorted(n["network_id"] for n in resp.json()["network_ip_availabilities"])

        assert ids(f"network_id={a['id']}") == [a["id"]]
        assert ids("network_name=b") == [b["id"]]
        assert ids("project_id=p7") == [b["id"]]
        assert ids("ip_version=4") == sorted([a["id"], b["id"]])
        assert ids("ip_version=6") == [a["id"]]
        only_v6 = api.get("/v2.0/network-ip-availabilities?ip_version=6").json()[
            "network_ip_availabilities"][0]
        assert [s["subnet_id"] for s in only_v6["subnet_ip_availability"]] == [v6["id"]]
        assert only_v6["total_ips"] == 2**64 - 2
        for query in ("bogus=1", "ip_version=5"):
            refused(api.get(f"/v2.0/network-ip-availabilities?{query}"), 400, what=query)

    def test_admin_only(self, api):
        net = make_network(api, headers=MEMBER)
        for headers in (MEMBER, READER, SERVICE, OTHER):
            refused(api.get("/v2.0/network-ip-availabilities", headers=headers), 403,
                    "PolicyNotAuthorized", what=headers)
            refused(api.get(f"/v2.0/network-ip-availabilities/{net['id']}", headers=headers), 403,
                    "PolicyNotAuthorized", what=headers)
        refused(api.get(f"/v2.0/network-ip-availabilities/{ZERO_UUID}"), 404, "NetworkNotFound")
