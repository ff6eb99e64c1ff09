"""/v2.0/subnets through the real app, on every database the `api` fixture gives."""

from __future__ import annotations

import pytest

from tests.factories import error_of, make_network, make_segment, make_subnet, walk

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}
READER = {"X-Project-Id": "p1", "X-Roles": "reader"}
OTHER = {"X-Project-Id": "p2", "X-Roles": "member,reader"}
SUBNET_KEYS = {
    "id", "name", "description", "network_id", "segment_id", "cidr", "ip_version",
    "gateway_ip", "allocation_pools", "enable_dhcp", "dns_nameservers", "host_routes",
    "ipv6_ra_mode", "ipv6_address_mode", "project_id", "tenant_id", "subnetpool_id",
    "service_types", "created_at", "updated_at", "revision_number",
}
DROP = object()  # an attribute left out of the request body


def pool(start, end):
    return {"start": start, "end": end}


def post_subnet(api, network_id, /, *, headers=None, **attrs):
    attrs.setdefault("cidr", "10.0.0.0/24")
    attrs.setdefault("ip_version", 6 if ":" in str(attrs["cidr"]) else 4)
    body = {"network_id": network_id, **attrs}
    body = {k: v for k, v in body.items() if v is not DROP}
    return api.post("/v2.0/subnets", json={"subnet": body}, headers=headers)


def show(api, subnet_id, headers=None):
    return api.get(f"/v2.0/subnets/{subnet_id}", headers=headers)


def put(api, subnet_id, headers=None, **attrs):
    return api.put(f"/v2.0/subnets/{subnet_id}", json={"subnet": attrs}, headers=headers)


def all_subnets(api) -> list[dict]:
    """Every subnet, as the admin sees it (fewer than a page in these tests)."""
    resp = api.get("/v2.0/subnets?sort_key=id&sort_dir=asc")
    assert resp.status_code == 200, resp.text
    return resp.json()["subnets"]


def subnet_events(api):
    return [e for e in api.events if e.type.startswith("subnet.")]


def state(api):
    """What "a rejected request changed nothing" compares."""
    return all_subnets(api), api.counts(), len(subnet_events(api))


def segment_ids(api, network_id) -> list[str]:
    segs = api.get(f"/v2.0/segments?network_id={network_id}").json()["segments"]
    return [s["id"] for s in segs]


def network_view(api, network_id) -> dict:
    return api.get(f"/v2.0/networks/{network_id}").json()["network"]


def refused(resp, status, type_=None):
    assert resp.status_code == status, resp.text
    err = error_of(resp)
    if type_ is not None:
        assert err["type"] == type_, err


