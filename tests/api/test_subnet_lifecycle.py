"""What a subnet does to things around it, as Neutron: the `shared` filter it takes from its
network, its network's revision, and the ports of an auto-address subnet being deleted."""

from __future__ import annotations

import pytest

from tests.api.test_ports import (
    OTHER,
    port_events,
    refused,
    row_counts,
    show_port,
    state,
)
from tests.api.test_subnets import post_subnet, put
from tests.factories import make_network, make_port, make_subnet


def subnet_ids(api, query, headers=None) -> list[str]:
    resp = api.get(f"/v2.0/subnets?{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return [s["id"] for s in resp.json()["subnets"]]


def network(api, network_id) -> dict:
    resp = api.get(f"/v2.0/networks/{network_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["network"]


class TestSharedFilter:
    def test_shared_selects_subnets_by_their_network(self, api):
        private = make_network(api)
        public = make_network(api, shared=True)
        mine = make_subnet(api, private["id"], name="a")
        theirs = make_subnet(api, public["id"], cidr="10.1.0.0/24", name="b")
        assert subnet_ids(api, "shared=False") == [mine["id"]]
        assert subnet_ids(api, "shared=false") == [mine["id"]]
        assert subnet_ids(api, "shared=True") == [theirs["id"]]
        assert subnet_ids(api, "shared=True&shared=False&sort_key=name&sort_dir=asc") == [
            mine["id"], theirs["id"]]
        # What tempest's subnet sorting and paging tests send first.
        assert subnet_ids(api, "shared=False&sort_key=name&sort_dir=asc&limit=1") == [mine["id"]]
        # Another project sees the shared network's subnet only.
        assert subnet_ids(api, "shared=True", OTHER) == [theirs["id"]]
        assert subnet_ids(api, "shared=False", OTHER) == []
        # Filterable, not shown, not a sort key (neutron-lib's attribute map).
        assert "shared" not in api.get(f"/v2.0/subnets/{mine['id']}").json()["subnet"]
        for query in ("sort_key=shared&sort_dir=asc", "shared=maybe", "shared="):
            refused(api.get(f"/v2.0/subnets?{query}"), 400, "HTTPBadRequest", what=query)

    def test_the_filter_follows_the_network_being_shared(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        assert subnet_ids(api, "shared=True") == []
        assert api.put(f"/v2.0/networks/{net['id']}",
                       json={"network": {"shared": True}}).status_code == 200
        assert subnet_ids(api, "shared=True") == [sub["id"]]


class TestNetworkRevision:
    def test_subnet_create_update_and_delete_each_revise_the_network(self, api):
        net = make_network(api)
        start = net["revision_number"]
        api.clear_events()
        sub = make_subnet(api, net["id"])
        after_create = network(api, net["id"])
        assert (after_create["revision_number"], after_create["subnets"]) == (
            start + 1, [sub["id"]])
        assert [(e.type, e.resource_id) for e in api.events] == [
            ("subnet.created", sub["id"]), ("network.updated", net["id"])]
        assert api.events[-1].resource["revision_number"] == start + 1
        assert api.events[-1].resource["subnets"] == [sub["id"]]

        api.clear_events()
        assert put(api, sub["id"], name="renamed").status_code == 200
        assert network(api, net["id"])["revision_number"] == start + 2
        assert [e.type for e in api.events] == ["subnet.updated", "network.updated"]

        api.clear_events()
        assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204
        after_delete = network(api, net["id"])
        assert (after_delete["revision_number"], after_delete["subnets"]) == (start + 3, [])
        assert [(e.type, e.resource_id) for e in api.events] == [
            ("subnet.deleted", sub["id"]), ("network.updated", net["id"])]
        assert after_delete["updated_at"] >= after_create["updated_at"]

    def test_a_refused_subnet_leaves_the_network_as_it_was(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        before = network(api, net["id"])
        api.clear_events()
        refused(post_subnet(api, net["id"], cidr="10.0.0.128/25"), 400, "InvalidInput")
        assert network(api, net["id"]) == before
        assert api.events == []


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
class TestDeleteAutoAddressSubnet:
    def test_the_addresses_leave_their_ports_and_the_subnet_goes(self, api, mode):
        net = make_network(api)
        v4 = make_subnet(api, net["id"])
        v6 = make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_ra_mode=mode,
                         ipv6_address_mode=mode)
        ports = sorted((make_port(api, net["id"]) for _ in range(2)), key=lambda p: p["id"])
        assert all(len(p["fixed_ips"]) == 2 for p in ports)
        bare = make_port(api, net["id"], fixed_ips=[])
        api.clear_events()
        assert api.delete(f"/v2.0/subnets/{v6['id']}").status_code == 204
        refused(api.get(f"/v2.0/subnets/{v6['id']}"), 404, "SubnetNotFound")
        now = [show_port(api, p["id"]) for p in ports]
        for before, after in zip(ports, now, strict=True):
            assert after["fixed_ips"] == [f for f in before["fixed_ips"]
                                          if f["subnet_id"] == v4["id"]]
            assert after["revision_number"] == before["revision_number"] + 1
        assert show_port(api, bare["id"]) == bare
        assert [(e.type, e.resource_id) for e in api.events] == [
            ("port.updated", ports[0]["id"]), ("port.updated", ports[1]["id"]),
            ("subnet.deleted", v6["id"]), ("network.updated", net["id"])]
        assert [e.resource for e in port_events(api)] == now
        assert row_counts(api)["ip_allocations"] == 2
        assert network(api, net["id"])["subnets"] == [v4["id"]]
        assert make_port(api, net["id"])["fixed_ips"][0]["subnet_id"] == v4["id"]

    def test_a_router_interface_keeps_it_in_use(self, api, mode):
        net = make_network(api)
        v6 = make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_ra_mode=mode,
                         ipv6_address_mode=mode)
        make_port(api, net["id"])
        router = make_port(api, net["id"], device_owner="network:router_interface")
        before = state(api)
        err = refused(api.delete(f"/v2.0/subnets/{v6['id']}"), 409, "SubnetInUse")
        assert router["id"] in err["message"]
        assert state(api) == before


def test_a_stateful_subnet_with_addresses_is_still_in_use(api):
    net = make_network(api)
    sub = make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_ra_mode="dhcpv6-stateful",
                      ipv6_address_mode="dhcpv6-stateful")
    make_port(api, net["id"])
    before = state(api)
    refused(api.delete(f"/v2.0/subnets/{sub['id']}"), 409, "SubnetInUse")
    assert state(api) == before
