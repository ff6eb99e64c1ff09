"""What a review of the port code found, each now a rule: who may choose addresses and
service device owners, scoped IPv6 text, null fixed_ips, addresses kept on update, peer
routes sent back by clients, unsharing a network in use, a hidden host in errors, and
hidden attributes as sort keys. Helpers: test_ports.py and test_port_binding.py."""

from __future__ import annotations

from tests.api.test_port_binding import first_segment, routed  # noqa: F401 (fixture)
from tests.api.test_ports import (
    MEMBER,
    OTHER,
    addresses,
    port_events,
    post_port,
    put_port,
    refused,
    show_port,
    state,
)
from tests.factories import (
    make_network,
    make_port,
    make_segment,
    make_subnet,
    make_vlan_network,
    update_port,
)

SHARED_OWNER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}


def shared_network(api) -> dict:
    net = make_network(api, name="shared", shared=True, project_id="p1")
    make_subnet(api, net["id"], cidr="10.30.0.0/24")
    return net


def unheld(*held: str) -> str:
    """An address of shared_network's subnet that none of `held` is (ports get random ones)."""
    return next(a for a in (f"10.30.0.{i}" for i in range(50, 60)) if a not in held)


def test_another_projects_member_on_a_shared_network_chooses_no_address(api):
    net = shared_network(api)
    port = make_port(api, net["id"], headers=OTHER)
    chosen = unheld(*addresses(port))
    before = state(api)
    refused(post_port(api, net["id"], headers=OTHER, fixed_ips=[{"ip_address": chosen}]),
            403, "PolicyNotAuthorized")
    refused(put_port(api, port["id"], headers=OTHER, fixed_ips=[{"ip_address": chosen}]),
            403, "PolicyNotAuthorized")
    assert state(api) == before
    # Naming the address it holds, or asking for any address of a subnet, is allowed.
    same = update_port(api, port["id"], headers=OTHER,
                       fixed_ips=[{"ip_address": addresses(port)[0]}])
    assert addresses(same) == addresses(port)
    subnet_id = port["fixed_ips"][0]["subnet_id"]
    again = update_port(api, port["id"], headers=OTHER,
                        fixed_ips=[{"ip_address": addresses(port)[0]}, {"subnet_id": subnet_id}])
    assert len(addresses(again)) == 2
    # The network's owner may choose.
    free = unheld(*addresses(again))
    mine = make_port(api, net["id"], headers=SHARED_OWNER, fixed_ips=[{"ip_address": free}])
    assert addresses(mine) == [free]


def test_service_device_owners_are_for_admins_and_the_network_owner(api):
    net = shared_network(api)
    before = state(api)
    refused(post_port(api, net["id"], headers=OTHER, device_owner="network:dhcp"), 403,
            "PolicyNotAuthorized")
    port = make_port(api, net["id"], headers=OTHER, device_owner="compute:nova")
    refused(put_port(api, port["id"], headers=OTHER, device_owner="network:distributed"), 403,
            "PolicyNotAuthorized")
    assert show_port(api, port["id"])["device_owner"] == "compute:nova"
    assert len(state(api)[0]) == len(before[0]) + 1
    dhcp = make_port(api, net["id"], headers=SHARED_OWNER, device_owner="network:dhcp")
    assert dhcp["device_owner"] == "network:dhcp"


def test_the_service_role_creates_ports(api):
    net = make_network(api, name="for-nova", project_id="p1")
    port = make_port(api, net["id"], headers={"X-Project-Id": "svc", "X-Roles": "service"},
                     project_id="p1", **{"binding:host_id": "compute-1"})
    assert port["project_id"] == "p1" and port["binding:host_id"] == "compute-1"


def test_scoped_ipv6_text_is_refused(api):
    net = make_network(api, name="v6")
    make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_address_mode="dhcpv6-stateful",
                ipv6_ra_mode="dhcpv6-stateful")
    before = state(api)
    for text in ("2001:db8::1%eth0", "2001:db8::5%1"):
        refused(post_port(api, net["id"], fixed_ips=[{"ip_address": text}]), 400, "InvalidInput",
                what=text)
    resp = api.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "2001:db9::/64", "ip_version": 6,
        "gateway_ip": "2001:db9::1%x"}})
    refused(resp, 400, "InvalidInput")
    assert state(api) == before


def test_null_fixed_ips_is_a_400_on_create_and_update(api):
    net = make_network(api, name="n")
    make_subnet(api, net["id"], cidr="10.31.0.0/24")
    port = make_port(api, net["id"])
    before = state(api)
    refused(post_port(api, net["id"], fixed_ips=None), 400, "InvalidInput")
    refused(put_port(api, port["id"], fixed_ips=None), 400, "InvalidInput")
    assert state(api) == before


