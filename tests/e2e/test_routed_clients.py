"""Subnets on segments through the real clients (python-openstackclient and openstacksdk)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_openstack_clients import admin_cli, api_get, sdk_connect
from tests.factories import error_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]


def test_cli_routed_network_subnet_per_segment(pg_live_server):
    """Two VLAN segments on two physnets, one subnet on each, and the delete orders."""
    cli = admin_cli(pg_live_server)
    name = f"routed-{uuid.uuid4().hex[:6]}"
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", name)
    seg1 = cli.json("network", "segment", "list", "--network", net["id"])[0]["ID"]
    seg2 = cli.json("network", "segment", "create", "--network", net["id"],
                    "--network-type", "vlan", "--physical-network", "physnet2", f"{name}-2")["id"]

    sub1 = cli.json("subnet", "create", "--network", net["id"], "--network-segment", seg1,
                    "--subnet-range", "10.10.1.0/24", f"{name}-a")
    sub2 = cli.json("subnet", "create", "--network", net["id"], "--network-segment", seg2,
                    "--subnet-range", "10.10.2.0/24", "--dns-nameserver", "10.10.2.53",
                    "--allocation-pool", "start=10.10.2.10,end=10.10.2.99", f"{name}-b")
    assert (sub1["segment_id"], sub2["segment_id"]) == (seg1, seg2)
    assert sub1["cidr"] == "10.10.1.0/24" and sub1["gateway_ip"] == "10.10.1.1"
    assert sub1["allocation_pools"] == [{"start": "10.10.1.2", "end": "10.10.1.254"}]
    assert sub2["allocation_pools"] == [{"start": "10.10.2.10", "end": "10.10.2.99"}]
    assert sub2["dns_nameservers"] == ["10.10.2.53"]
    raw = api_get(pg_live_server, f"/v2.0/subnets/{sub2['id']}").json()["subnet"]
    for key in ("id", "network_id", "segment_id", "cidr", "gateway_ip", "ip_version",
                "enable_dhcp", "allocation_pools", "dns_nameservers", "host_routes",
                "revision_number"):
        assert sub2[key] == raw[key], key

    listed = cli.json("subnet", "list", "--network", net["id"])
    assert {r["ID"] for r in listed} == {sub1["id"], sub2["id"]}
    shown = api_get(pg_live_server, f"/v2.0/networks/{net['id']}").json()["network"]
    assert set(shown["subnets"]) == {sub1["id"], sub2["id"]}
    assert shown["l2_adjacency"] is False

    # A subnet without a segment on a routed network, and deleting a segment in use: refused.
    err = cli.fails("subnet", "create", "--network", net["id"], "--subnet-range",
                    "10.10.3.0/24", f"{name}-c")
    assert "SubnetsNotAllAssociatedWithSegments" in err or "must either all be" in err
    err = cli.fails("network", "segment", "delete", seg2)
    assert "still associated with subnet(s)" in err

    cli.ok("subnet", "set", "--name", f"{name}-renamed", sub2["id"])
    assert cli.json("subnet", "show", sub2["id"])["name"] == f"{name}-renamed"
    cli.ok("subnet", "delete", sub2["id"])
    cli.ok("network", "segment", "delete", seg2)
    cli.ok("network", "delete", net["id"])  # takes its remaining subnet along
    gone = api_get(pg_live_server, f"/v2.0/subnets/{sub1['id']}")
    assert gone.status_code == 404
    assert error_of(gone)["type"] == "SubnetNotFound"


def test_sdk_subnet_lifecycle(live_server):
    conn = sdk_connect(live_server)
    net = conn.network.create_network(name="sdk-routed")
    seg = next(conn.network.segments(network_id=net.id))
    sub = conn.network.create_subnet(
        network_id=net.id, segment_id=seg.id, ip_version=6, cidr="2001:db8:1::/64",
        ipv6_ra_mode="slaac", ipv6_address_mode="slaac", name="v6",
    )
    assert (sub.segment_id, sub.cidr, sub.gateway_ip) == (seg.id, "2001:db8:1::/64", "2001:db8:1::1")
    assert sub.allocation_pools == [{"start": "2001:db8:1::2", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}]
    assert sub.ipv6_address_mode == "slaac" and sub.is_dhcp_enabled is True
    assert [s.id for s in conn.network.subnets(network_id=net.id)] == [sub.id]
    updated = conn.network.update_subnet(sub, name="v6-renamed", dns_nameservers=["2001:db8::53"])
    assert (updated.name, updated.dns_nameservers, updated.revision_number) == (
        "v6-renamed", ["2001:db8::53"], 1)
    assert conn.network.get_network(net.id).subnet_ids == [sub.id]
    conn.network.delete_subnet(sub, ignore_missing=False)
    assert conn.network.find_subnet(sub.id) is None
    conn.network.delete_network(net, ignore_missing=False)