class TestCreateSubnet:
    def test_ipv4_defaults(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        assert set(sub) == SUBNET_KEYS
        assert {k: v for k, v in sub.items()
                if k not in ("id", "created_at", "updated_at")} == {
            "name": "", "description": "", "network_id": net["id"], "segment_id": None,
            "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
            "allocation_pools": [pool("10.0.0.2", "10.0.0.254")], "enable_dhcp": True,
            "dns_nameservers": [], "host_routes": [], "ipv6_ra_mode": None,
            "ipv6_address_mode": None, "project_id": "dev", "tenant_id": "dev",
            "subnetpool_id": None, "service_types": [], "revision_number": 0,
        }
        assert sub["created_at"].endswith("Z") and len(sub["created_at"]) == 20
        events = subnet_events(api)
        assert [e.type for e in events] == ["subnet.created"]
        assert (events[0].resource_id, events[0].resource) == (sub["id"], sub)

    def test_ipv6_defaults_and_normalised_cidr(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"], cidr="2001:DB8:0::/64", ip_version=6)
        assert set(sub) == SUBNET_KEYS
        assert (sub["cidr"], sub["ip_version"], sub["gateway_ip"]) == (
            "2001:db8::/64", 6, "2001:db8::1")
        assert sub["allocation_pools"] == [pool("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]
        assert (sub["ipv6_ra_mode"], sub["ipv6_address_mode"]) == (None, None)

    @pytest.mark.parametrize(
        ("gateway", "pools"),
        [
            (None, [pool("10.0.0.1", "10.0.0.254")]),
            ("10.0.0.100", [pool("10.0.0.1", "10.0.0.99"), pool("10.0.0.101", "10.0.0.254")]),
            ("10.0.0.254", [pool("10.0.0.1", "10.0.0.253")]),
        ],
    )
    @pytest.mark.sqlite_only
    def test_default_pools_leave_out_the_gateway(self, api, gateway, pools):
        sub = make_subnet(api, make_network(api)["id"], gateway_ip=gateway)
        assert (sub["gateway_ip"], sub["allocation_pools"]) == (gateway, pools)

    def test_prefix_bounds_are_accepted(self, api):
        net = make_network(api)
        expect = {
            ("10.0.0.0/8", 4): ("10.0.0.1", [pool("10.0.0.2", "10.255.255.254")]),
            ("192.168.0.0/30", 4): ("192.168.0.1", [pool("192.168.0.2", "192.168.0.2")]),
            ("2001:db8::/32", 6): ("2001:db8::1",
                                   [pool("2001:db8::2", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")]),
            ("2001:db9::/126", 6): ("2001:db9::1", [pool("2001:db9::2", "2001:db9::3")]),
        }
        for (cidr, version), (gateway, pools) in expect.items():
            sub = make_subnet(api, net["id"], cidr=cidr, ip_version=version)
            assert (sub["cidr"], sub["gateway_ip"], sub["allocation_pools"]) == (cidr, gateway, pools)

    def test_given_attributes_are_kept(self, api):
        net = make_network(api)
        attrs = {
            "name": "s1", "description": "d", "gateway_ip": "10.0.0.254", "enable_dhcp": False,
            "allocation_pools": [pool("10.0.0.10", "10.0.0.19"), pool("10.0.0.30", "10.0.0.39")],
            "dns_nameservers": ["8.8.8.8", "1.1.1.1"],
            "host_routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.254"}],
        }
        sub = make_subnet(api, net["id"], **attrs)
        assert {k: sub[k] for k in attrs} == attrs
        assert show(api, sub["id"]).json()["subnet"] == sub

    @pytest.mark.parametrize(
        ("cidr", "ra", "address"),
        [("2001:db8::/64", "slaac", "slaac"), ("2001:db8::/64", None, "dhcpv6-stateless"),
         ("2001:db8::/64", "dhcpv6-stateless", None), ("2001:db8::/80", None, "dhcpv6-stateful")],
    )
    @pytest.mark.sqlite_only
    def test_ipv6_modes(self, api, cidr, ra, address):
        sub = make_subnet(api, make_network(api)["id"], cidr=cidr, ipv6_ra_mode=ra,
                          ipv6_address_mode=address)
        assert (sub["ipv6_ra_mode"], sub["ipv6_address_mode"]) == (ra, address)

    def test_same_cidr_on_another_network_is_allowed(self, api):
        make_subnet(api, make_network(api)["id"])
        make_subnet(api, make_network(api)["id"])
        assert len(all_subnets(api)) == 2

    def test_overlapping_cidr_on_the_same_network_is_400(self, api):
        net = make_network(api)
        make_subnet(api, net["id"], cidr="10.0.0.0/24")
        before = state(api)
        refused(post_subnet(api, net["id"], cidr="10.0.0.128/25"), 400, "InvalidInput")
        refused(post_subnet(api, net["id"], cidr="10.0.0.0/16"), 400, "InvalidInput")
        assert state(api) == before
        make_subnet(api, net["id"], cidr="2001:db8::/64")
        before = state(api)
        refused(post_subnet(api, net["id"], cidr="2001:db8::/80"), 400, "InvalidInput")
        assert state(api) == before

    def test_unknown_network_is_404(self, api):
        before = state(api)
        resp = post_subnet(api, ZERO_UUID)
        refused(resp, 404, "NetworkNotFound")
        assert error_of(resp)["message"] == f"Network {ZERO_UUID} could not be found."
        assert state(api) == before

    @pytest.mark.parametrize(
        ("attrs", "type_"),
        [
            pytest.param({"cidr": DROP}, None, id="missing-cidr"),
            pytest.param({"ip_version": DROP}, None, id="missing-ip_version"),
            pytest.param({"network_id": DROP}, None, id="missing-network_id"),
            pytest.param({"network_id": "not-a-uuid"}, None, id="bad-network_id"),
            pytest.param({"ip_version": 5}, None, id="ip_version-5"),
            pytest.param({"cidr": "not-a-cidr"}, None, id="bad-cidr"),
            pytest.param({"cidr": "10.0.0.5/24"}, None, id="host-bits"),
            pytest.param({"cidr": "10.0.0.0/7"}, None, id="v4-prefix-7"),
            pytest.param({"cidr": "10.0.0.0/31"}, None, id="v4-prefix-31"),
            pytest.param({"cidr": "10.0.0.0/32"}, None, id="v4-prefix-32"),
            pytest.param({"cidr": "2001:db8::/31", "ip_version": 6}, None, id="v6-prefix-31"),
            pytest.param({"cidr": "2001:db8::/127", "ip_version": 6}, None, id="v6-prefix-127"),
            pytest.param({"cidr": "2001:db8::/64", "ip_version": 4}, None, id="v6-cidr-as-v4"),
            pytest.param({"cidr": "10.0.0.0/24", "ip_version": 6}, None, id="v4-cidr-as-v6"),
            pytest.param({"bogus": 1}, None, id="unknown-attribute"),
            pytest.param({"id": ZERO_UUID}, None, id="id"),
            pytest.param({"name": "x" * 256}, None, id="long-name"),
            pytest.param({"enable_dhcp": "yes"}, None, id="enable_dhcp-string"),
            pytest.param({"gateway_ip": "not-an-ip"}, None, id="gateway-not-an-ip"),
            pytest.param({"gateway_ip": "10.0.1.1"}, "InvalidInput", id="gateway-outside"),
            pytest.param({"gateway_ip": "10.0.0.0"}, "InvalidInput", id="gateway-network-address"),
            pytest.param({"gateway_ip": "10.0.0.255"}, "InvalidInput", id="gateway-broadcast"),
            pytest.param({"allocation_pools": [pool("10.0.1.2", "10.0.1.9")]},
                         "OutOfBoundsAllocationPool", id="pool-outside"),
            pytest.param({"allocation_pools": [pool("10.0.0.20", "10.0.0.10")]},
                         "InvalidAllocationPool", id="pool-start-after-end"),
            pytest.param({"allocation_pools": [pool("2001:db8::2", "2001:db8::9")]},
                         "InvalidAllocationPool", id="pool-wrong-version"),
            pytest.param({"allocation_pools": [pool("10.0.0.10", "10.0.0.20"),
                                               pool("10.0.0.15", "10.0.0.30")]},
                         "OverlappingAllocationPools", id="pools-overlap"),
            pytest.param({"gateway_ip": "10.0.0.1", "allocation_pools": [pool("10.0.0.1", "10.0.0.50")]},
                         "GatewayConflictWithAllocationPools", id="pool-holds-gateway"),
            pytest.param({"allocation_pools": [pool(f"10.0.0.{i}", f"10.0.0.{i}") for i in range(2, 67)]},
                         None, id="65-pools"),
            pytest.param({"allocation_pools": [{"start": "10.0.0.2"}]}, None, id="pool-without-end"),
            pytest.param({"allocation_pools": [pool("x", "y")]}, None, id="pool-not-ips"),
            pytest.param({"dns_nameservers": [f"10.1.1.{i}" for i in range(6)]},
                         "DNSNameServersExhausted", id="6-nameservers"),
            pytest.param({"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, None, id="dup-nameservers"),
            pytest.param({"dns_nameservers": ["not-an-ip"]}, None, id="bad-nameserver"),
            pytest.param({"host_routes": [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.9"}
                                          for i in range(21)]},
                         "HostRoutesExhausted", id="21-routes"),
            pytest.param({"host_routes": [{"destination": "bogus", "nexthop": "10.0.0.9"}]},
                         None, id="route-bad-destination"),
            pytest.param({"host_routes": [{"destination": "192.168.0.0/24", "nexthop": "bogus"}]},
                         None, id="route-bad-nexthop"),
            pytest.param({"host_routes": [{"destination": "192.168.0.0/24"}]},
                         None, id="route-without-nexthop"),
            pytest.param({"ipv6_ra_mode": "slaac"}, None, id="ra-mode-on-v4"),
            pytest.param({"ipv6_address_mode": "slaac"}, None, id="address-mode-on-v4"),
            pytest.param({"cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac",
                          "ipv6_address_mode": "dhcpv6-stateful"}, None, id="modes-differ"),
            pytest.param({"cidr": "2001:db8::/64", "ipv6_address_mode": "bogus"}, None,
                         id="mode-unknown"),
            pytest.param({"cidr": "2001:db8::/80", "ipv6_address_mode": "slaac"}, None,
                         id="slaac-on-80"),
            pytest.param({"cidr": "2001:db8::/80", "ipv6_address_mode": "dhcpv6-stateless"}, None,
                         id="stateless-on-80"),
        ],
    )
    @pytest.mark.sqlite_only
    def test_invalid_create_is_400_and_changes_nothing(self, api, attrs, type_):
        net = make_network(api)
        before = state(api)
        refused(post_subnet(api, net["id"], **attrs), 400, type_)
        assert state(api) == before

    @pytest.mark.parametrize(
        "raw", [b"{", b"[]", b'{"subnet": []}', b'{"subnets": {}}', b'{"subnet": {}, "x": 1}', b""],
    )
    @pytest.mark.sqlite_only
    def test_malformed_body_is_400(self, api, raw):
        resp = api.post("/v2.0/subnets", content=raw, headers={"Content-Type": "application/json"})
        refused(resp, 400)
        assert all_subnets(api) == []


class TestReadSubnets:
    def test_show_and_fields(self, api):
        sub = make_subnet(api, make_network(api)["id"], name="n")
        assert show(api, sub["id"]).json() == {"subnet": sub}
        resp = api.get(f"/v2.0/subnets/{sub['id']}", params=[("fields", "name"), ("fields", "cidr")])
        assert resp.json() == {"subnet": {"name": "n", "cidr": "10.0.0.0/24"}}

    def test_missing_subnet_is_404(self, api):
        resp = show(api, ZERO_UUID)
        refused(resp, 404, "SubnetNotFound")
        assert error_of(resp)["message"] == f"Subnet {ZERO_UUID} could not be found."

    def test_filters(self, api):
        a, b = make_network(api)["id"], make_network(api)["id"]
        s1 = make_subnet(api, a, name="s1")
        s2 = make_subnet(api, a, name="s2", cidr="10.0.1.0/24", enable_dhcp=False)
        s3 = make_subnet(api, a, name="s3", cidr="2001:db8::/64")
        s4 = make_subnet(api, b, name="s4")

        def names(query):
            resp = api.get(f"/v2.0/subnets?{query}")
            assert resp.status_code == 200, resp.text
            return sorted(s["name"] for s in resp.json()["subnets"])

        assert names(f"network_id={a}") == ["s1", "s2", "s3"]
        assert names("cidr=10.0.0.0/24") == ["s1", "s4"]
        assert names("ip_version=6") == ["s3"]
        assert names("name=s2") == ["s2"]
        assert names("name=s1&name=s4") == ["s1", "s4"]
        assert names("enable_dhcp=false") == ["s2"]
        assert names(f"network_id={b}&cidr=10.0.1.0/24") == []
        assert {s1["id"], s2["id"], s3["id"], s4["id"]} == {s["id"] for s in all_subnets(api)}

    def test_sort_fields_and_paging(self, api):
        net = make_network(api)["id"]
        for i in (3, 1, 4, 0, 2):
            make_subnet(api, net, name=f"s{i}", cidr=f"10.0.{i}.0/24")
        url = "/v2.0/subnets?sort_key=name&sort_dir=desc&fields=name"
        assert api.get(url).json() == {"subnets": [{"name": f"s{i}"} for i in (4, 3, 2, 1, 0)]}
        items, pages = walk(api, "/v2.0/subnets?limit=2&sort_key=name&sort_dir=asc", "subnets")
        assert ([s["name"] for s in items], pages) == (["s0", "s1", "s2", "s3", "s4"], 3)
        first = api.get("/v2.0/subnets?limit=2&sort_key=name&sort_dir=asc").json()
        assert [link["rel"] for link in first["subnets_links"]] == ["next", "previous"]

    @pytest.mark.parametrize("query", ["bogus=1", "fields=bogus", "sort_key=bogus&sort_dir=asc",
                                       "ip_version=abc"])
    @pytest.mark.sqlite_only
    def test_bad_list_parameters_are_400(self, api, query):
        make_subnet(api, make_network(api)["id"])
        refused(api.get(f"/v2.0/subnets?{query}"), 400)


class TestUpdateSubnet:
    def test_rename_bumps_revision_and_emits_event(self, api):
        sub = make_subnet(api, make_network(api)["id"], name="a")
        resp = put(api, sub["id"], name="b", description="new")
        assert resp.status_code == 200, resp.text
        got = resp.json()["subnet"]
        assert (got["name"], got["description"], got["revision_number"]) == ("b", "new", 1)
        assert {k: v for k, v in got.items() if k not in ("name", "description", "revision_number",
                                                          "updated_at")} == {
            k: v for k, v in sub.items() if k not in ("name", "description", "revision_number",
                                                      "updated_at")}
        event = subnet_events(api)[-1]
        assert (event.type, event.resource) == ("subnet.updated", got)
        assert show(api, sub["id"]).json()["subnet"] == got

    def test_gateway_pools_dns_routes_and_dhcp_change(self, api):
        sub = make_subnet(api, make_network(api)["id"])
        attrs = {
            "gateway_ip": "10.0.0.254", "allocation_pools": [pool("10.0.0.1", "10.0.0.253")],
            "dns_nameservers": ["9.9.9.9"], "enable_dhcp": False,
            "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.9"}],
        }
        resp = put(api, sub["id"], **attrs)
        assert resp.status_code == 200, resp.text
        assert {k: resp.json()["subnet"][k] for k in attrs} == attrs
        resp = put(api, sub["id"], gateway_ip=None)
        assert resp.status_code == 200, resp.text
        got = resp.json()["subnet"]
        assert (got["gateway_ip"], got["allocation_pools"]) == (None, attrs["allocation_pools"])

    @pytest.mark.parametrize(
        ("attrs", "type_"),
        [
            pytest.param({"cidr": "10.0.0.0/24"}, None, id="cidr"),
            pytest.param({"ip_version": 4}, None, id="ip_version"),
            pytest.param({"network_id": ZERO_UUID}, None, id="network_id"),
            pytest.param({"id": ZERO_UUID}, None, id="id"),
            pytest.param({"project_id": "other"}, None, id="project_id"),
            pytest.param({"bogus": 1}, None, id="unknown"),
            pytest.param({"enable_dhcp": "yes"}, None, id="enable_dhcp-string"),
            pytest.param({"gateway_ip": "10.0.1.1"}, "InvalidInput", id="gateway-outside"),
            pytest.param({"gateway_ip": "10.0.0.0"}, "InvalidInput", id="gateway-network-address"),
            pytest.param({"gateway_ip": "10.0.0.255"}, "InvalidInput", id="gateway-broadcast"),
            pytest.param({"allocation_pools": [pool(f"10.0.0.{i}", f"10.0.0.{i}") for i in range(2, 67)]},
                         None, id="65-pools"),
            pytest.param({"gateway_ip": "10.0.0.50"}, "GatewayConflictWithAllocationPools",
                         id="gateway-into-pool"),
            pytest.param({"allocation_pools": [pool("10.0.0.1", "10.0.0.20")]},
                         "GatewayConflictWithAllocationPools", id="pool-holds-gateway"),
            pytest.param({"allocation_pools": [pool("10.0.1.2", "10.0.1.9")]},
                         "OutOfBoundsAllocationPool", id="pool-outside"),
            pytest.param({"dns_nameservers": [f"10.1.1.{i}" for i in range(6)]},
                         "DNSNameServersExhausted", id="6-nameservers"),
            pytest.param({"host_routes": [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.9"}
                                          for i in range(21)]},
                         "HostRoutesExhausted", id="21-routes"),
        ],
    )
    @pytest.mark.sqlite_only
    def test_invalid_update_is_400_and_changes_nothing(self, api, attrs, type_):
        sub = make_subnet(api, make_network(api)["id"])
        before = state(api)
        resp = put(api, sub["id"], **attrs)
        refused(resp, 400, type_)
        if type_ is None and set(attrs) <= {"cidr", "ip_version", "network_id", "id", "project_id"}:
            assert next(iter(attrs)) in error_of(resp)["message"]
        assert state(api) == before

    def test_if_match(self, api):
        sub = make_subnet(api, make_network(api)["id"], name="keep")
        before = state(api)
        resp = api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"name": "x"}},
                       headers={"If-Match": "revision_number=7"})
        refused(resp, 412, "RevisionNumberConstraintFailed")
        assert state(api) == before
        resp = api.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"name": "x"}},
                       headers={"If-Match": "revision_number=0"})
        assert resp.status_code == 200, resp.text

    def test_missing_subnet_is_404(self, api):
        refused(put(api, ZERO_UUID, name="x"), 404, "SubnetNotFound")


