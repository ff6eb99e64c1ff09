"""/v2.0/ports through the real app, on every database the `api` fixture gives.

Routed networks, binding, host reach, peer-subnet routes and network IP availability are in
test_port_binding.py, which shares the helpers below."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import text, update

from segmentd.db.models import subnets as subnets_table
from tests.api.test_subnets import all_subnets
from tests.factories import (
    SERVICE,
    bridges,
    error_of,
    make_network,
    make_port,
    make_subnet,
    make_vlan_network,
    send_report,
    update_port,
)

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}
READER = {"X-Project-Id": "p1", "X-Roles": "reader"}
OTHER = {"X-Project-Id": "p2", "X-Roles": "member,reader"}
NOT_YOUR_PROJECT = ("Only a caller allowed to act for other projects may give a project_id "
                    "(or tenant_id) other than its own")
BINDING_KEYS = {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"}
PORT_KEYS = {
    "id", "name", "description", "network_id", "project_id", "tenant_id", "mac_address",
    "admin_state_up", "status", "device_id", "device_owner", "fixed_ips", "ip_allocation",
    "binding:host_id", "binding:vnic_type", "binding:profile", "binding:vif_type",
    "binding:vif_details", "allowed_address_pairs", "extra_dhcp_opts", "security_groups",
    "port_security_enabled", "created_at", "updated_at", "revision_number",
}
VNIC_TYPES = (
    "normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
    "smart-nic", "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed",
)
GENERATED_MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
COUNTED = ("ports", "ip_allocations", "subnets", "networks", "segments")


# -- requests ------------------------------------------------------------------------------

def post_port(api, network_id, /, *, headers=None, **attrs):
    return api.post("/v2.0/ports", json={"port": {"network_id": network_id, **attrs}},
                    headers=headers)


def show_port(api, port_id, headers=None) -> dict:
    resp = api.get(f"/v2.0/ports/{port_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["port"]


def put_port(api, port_id, headers=None, **attrs):
    return api.put(f"/v2.0/ports/{port_id}", json={"port": attrs}, headers=headers)


# -- what the tests compare ----------------------------------------------------------------

def addresses(port) -> list[str]:
    return [f["ip_address"] for f in port["fixed_ips"]]


def all_ports(api) -> list[dict]:
    resp = api.get("/v2.0/ports?sort_key=id&sort_dir=asc")
    assert resp.status_code == 200, resp.text
    return resp.json()["ports"]


def row_counts(api) -> dict[str, int]:
    async def count(conn):
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar()
                for t in COUNTED}

    return api._run(count)


def port_events(api):
    return [e for e in api.events if e.type.startswith("port.")]


def state(api):
    """What "a rejected request changed nothing" compares: every port with its addresses,
    the subnets, the row counts, and the events published so far."""
    return all_ports(api), all_subnets(api), row_counts(api), len(api.events)


def refused(resp, status, type_=None, what=None):
    assert resp.status_code == status, (what, resp.text)
    err = error_of(resp)
    if type_ is not None:
        assert err["type"] == type_, (what, err)
    return err


def make_older(api, subnet_id) -> None:
    """Date a subnet back, so it is the network's first whatever the clock's resolution."""
    async def work(conn):
        await conn.execute(update(subnets_table).where(subnets_table.c.id == subnet_id)
                           .values(created_at=datetime(2020, 1, 1)))
        await conn.commit()

    api._run(work)


class TestCreatePort:
    def test_defaults_and_the_two_ways_to_have_no_address(self, api):
        net = make_network(api)
        port = make_port(api, net["id"])
        assert set(port) == PORT_KEYS
        assert GENERATED_MAC.match(port["mac_address"]), port["mac_address"]
        assert {k: v for k, v in port.items()
                if k not in ("id", "mac_address", "created_at", "updated_at")} == {
            "name": "", "description": "", "network_id": net["id"], "project_id": "dev",
            "tenant_id": "dev", "admin_state_up": True, "status": "DOWN", "device_id": "",
            "device_owner": "", "fixed_ips": [], "ip_allocation": "immediate",
            "binding:host_id": "", "binding:vnic_type": "normal", "binding:profile": {},
            "binding:vif_type": "unbound", "binding:vif_details": {},
            "allowed_address_pairs": [], "extra_dhcp_opts": [], "security_groups": [],
            "port_security_enabled": True, "revision_number": 0,
        }
        assert port["created_at"].endswith("Z") and port["created_at"] == port["updated_at"]
        assert show_port(api, port["id"]) == port
        events = port_events(api)
        assert [e.type for e in events] == ["port.created"]
        assert (events[0].resource_id, events[0].resource) == (port["id"], port)
        make_subnet(api, net["id"])
        port = make_port(api, net["id"], fixed_ips=[])
        assert (port["fixed_ips"], port["ip_allocation"]) == ([], "none")
        assert row_counts(api)["ip_allocations"] == 0

    def test_given_attributes_are_kept(self, api):
        net = make_network(api)
        attrs = {"name": "vm-1", "description": "d", "admin_state_up": False,
                 "device_id": "d" * 255, "device_owner": "compute:nova",
                 "binding:vnic_type": "direct", "binding:profile": {"pci_slot": "0000:03:00.1"}}
        port = make_port(api, net["id"], **attrs)
        assert {k: port[k] for k in attrs} == attrs
        assert port["status"] == "DOWN"
        assert show_port(api, port["id"]) == port
        for key in ("project_id", "tenant_id"):
            port = make_port(api, net["id"], **{key: "p9"})
            assert (port["project_id"], port["tenant_id"]) == ("p9", "p9")
        for vnic in VNIC_TYPES:
            assert make_port(api, net["id"], **{"binding:vnic_type": vnic})[
                "binding:vnic_type"] == vnic
        profile = {"k": "x" * 4088}  # 4096 bytes as JSON: the largest allowed
        assert len(json.dumps(profile, separators=(",", ":"))) == 4096
        assert make_port(api, net["id"], **{"binding:profile": profile})[
            "binding:profile"] == profile

    def test_invalid_create_is_400_or_404_and_changes_nothing(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        cases = [
            {"bogus": 1}, {"id": ZERO_UUID}, {"status": "ACTIVE"}, {"ip_allocation": "none"},
            {"binding:vif_type": "ovs"}, {"binding:vif_details": {}}, {"created_at": "x"},
            {"revision_number": 3}, {"network_id": "not-a-uuid"}, {"network_id": None},
            {"name": "x" * 256}, {"device_id": "x" * 256}, {"device_owner": "x" * 256},
            {"admin_state_up": "yes"}, {"binding:vnic_type": "bogus"},
            {"binding:profile": ["a"]}, {"binding:profile": {"k": "x" * 4089}},
            {"fixed_ips": {"subnet_id": ZERO_UUID}}, {"fixed_ips": [{"bogus": 1}]},
            {"fixed_ips": [{"subnet_id": "not-a-uuid"}]}, {"fixed_ips": [{}]},
            {"fixed_ips": [{"ip_address": "not-an-ip"}]}, {"mac_address": 5},
        ]
        before = state(api)
        for attrs in cases:
            refused(post_port(api, net["id"], **attrs), 400, what=attrs)
        resp = api.post("/v2.0/ports", json={"port": {"name": "no-network"}})
        refused(resp, 400)
        for raw in (b"{", b"[]", b'{"port": []}', b'{"ports": {}}', b""):
            resp = api.post("/v2.0/ports", content=raw, headers={"Content-Type": "application/json"})
            refused(resp, 400, what=raw)
        refused(post_port(api, ZERO_UUID), 404, "NetworkNotFound")
        assert state(api) == before


    def test_member_naming_another_project_is_400_before_any_policy(self, api):
        own = make_network(api, headers=MEMBER)
        shared = make_network(api, shared=True)
        before = state(api)
        for net in (own, shared):
            for key in ("project_id", "tenant_id"):
                resp = post_port(api, net["id"], headers=MEMBER, **{key: "p-unknown"})
                err = refused(resp, 400, "HTTPBadRequest", (net["name"], key))
                assert err["message"] == NOT_YOUR_PROJECT
        assert state(api) == before
        assert make_port(api, own["id"], headers=MEMBER, project_id="p1")["project_id"] == "p1"
        assert make_port(api, own["id"], project_id="p-unknown")["project_id"] == "p-unknown"


class TestMacAddress:
    def test_generated_macs_are_distinct_and_given_ones_normalised(self, api):
        net = make_network(api)
        macs = {make_port(api, net["id"])["mac_address"] for _ in range(6)}
        assert len(macs) == 6
        assert all(GENERATED_MAC.match(m) for m in macs), macs
        assert make_port(api, net["id"], mac_address="AA:BB:CC:0D:0E:F0")[
            "mac_address"] == "aa:bb:cc:0d:0e:f0"
        assert make_port(api, net["id"], mac_address="aa-bb-cc-0d-0e-f1")[
            "mac_address"] == "aa:bb:cc:0d:0e:f1"

    def test_invalid_or_multicast_mac_is_400_and_a_taken_one_409(self, api):
        net = make_network(api)
        before = state(api)
        for mac in ("zz:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee", "aabbccddeeff", "aa:bb:cc:dd:ee:ff:00",
                    "aa:bb-cc:dd:ee:ff", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff",
                    "00:00:00:00:00:00", ""):
            refused(post_port(api, net["id"], mac_address=mac), 400, what=mac)
        for mac in ("01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "zz:bb:cc:dd:ee:ff"):
            refused(post_port(api, net["id"], mac_address=mac), 400, "InvalidInput", what=mac)
        assert state(api) == before
        # A MAC is unique per network: taken, in any spelling, on the same network only.
        other = make_network(api)
        first = make_port(api, net["id"], mac_address="fa:16:3e:00:00:01")
        before = state(api)
        for mac in ("fa:16:3e:00:00:01", "FA:16:3E:00:00:01", "fa-16-3e-00-00-01"):
            refused(post_port(api, net["id"], mac_address=mac), 409, "MacAddressInUse", what=mac)
        assert state(api) == before
        assert make_port(api, other["id"], mac_address="fa:16:3e:00:00:01")["network_id"] == other["id"]
        assert api.delete(f"/v2.0/ports/{first['id']}").status_code == 204
        make_port(api, net["id"], mac_address="fa:16:3e:00:00:01")  # free again


class TestAutomaticAddresses:
    def test_a_30_gives_its_one_pool_address_then_is_exhausted(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"], cidr="10.0.0.0/30")
        port = make_port(api, net["id"])
        assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
        assert port["ip_allocation"] == "immediate"
        before = state(api)
        refused(post_port(api, net["id"]), 409, "IpAddressGenerationFailure")
        refused(post_port(api, net["id"], fixed_ips=[{"subnet_id": sub["id"]}]), 409,
                "IpAddressGenerationFailure")
        assert state(api) == before

    def test_addresses_come_from_the_pools_never_the_gateway(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"], cidr="10.0.0.0/28", gateway_ip="10.0.0.4",
                          allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.3"},
                                            {"start": "10.0.0.5", "end": "10.0.0.7"}])
        ports = [make_port(api, net["id"]) for _ in range(5)]
        assert all([f["subnet_id"] for f in p["fixed_ips"]] == [sub["id"]] for p in ports)
        assert sorted(a for p in ports for a in addresses(p)) == [
            "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.7"]
        refused(post_port(api, net["id"]), 409, "IpAddressGenerationFailure")

    def test_first_ipv4_subnet_with_room(self, api):
        net = make_network(api)
        small = make_subnet(api, net["id"], cidr="10.0.0.0/30")  # one address: 10.0.0.2
        big = make_subnet(api, net["id"], cidr="10.0.1.0/24")
        make_older(api, small["id"])
        first, second = make_port(api, net["id"]), make_port(api, net["id"])
        assert first["fixed_ips"] == [{"subnet_id": small["id"], "ip_address": "10.0.0.2"}]
        assert [f["subnet_id"] for f in second["fixed_ips"]] == [big["id"]]

    def test_slaac_and_stateless_subnets_give_the_eui64_address(self, api):
        net = make_network(api)
        v4 = make_subnet(api, net["id"], cidr="10.0.0.0/24")
        slaac = make_subnet(api, net["id"], cidr="2001:db8:1::/64", ipv6_ra_mode="slaac",
                            ipv6_address_mode="slaac")
        stateless = make_subnet(api, net["id"], cidr="2001:db8:2::/64",
                                ipv6_address_mode="dhcpv6-stateless")
        port = make_port(api, net["id"], mac_address="fa:16:3e:12:34:56")
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [v4["id"], slaac["id"], stateless["id"]]
        assert addresses(port)[1:] == ["2001:db8:1:0:f816:3eff:fe12:3456",
                                       "2001:db8:2:0:f816:3eff:fe12:3456"]
        other = make_port(api, net["id"], mac_address="02:00:00:00:00:01")
        assert addresses(other)[1:] == ["2001:db8:1::ff:fe00:1", "2001:db8:2::ff:fe00:1"]


class TestFixedIps:
    def test_by_subnet_by_address_or_both(self, api):
        net = make_network(api)
        s1 = make_subnet(api, net["id"], cidr="10.0.0.0/24",
                         allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.20"}])
        s2 = make_subnet(api, net["id"], cidr="10.0.1.0/24")
        port = make_port(api, net["id"], fixed_ips=[{"subnet_id": s1["id"]}])
        [(sid, ip)] = [(f["subnet_id"], f["ip_address"]) for f in port["fixed_ips"]]
        assert sid == s1["id"] and 10 <= int(ip.rsplit(".", 1)[1]) <= 20
        assert make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.1.50"}])[
            "fixed_ips"] == [{"subnet_id": s2["id"], "ip_address": "10.0.1.50"}]
        outside_pool = [{"subnet_id": s1["id"], "ip_address": "10.0.0.200"}]
        assert make_port(api, net["id"], fixed_ips=outside_pool)["fixed_ips"] == outside_pool
        port = make_port(api, net["id"], fixed_ips=[
            {"subnet_id": s2["id"], "ip_address": "10.0.1.7"}, {"ip_address": "10.0.0.254"},
            {"subnet_id": s2["id"]}])
        assert port["ip_allocation"] == "immediate"
        got = addresses(port)  # in address order; the third is any free one of s2
        assert got[0] == "10.0.0.254" and "10.0.1.7" in got[1:] and len(set(got)) == 3
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [s1["id"], s2["id"], s2["id"]]
        port = make_port(api, net["id"], fixed_ips=[{"subnet_id": s2["id"]}] * 5)  # the most
        assert len(set(addresses(port))) == 5
        assert row_counts(api)["ip_allocations"] == 11

    def test_refused_fixed_ips_change_nothing(self, api):
        net = make_network(api)
        s1 = make_subnet(api, net["id"], cidr="10.0.0.0/24")
        make_subnet(api, net["id"], cidr="10.0.1.0/24")
        slaac = make_subnet(api, net["id"], cidr="2001:db8::/64", ipv6_address_mode="slaac")
        foreign = make_subnet(api, make_network(api)["id"], cidr="10.0.0.0/24")
        make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
        s1_id = s1["id"]
        cases = [
            ([{"subnet_id": s1_id, "ip_address": "10.0.1.5"}], 400, "InvalidIpForSubnet"),
            ([{"subnet_id": s1_id, "ip_address": "10.0.0.0"}], 400, "InvalidIpForSubnet"),
            ([{"subnet_id": s1_id, "ip_address": "10.0.0.255"}], 400, "InvalidIpForSubnet"),
            ([{"subnet_id": s1_id, "ip_address": "2001:db8::5"}], 400, "InvalidIpForSubnet"),
            ([{"ip_address": "192.168.0.5"}], 400, "InvalidIpForNetwork"),
            ([{"ip_address": "10.0.0.1"}], 409, "IpAddressAlreadyAllocated"),
            ([{"subnet_id": s1_id, "ip_address": "10.0.0.1"}], 409, "IpAddressAlreadyAllocated"),
            ([{"ip_address": "10.0.0.50"}], 409, "IpAddressAlreadyAllocated"),
            ([{"subnet_id": s1_id}, {"ip_address": "10.0.0.50"}], 409, "IpAddressAlreadyAllocated"),
            ([{"subnet_id": foreign["id"]}], 404, "SubnetNotFound"),
            ([{"subnet_id": ZERO_UUID}], 404, "SubnetNotFound"),
            ([{"subnet_id": s1_id}] * 6, 400, None),
            ([{"subnet_id": slaac["id"], "ip_address": "2001:db8::5"}], 400, None),
            ([{"ip_address": "2001:db8::5"}], 400, None),
            ([{"ip_address": "10.0.0.60"}, {"ip_address": "10.0.0.60"}], 400, None),
            ([{"ip_address": "10.0.0.61"}, {"subnet_id": s1_id, "ip_address": "10.0.0.61"}],
             400, None),
        ]
        before = state(api)
        for fixed_ips, status, type_ in cases:
            refused(post_port(api, net["id"], fixed_ips=fixed_ips), status, type_, what=fixed_ips)
        assert state(api) == before


class TestUpdatePort:
    def test_update_bumps_revision_and_emits_event(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        port = make_port(api, net["id"], name="a")
        api.clear_events()
        attrs = {"name": "b", "description": "new", "device_id": "vm-9",
                 "device_owner": "compute:az1", "binding:vnic_type": "macvtap",
                 "binding:profile": {"a": 1}}
        got = update_port(api, port["id"], **attrs)
        assert {k: got[k] for k in attrs} == attrs
        assert got["revision_number"] == 1
        same = ("id", "mac_address", "fixed_ips", "network_id", "project_id", "created_at",
                "ip_allocation", "status", "binding:vif_type")
        assert {k: got[k] for k in same} == {k: port[k] for k in same}
        events = port_events(api)
        assert [(e.type, e.resource_id, e.resource) for e in events] == [
            ("port.updated", port["id"], got)]
        assert show_port(api, port["id"]) == got

    def test_read_only_and_unknown_attributes_are_400(self, api):
        net = make_network(api)
        port = make_port(api, net["id"])
        before = state(api)
        read_only = {"id": ZERO_UUID, "network_id": ZERO_UUID, "status": "ACTIVE",
                     "ip_allocation": "none", "binding:vif_type": "ovs",
                     "binding:vif_details": {}, "project_id": "p9", "tenant_id": "p9",
                     "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
                     "revision_number": 7}
        for key, value in read_only.items():
            err = refused(put_port(api, port["id"], **{key: value}), 400, what=key)
            assert key in err["message"], err
        for attrs in ({"bogus": 1}, {"admin_state_up": "no"}, {"binding:vnic_type": "x"},
                      {"fixed_ips": [{"subnet_id": "nope"}]}, {"name": "x" * 256}):
            refused(put_port(api, port["id"], **attrs), 400, what=attrs)
        assert state(api) == before

    def test_fixed_ips_replace_the_addresses(self, api):
        net = make_network(api)
        s1 = make_subnet(api, net["id"], cidr="10.0.0.0/24")
        s2 = make_subnet(api, net["id"], cidr="10.0.1.0/24")
        port = make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.5"},
                                                    {"ip_address": "10.0.0.6"}])
        # A named held address stays; a bare subnet_id keeps one held address of it.
        got = update_port(api, port["id"], fixed_ips=[{"ip_address": "10.0.0.5"},
                                                      {"subnet_id": s1["id"]}])
        assert addresses(got) == ["10.0.0.5", "10.0.0.6"]
        got = update_port(api, port["id"],
                          fixed_ips=[{"subnet_id": s1["id"], "ip_address": "10.0.0.6"},
                                     {"subnet_id": s2["id"], "ip_address": "10.0.1.9"}])
        assert got["fixed_ips"] == [{"subnet_id": s1["id"], "ip_address": "10.0.0.6"},
                                    {"subnet_id": s2["id"], "ip_address": "10.0.1.9"}]
        assert got["ip_allocation"] == "immediate"
        # 10.0.0.5 was released: another port can take it.
        assert addresses(make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.5"}])) == [
            "10.0.0.5"]
        got = update_port(api, port["id"],
                          fixed_ips=[{"subnet_id": s2["id"]}, {"subnet_id": s2["id"]}])
        assert [f["subnet_id"] for f in got["fixed_ips"]] == [s2["id"], s2["id"]]
        assert "10.0.1.9" in addresses(got)
        got = update_port(api, port["id"], fixed_ips=[])
        # ip_allocation tells how the port was created; Neutron never rewrites it.
        assert (got["fixed_ips"], got["ip_allocation"]) == ([], "immediate")
        assert row_counts(api)["ip_allocations"] == 1
        assert addresses(make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.6"}])) == [
            "10.0.0.6"]
        got = update_port(api, port["id"], fixed_ips=[{"subnet_id": s1["id"]}])
        assert got["ip_allocation"] == "immediate" and len(got["fixed_ips"]) == 1
        assert show_port(api, port["id"]) == got
        assert [e.type for e in port_events(api)].count("port.updated") == 5

    def test_refused_fixed_ips_update_changes_nothing(self, api):
        net = make_network(api)
        s1 = make_subnet(api, net["id"], cidr="10.0.0.0/24")
        foreign = make_subnet(api, make_network(api)["id"], cidr="10.0.0.0/24")
        make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.50"}])
        held = [{"ip_address": f"10.0.0.{i}"} for i in range(10, 15)]
        port = make_port(api, net["id"], fixed_ips=held)
        cases = [
            ([{"ip_address": "10.0.0.1"}], 409, "IpAddressAlreadyAllocated"),
            ([{"ip_address": "10.0.0.50"}], 409, "IpAddressAlreadyAllocated"),
            ([{"subnet_id": s1["id"], "ip_address": "10.0.1.5"}], 400, "InvalidIpForSubnet"),
            ([{"ip_address": "192.168.0.5"}], 400, "InvalidIpForNetwork"),
            ([{"subnet_id": foreign["id"]}], 404, "SubnetNotFound"),
            ([{"ip_address": "10.0.0.30"}, {"ip_address": "10.0.0.30"}], 400, None),
        ]
        bare = make_port(api, net["id"], fixed_ips=[])
        before = state(api)
        for fixed_ips, status, type_ in cases:
            refused(put_port(api, port["id"], fixed_ips=fixed_ips), status, type_, what=fixed_ips)
        refused(put_port(api, bare["id"], fixed_ips=[{"subnet_id": s1["id"]}] * 6), 400)
        assert state(api) == before

    def test_more_than_five_fixed_ips_is_400_counting_the_kept_ones(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        held = [{"ip_address": f"10.0.0.{i}"} for i in range(10, 15)]
        port = make_port(api, net["id"], fixed_ips=held)
        before = state(api)
        for fixed_ips in ([*held, {"ip_address": "10.0.0.20"}], [*held, {"subnet_id": sub["id"]}],
                          [{"subnet_id": sub["id"]}] * 6):
            refused(put_port(api, port["id"], fixed_ips=fixed_ips), 400, what=fixed_ips)
        assert state(api) == before

    def test_a_held_address_named_twice_is_400(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        port = make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.10"}])
        before = state(api)
        resp = put_port(api, port["id"], fixed_ips=[{"ip_address": "10.0.0.10"},
                                                    {"ip_address": "10.0.0.10"}])
        refused(resp, 400)
        assert state(api) == before

    def test_if_match_on_update_and_delete_and_missing_ports(self, api):
        port = make_port(api, make_network(api)["id"], name="keep")
        before = state(api)
        for method in ("PUT", "DELETE"):
            resp = api.request(method, f"/v2.0/ports/{port['id']}", headers={
                "If-Match": "revision_number=4"}, json={"port": {"name": "x"}} if method == "PUT" else None)
            refused(resp, 412, "RevisionNumberConstraintFailed", what=method)
        assert state(api) == before
        resp = api.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}},
                       headers={"If-Match": "revision_number=0"})
        assert resp.status_code == 200, resp.text
        resp = api.delete(f"/v2.0/ports/{port['id']}", headers={"If-Match": "revision_number=1"})
        assert resp.status_code == 204, resp.text
        for port_id in (ZERO_UUID, "not-a-uuid"):
            refused(api.get(f"/v2.0/ports/{port_id}"), 404, "PortNotFound", what=port_id)
            refused(put_port(api, port_id, name="x"), 404, "PortNotFound", what=port_id)
            refused(api.delete(f"/v2.0/ports/{port_id}"), 404, "PortNotFound", what=port_id)


class TestDeletes:
    def test_delete_frees_addresses_and_emits_one_event(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        port = make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.9"}])
        api.clear_events()
        assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
        assert [(e.type, e.resource_id, e.resource) for e in port_events(api)] == [
            ("port.deleted", port["id"], port)]
        refused(api.get(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
        refused(api.delete(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
        assert row_counts(api)["ip_allocations"] == 0
        assert addresses(make_port(api, net["id"], fixed_ips=[{"ip_address": "10.0.0.9"}])) == [
            "10.0.0.9"]

    def test_subnet_with_addresses_given_is_409_subnet_in_use(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        make_port(api, net["id"], fixed_ips=[])  # holds nothing: does not count
        port = make_port(api, net["id"])
        before = state(api)
        refused(api.delete(f"/v2.0/subnets/{sub['id']}"), 409, "SubnetInUse")
        assert state(api) == before
        assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
        assert api.delete(f"/v2.0/subnets/{sub['id']}").status_code == 204

    def test_network_with_ports_is_409_but_its_service_ports_go_with_it(self, api):
        net = make_network(api)
        make_subnet(api, net["id"])
        service = [make_port(api, net["id"], device_owner=owner)
                   for owner in ("network:dhcp", "network:distributed")]
        user = make_port(api, net["id"], device_owner="compute:nova")
        keep = make_port(api, make_network(api)["id"])
        before = state(api)
        refused(api.delete(f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse")
        assert state(api) == before
        assert api.delete(f"/v2.0/ports/{user['id']}").status_code == 204
        api.clear_events()
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        deleted = [e for e in api.events if e.type == "port.deleted"]
        assert sorted((e.resource_id, e.resource["device_owner"]) for e in deleted) == sorted(
            (p["id"], p["device_owner"]) for p in service)
        assert {e.resource_id: e.resource for e in deleted} == {p["id"]: p for p in service}
        assert all_ports(api) == [keep]
        assert row_counts(api)["ip_allocations"] == 0


class TestListPorts:
    def test_filters(self, api):
        a = make_vlan_network(api)
        b = make_network(api)
        sa = make_subnet(api, a["id"], cidr="10.0.0.0/24")
        sb = make_subnet(api, b["id"], cidr="10.1.0.0/24")
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        make_port(api, a["id"], name="p1", device_id="vm-1", device_owner="compute:nova",
                  **{"binding:host_id": "host-1"}, fixed_ips=[{"ip_address": "10.0.0.5"}])
        make_port(api, a["id"], name="p2", device_id="vm-2", device_owner="network:dhcp",
                  fixed_ips=[{"ip_address": "10.0.0.6"}])
        make_port(api, a["id"], name="p3", fixed_ips=[])
        make_port(api, b["id"], name="p4", device_id="vm-1", mac_address="fa:16:3e:aa:bb:cc",
                  fixed_ips=[{"ip_address": "10.1.0.5"}])

        def names(*params):
            resp = api.get("/v2.0/ports", params=list(params))
            assert resp.status_code == 200, resp.text
            return sorted(p["name"] for p in resp.json()["ports"])

        assert names(("network_id", a["id"])) == ["p1", "p2", "p3"]
        assert names(("device_id", "vm-1")) == ["p1", "p4"]
        assert names(("device_owner", "network:dhcp"), ("device_owner", "compute:nova")) == ["p1", "p2"]
        assert names(("mac_address", "fa:16:3e:aa:bb:cc")) == ["p4"]
        assert names(("binding:host_id", "host-1")) == ["p1"]
        assert names(("ip_allocation", "none")) == ["p3"]
        assert names(("status", "ACTIVE")) == ["p1"]
        assert names(("status", "DOWN")) == ["p2", "p3", "p4"]
        assert names(("fixed_ips", f"subnet_id={sa['id']}")) == ["p1", "p2"]
        assert names(("fixed_ips", "ip_address=10.0.0.6")) == ["p2"]
        assert names(("fixed_ips", "ip_address=10.0.0.6"), ("fixed_ips", "ip_address=10.1.0.5")) == [
            "p2", "p4"]
        assert names(("fixed_ips", f"subnet_id={sa['id']}"), ("fixed_ips", f"subnet_id={sb['id']}")) == [
            "p1", "p2", "p4"]
        assert names(("fixed_ips", f"subnet_id={sb['id']}"), ("fixed_ips", "ip_address=10.0.0.5")) == []
        assert names(("network_id", a["id"]), ("device_id", "vm-1")) == ["p1"]

    def test_sort_fields_paging_and_bad_parameters(self, api):
        net = make_network(api)["id"]
        for i in (3, 1, 4, 0, 2):
            make_port(api, net, name=f"p{i}")
        resp = api.get("/v2.0/ports?sort_key=name&sort_dir=desc&fields=name&fields=status")
        assert resp.json() == {"ports": [{"name": f"p{i}", "status": "DOWN"} for i in (4, 3, 2, 1, 0)]}
        url, seen, pages = "/v2.0/ports?limit=2&sort_key=name&sort_dir=asc", [], 0
        while url and pages < 10:
            body = api.get(url).json()
            seen += [p["name"] for p in body["ports"]]
            nxt = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
            url = nxt[0].replace("http://testserver", "") if nxt else None
            pages += 1
        assert (seen, pages) == (["p0", "p1", "p2", "p3", "p4"], 3)
        port = all_ports(api)[0]
        resp = api.get(f"/v2.0/ports/{port['id']}", params=[("fields", "id"), ("fields", "fixed_ips")])
        assert resp.json() == {"port": {"id": port["id"], "fixed_ips": []}}
        for query in ("bogus=1", "fields=bogus", "sort_key=bogus&sort_dir=asc", "fixed_ips=bogus",
                      "fixed_ips=subnet_id", "fixed_ips=mac_address=x", "admin_state_up=maybe"):
            refused(api.get(f"/v2.0/ports?{query}"), 400, what=query)


class TestPolicy:
    def test_member_creates_on_its_network_and_on_shared_ones(self, api):
        own = make_network(api, headers=MEMBER)
        shared = make_network(api, shared=True)
        make_subnet(api, shared["id"])
        mine = make_port(api, own["id"], headers=MEMBER)
        theirs = make_port(api, shared["id"], headers=MEMBER, fixed_ips=[{"subnet_id": all_subnets(api)[0]["id"]}])
        for port in (mine, theirs):
            assert (port["project_id"], set(port)) == ("p1", PORT_KEYS - BINDING_KEYS)
            assert show_port(api, port["id"], headers=MEMBER) == port
            assert BINDING_KEYS <= set(show_port(api, port["id"]))  # the admin reads them
        listed = api.get("/v2.0/ports?sort_key=name&sort_dir=asc", headers=MEMBER).json()["ports"]
        assert sorted(p["id"] for p in listed) == sorted([mine["id"], theirs["id"]])
        assert all(not BINDING_KEYS & set(p) for p in listed)
        assert BINDING_KEYS <= set(show_port(api, mine["id"], headers=SERVICE))
        refused(api.get("/v2.0/ports?binding:host_id=h", headers=MEMBER), 400)

    def test_member_may_not_set_binding_attributes(self, api):
        net = make_network(api, headers=MEMBER)
        port = make_port(api, net["id"], headers=MEMBER)
        before = state(api)
        for attrs in ({"binding:host_id": "host-1"}, {"binding:profile": {"a": 1}}):
            refused(post_port(api, net["id"], headers=MEMBER, **attrs), 403, "PolicyNotAuthorized",
                    what=attrs)
            refused(put_port(api, port["id"], headers=MEMBER, **attrs), 403, "PolicyNotAuthorized",
                    what=attrs)
        assert state(api) == before
        got = update_port(api, port["id"], headers=MEMBER, name="renamed")
        assert set(got) == PORT_KEYS - BINDING_KEYS
        # The service role (Nova, agents) binds ports, and reads the binding.
        send_report(api, "host-1", bridge_mappings=bridges("physnet1"))
        got = update_port(api, port["id"], headers=SERVICE, **{"binding:host_id": "host-1",
                                                               "binding:profile": {"a": 1}})
        assert (got["binding:host_id"], got["binding:profile"]) == ("host-1", {"a": 1})

    def test_mac_and_address_only_for_admin_or_network_owner(self, api):
        shared = make_network(api, shared=True)
        sub = make_subnet(api, shared["id"])
        before = state(api)
        for attrs in ({"mac_address": "fa:16:3e:00:00:07"},
                      {"fixed_ips": [{"ip_address": "10.0.0.7"}]},
                      {"fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.0.0.7"}]}):
            refused(post_port(api, shared["id"], headers=MEMBER, **attrs), 403,
                    "PolicyNotAuthorized", what=attrs)
        assert state(api) == before
        own = make_network(api, headers=MEMBER)
        make_subnet(api, own["id"])
        port = make_port(api, own["id"], headers=MEMBER, mac_address="fa:16:3e:00:00:07",
                         fixed_ips=[{"ip_address": "10.0.0.7"}])
        assert (port["mac_address"], addresses(port)) == ("fa:16:3e:00:00:07", ["10.0.0.7"])
        port = make_port(api, shared["id"], mac_address="fa:16:3e:00:00:07",
                         fixed_ips=[{"ip_address": "10.0.0.7"}], project_id="p1")
        assert port["project_id"] == "p1"

    def test_readers_only_read_and_other_projects_see_nothing(self, api):
        net = make_network(api, headers=MEMBER)
        port = make_port(api, net["id"], headers=MEMBER)
        unshared = make_network(api, headers=OTHER)
        before = state(api)
        refused(post_port(api, unshared["id"], headers=MEMBER), 404, "NetworkNotFound")
        assert show_port(api, port["id"], headers=READER) == port
        refused(post_port(api, net["id"], headers=READER), 403)
        refused(put_port(api, port["id"], headers=READER, name="x"), 403)
        refused(api.delete(f"/v2.0/ports/{port['id']}", headers=READER), 403)
        refused(api.get(f"/v2.0/ports/{port['id']}", headers=OTHER), 404, "PortNotFound")
        refused(put_port(api, port["id"], headers=OTHER, name="x"), 404, "PortNotFound")
        refused(api.delete(f"/v2.0/ports/{port['id']}", headers=OTHER), 404, "PortNotFound")
        assert api.get("/v2.0/ports", headers=OTHER).json() == {"ports": []}
        assert state(api) == before