def test_slaac_addresses_stay_when_fixed_ips_change(api):
    net = make_network(api, name="dual")
    v4 = make_subnet(api, net["id"], cidr="10.32.0.0/24")
    v6 = make_subnet(api, net["id"], cidr="2001:db8:32::/64", ipv6_address_mode="slaac",
                     ipv6_ra_mode="slaac")
    port = make_port(api, net["id"])
    eui = [f for f in port["fixed_ips"] if f["subnet_id"] == v6["id"]]
    assert len(eui) == 1
    # A change: not the IPv4 address the port drew at random (naming that one keeps it).
    held = [f["ip_address"] for f in port["fixed_ips"] if f["subnet_id"] == v4["id"]]
    chosen = next(a for a in ("10.32.0.77", "10.32.0.78") if a not in held)
    got = update_port(api, port["id"], fixed_ips=[{"subnet_id": v4["id"], "ip_address": chosen}])
    assert got["fixed_ips"] == [{"subnet_id": v4["id"], "ip_address": chosen}, *eui]


def test_peer_routes_sent_back_by_a_client_stay_peer_routes(api, routed):  # noqa: F811
    sub1 = api.get(f"/v2.0/subnets/{routed.sub1['id']}").json()["subnet"]
    peer = {"destination": "10.2.0.0/24", "nexthop": "10.1.0.1"}
    assert sub1["host_routes"] == [peer]
    mine = {"destination": "192.168.0.0/16", "nexthop": "10.1.0.254"}
    # What `openstack subnet set --host-route` sends: the routes it read, plus the new one.
    resp = api.put(f"/v2.0/subnets/{sub1['id']}",
                   json={"subnet": {"host_routes": [*sub1["host_routes"], mine]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["subnet"]["host_routes"] == [mine, peer]
    assert api.delete(f"/v2.0/subnets/{routed.sub2['id']}").status_code == 204
    after = api.get(f"/v2.0/subnets/{sub1['id']}").json()["subnet"]
    assert after["host_routes"] == [mine]  # the peer went with its subnet


def test_a_network_with_other_projects_ports_cannot_be_unshared(api):
    net = shared_network(api)
    port = make_port(api, net["id"], headers=OTHER)
    api.clear_events()
    resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}})
    refused(resp, 409, "InvalidSharedSetting")
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["shared"] is True
    assert api.events == []
    assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}})
    assert resp.status_code == 200, resp.text


def test_an_error_does_not_name_a_host_the_caller_may_not_read(api, routed):  # noqa: F811
    # The routed fixture's hosts (host-1 reaches physnet1, host-2 physnet2), on a routed
    # network of project p1, so that its member may change the port's addresses.
    net = make_vlan_network(api, project_id="p1")["id"]
    seg1 = first_segment(api, net)
    seg2 = make_segment(api, net, network_type="vlan", physical_network="physnet2")["id"]
    make_subnet(api, net, cidr="10.41.0.0/24", segment_id=seg1)
    sub2 = make_subnet(api, net, cidr="10.42.0.0/24", segment_id=seg2)
    port = make_port(api, net, project_id="p1", **{"binding:host_id": "host-1"})
    before = state(api)
    err = refused(put_port(api, port["id"], headers=MEMBER, fixed_ips=[{"subnet_id": sub2["id"]}]),
                  409, "HostNotCompatibleWithFixedIps")
    assert "host-1" not in err["message"]
    err = refused(put_port(api, port["id"], fixed_ips=[{"subnet_id": sub2["id"]}]),
                  409, "HostNotCompatibleWithFixedIps")
    assert "host-1" in err["message"]  # the admin may read it
    assert state(api) == before


def test_hidden_attributes_are_no_sort_keys(api):
    net = make_network(api, name="s", project_id="p1")
    make_port(api, net["id"], project_id="p1")
    for key in ("binding:host_id", "binding:vif_type"):
        refused(api.get(f"/v2.0/ports?sort_key={key}&sort_dir=asc", headers=MEMBER), 400,
                "HTTPBadRequest", what=key)
        assert api.get(f"/v2.0/ports?sort_key={key}&sort_dir=asc").status_code == 200


def test_deleting_a_port_twice_publishes_one_event(api):
    net = make_network(api, name="d")
    port = make_port(api, net["id"])
    api.clear_events()
    assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    refused(api.delete(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
    assert [e.type for e in port_events(api)] == ["port.deleted"]