class TestDeleteSubnet:
    def test_delete_emits_event_and_twice_is_404(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        api.clear_events()
        assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204
        events = subnet_events(api)
        assert [e.type for e in events] == ["subnet.deleted"]
        assert (events[0].resource_id, events[0].resource) == (sub["id"], sub)
        refused(show(api, sub["id"]), 404, "SubnetNotFound")
        refused(api.delete(f"/v2.0/subnets/{sub['id']}"), 404, "SubnetNotFound")
        assert network_view(api, net["id"])["subnets"] == []
        make_subnet(api, net["id"])  # the CIDR is free again

    def test_stale_if_match_is_412(self, api):
        sub = make_subnet(api, make_network(api)["id"])
        before = state(api)
        resp = api.delete(f"/v2.0/subnets/{sub['id']}", headers={"If-Match": "revision_number=3"})
        refused(resp, 412, "RevisionNumberConstraintFailed")
        assert state(api) == before
        resp = api.delete(f"/v2.0/subnets/{sub['id']}", headers={"If-Match": "revision_number=0"})
        assert resp.status_code == 204


class TestNetworkView:
    def test_subnets_and_l2_adjacency(self, api):
        net = make_network(api)
        assert (net["subnets"], net["l2_adjacency"]) == ([], True)
        a = make_subnet(api, net["id"])
        b = make_subnet(api, net["id"], cidr="10.0.1.0/24")
        shown = network_view(api, net["id"])
        assert sorted(shown["subnets"]) == sorted([a["id"], b["id"]])
        assert shown["l2_adjacency"] is True

    def test_network_delete_deletes_its_subnets(self, api):
        net = make_network(api)
        subs = [make_subnet(api, net["id"], cidr=f"10.0.{i}.0/24") for i in range(2)]
        keep = make_subnet(api, make_network(api)["id"])
        api.clear_events()
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        for sub in subs:
            refused(show(api, sub["id"]), 404, "SubnetNotFound")
        assert all_subnets(api) == [keep]
        deleted = [e for e in subnet_events(api) if e.type == "subnet.deleted"]
        assert sorted(e.resource_id for e in deleted) == sorted(s["id"] for s in subs)
        assert sorted(e.resource["id"] for e in deleted) == sorted(s["id"] for s in subs)
        assert "network.deleted" in [e.type for e in api.events]


class TestRoutedNetworks:
    def test_subnets_on_segments(self, api):
        net = make_network(api)
        seg_a = segment_ids(api, net["id"])[0]
        seg_b = make_segment(api, net["id"])["id"]
        a = make_subnet(api, net["id"], segment_id=seg_a)
        b = make_subnet(api, net["id"], segment_id=seg_b, cidr="10.0.1.0/24")
        assert (a["segment_id"], b["segment_id"]) == (seg_a, seg_b)
        got = api.get(f"/v2.0/subnets?segment_id={seg_b}").json()["subnets"]
        assert [s["id"] for s in got] == [b["id"]]
        assert network_view(api, net["id"])["l2_adjacency"] is False

    def test_unknown_segment_is_404(self, api):
        net = make_network(api)
        before = state(api)
        refused(post_subnet(api, net["id"], segment_id=ZERO_UUID), 404, "SegmentNotFound")
        assert state(api) == before

    def test_segment_of_another_network_is_400(self, api):
        net, other = make_network(api), make_network(api)
        before = state(api)
        resp = post_subnet(api, net["id"], segment_id=segment_ids(api, other["id"])[0])
        refused(resp, 400, "NetworkIdsDontMatch")
        assert state(api) == before

    @pytest.mark.parametrize("first_on_segment", [True, False])
    def test_all_subnets_on_segments_or_none(self, api, first_on_segment):
        net = make_network(api)
        seg = segment_ids(api, net["id"])[0]
        make_subnet(api, net["id"], **({"segment_id": seg} if first_on_segment else {}))
        before = state(api)
        resp = post_subnet(api, net["id"], cidr="10.0.1.0/24",
                           segment_id=DROP if first_on_segment else seg)
        refused(resp, 400, "SubnetsNotAllAssociatedWithSegments")
        assert state(api) == before

    def test_network_delete_with_subnets_on_segments(self, api):
        net = make_network(api)
        seg_b = make_segment(api, net["id"])["id"]
        make_subnet(api, net["id"], segment_id=segment_ids(api, net["id"])[0])
        make_subnet(api, net["id"], segment_id=seg_b, cidr="10.0.1.0/24")
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        assert (all_subnets(api), api.counts()) == ([], {"networks": 0, "segments": 0})

    def test_subnet_on_a_segment_cannot_leave_it(self, api):
        net = make_network(api)
        seg_b = make_segment(api, net["id"])["id"]
        sub = make_subnet(api, net["id"], segment_id=segment_ids(api, net["id"])[0])
        make_subnet(api, net["id"], segment_id=seg_b, cidr="10.0.1.0/24")
        before = state(api)
        refused(put(api, sub["id"], segment_id=None), 400, "SubnetSegmentAssociationChangeNotAllowed")
        assert state(api) == before

    def test_update_from_no_segment_to_the_only_segment(self, api):
        net = make_network(api)
        seg = segment_ids(api, net["id"])[0]
        sub = make_subnet(api, net["id"])
        resp = put(api, sub["id"], segment_id=seg)
        assert resp.status_code == 200, resp.text
        assert resp.json()["subnet"]["segment_id"] == seg
        assert subnet_events(api)[-1].type == "subnet.updated"
        assert network_view(api, net["id"])["l2_adjacency"] is False

    def test_moving_to_another_segment_is_400(self, api):
        net = make_network(api)
        seg_a = segment_ids(api, net["id"])[0]
        seg_b = make_segment(api, net["id"])["id"]
        sub = make_subnet(api, net["id"], segment_id=seg_a)
        before = state(api)
        refused(put(api, sub["id"], segment_id=seg_b), 400, "SubnetSegmentAssociationChangeNotAllowed")
        assert state(api) == before

    def test_update_when_network_has_several_segments_is_400(self, api):
        net = make_network(api)
        seg_b = make_segment(api, net["id"])["id"]
        sub = make_subnet(api, net["id"])
        before = state(api)
        refused(put(api, sub["id"], segment_id=seg_b), 400,
                "NoUpdateSubnetWhenMultipleSegmentsOnNetwork")
        assert state(api) == before

    def test_update_when_network_has_several_subnets_is_400(self, api):
        net = make_network(api)
        seg = segment_ids(api, net["id"])[0]
        sub = make_subnet(api, net["id"])
        make_subnet(api, net["id"], cidr="10.0.1.0/24")
        before = state(api)
        refused(put(api, sub["id"], segment_id=seg), 400, "SubnetsNotAllAssociatedWithSegments")
        assert state(api) == before

    def test_member_may_not_set_segment_id(self, api):
        net = make_network(api, headers=MEMBER)
        seg = segment_ids(api, net["id"])[0]
        before = state(api)
        refused(post_subnet(api, net["id"], headers=MEMBER, segment_id=seg), 403, "PolicyNotAuthorized")
        assert state(api) == before
        sub = make_subnet(api, net["id"], headers=MEMBER)
        before = state(api)
        refused(put(api, sub["id"], headers=MEMBER, segment_id=seg), 403, "PolicyNotAuthorized")
        assert state(api) == before

    def test_segment_with_a_subnet_cannot_be_deleted(self, api):
        net = make_network(api)
        seg_b = make_segment(api, net["id"])["id"]
        sub = make_subnet(api, net["id"], segment_id=seg_b)
        api.clear_events()
        before = state(api)
        refused(api.delete(f"/v2.0/segments/{seg_b}"), 409, "SegmentInUse")
        assert state(api) == before and api.events == []
        assert api.get(f"/v2.0/segments/{seg_b}").status_code == 200
        assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204
        assert api.delete(f"/v2.0/segments/{seg_b}").status_code == 204


class TestPolicy:
    def test_member_manages_subnets_of_its_own_network(self, api):
        net = make_network(api, headers=MEMBER)
        sub = make_subnet(api, net["id"], headers=MEMBER)
        assert (sub["project_id"], sub["tenant_id"]) == ("p1", "p1")
        resp = put(api, sub["id"], headers=MEMBER, name="renamed")
        assert resp.status_code == 200, resp.text
        assert api.delete(f"/v2.0/subnets/{sub['id']}", headers=MEMBER).status_code == 204
        assert all_subnets(api) == []

    def test_reader_sees_but_cannot_write(self, api):
        net = make_network(api, headers=MEMBER)
        sub = make_subnet(api, net["id"], headers=MEMBER)
        assert show(api, sub["id"], headers=READER).json() == {"subnet": sub}
        listed = api.get("/v2.0/subnets", headers=READER).json()["subnets"]
        assert [s["id"] for s in listed] == [sub["id"]]
        before = state(api)
        refused(post_subnet(api, net["id"], headers=READER, cidr="10.0.1.0/24"), 403)
        refused(put(api, sub["id"], headers=READER, name="x"), 403)
        refused(api.delete(f"/v2.0/subnets/{sub['id']}", headers=READER), 403)
        assert state(api) == before

    def test_another_projects_subnet_is_404(self, api):
        net = make_network(api, headers=MEMBER)
        sub = make_subnet(api, net["id"], headers=MEMBER)
        before = state(api)
        refused(show(api, sub["id"], headers=OTHER), 404, "SubnetNotFound")
        refused(put(api, sub["id"], headers=OTHER, name="x"), 404, "SubnetNotFound")
        refused(api.delete(f"/v2.0/subnets/{sub['id']}", headers=OTHER), 404, "SubnetNotFound")
        assert api.get("/v2.0/subnets", headers=OTHER).json() == {"subnets": []}
        refused(post_subnet(api, net["id"], headers=OTHER, cidr="10.0.1.0/24"), 404, "NetworkNotFound")
        assert state(api) == before

    def test_subnet_of_a_shared_network_is_visible_but_not_writable(self, api):
        net = make_network(api, shared=True)
        sub = make_subnet(api, net["id"])
        assert show(api, sub["id"], headers=OTHER).json() == {"subnet": sub}
        listed = api.get("/v2.0/subnets", headers=OTHER).json()["subnets"]
        assert [s["id"] for s in listed] == [sub["id"]]
        before = state(api)
        refused(post_subnet(api, net["id"], headers=OTHER, cidr="10.0.1.0/24"), 403)
        refused(put(api, sub["id"], headers=OTHER, name="x"), 403)
        refused(api.delete(f"/v2.0/subnets/{sub['id']}", headers=OTHER), 403)
        assert state(api) == before
