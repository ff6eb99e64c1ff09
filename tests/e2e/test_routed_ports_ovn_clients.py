"""Ports on a routed provider network through python-openstackclient, against a real
`segmentd serve` on PostgreSQL with the OVN backend, whose hosts come from OVN Southbound
chassis (their bridge mappings), not from REST host reports: host-aware allocation,
deferred allocation, binding, a refused host move, IP availability, a chassis that goes
away, the delete orders, and what the Northbound DB holds all along.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import wait_until
from tests.e2e.server import Live, database, start_example_server, stop_servers
from tests.e2e.test_openstack_clients import admin_cli, api_get
from tests.e2e.test_routed_ports_clients import (
    POOL_SIZE,
    check_cli_port,
    one_address,
    refused,
    routed_network,
    together,
)
from tests.factories import error_of
from tests.ovn.conftest import OvnDatabases
from tests.ovn.test_chassis import add_chassis
from tests.ovn.test_ports_realize import dhcp, lsp, ports_of
from tests.ovn.test_realize import switch

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]

OWNER = "e2e-routed-ports"
# The error of a GET of a deleted resource, by collection.
GONE = {"networks": "NetworkNotFound", "segments": "SegmentNotFound",
        "subnets": "SubnetNotFound", "ports": "PortNotFound"}


@pytest.fixture
def ovn_server(request, tmp_path):
    """OVN NB/SB ovsdb-servers and a `segmentd serve` on the example config realizing into
    them and watching the chassis; both stopped afterwards, the server's log printed if the
    test failed."""
    ovn = OvnDatabases(tmp_path / "ovn")
    (tmp_path / "ovn").mkdir()
    try:
        ovn.start()
        with database("postgresql", tmp_path) as db_url:
            backend = {"backend": "ovn", "event_dispatch_interval_seconds": 0.1,
                       "ovn": {"nb_connection": ovn.remote, "sb_connection": ovn.remote,
                               "owner": OWNER, "watch_chassis": True,
                               "chassis_lease_seconds": 2, "timeout_seconds": 5}}
            live = start_example_server(tmp_path, db_url, "segmentd-ovn", backend=backend)
            try:
                yield live, ovn
            finally:
                stop_servers(request, [live.server])
    finally:
        ovn.stop()


# -- reads of the API (the CLI adds nothing to them) ------------------------------------------

def reached(live: Live, host: str) -> set[str] | None:
    """The segments a host reaches (GET /v2.0/hosts/{host}/segments); None: no such host."""
    resp = api_get(live, f"/v2.0/hosts/{host}/segments")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return {s["id"] for s in resp.json()["segments"]}


def api_port(live: Live, port_id: str) -> dict:
    resp = api_get(live, f"/v2.0/ports/{port_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["port"]


def backlog(live: Live) -> int:
    """Events the OVN backend has not applied yet (GET /v2.0/ovn/status)."""
    resp = api_get(live, "/v2.0/ovn/status")
    assert resp.status_code == 200, resp.text
    status = resp.json()["ovn"]
    assert status["connected"] is True and status["chassis_conflicts"] == [], status
    return status["backlog"]


# -- the Northbound DB -------------------------------------------------------------------------

def check_lsp(ovn: OvnDatabases, port: dict, subnet: dict, host: str, network_id: str) -> dict:
    """The port's Logical_Switch_Port at the port's revision: on its network's switch, its
    MAC and address, requested on `host`, its DHCP from its subnet's DHCP_Options row."""
    def current():
        row = lsp(ovn, port["id"])
        return row if row and row["external_ids"].get("neutron:revision_number") == str(
            port["revision_number"]) else None

    row = wait_until(current, f"port {port['name']}'s LSP at revision {port['revision_number']}")
    (fixed,) = port["fixed_ips"]
    ip = fixed["ip_address"]
    assert row["type"] == "" and row["enabled"] is True
    assert row["addresses"] == row["port_security"] == f"{port['mac_address']} {ip}"
    assert row["options"] == {"requested-chassis": host}
    ext = row["external_ids"]
    assert (ext["neutron:host_id"], ext["neutron:cidrs"], ext["neutron:network_name"]) == (
        host, f"{ip}/24", f"neutron-{network_id}")
    assert (ext["neutron:port_name"], ext["segmentd:owner"]) == (port["name"], OWNER)
    options = dhcp(ovn, subnet["id"])
    assert options is not None and options["cidr"] == subnet["cidr"], options
    assert row["dhcpv4_options"] == options["_uuid"] and row["dhcpv6_options"] == []
    ls = switch(ovn, network_id)
    assert ls is not None and row["_uuid"] in ports_of(ls)
    return row


def nb_names(ovn: OvnDatabases) -> dict[str, set[str]]:
    """Every switch, switch port and DHCP_Options row (by subnet) in the Northbound DB."""
    return {"switches": {r["name"] for r in ovn.find("Logical_Switch")},
            "ports": {r["name"] for r in ovn.find("Logical_Switch_Port")},
            "dhcp": {r["external_ids"].get("subnet_id") for r in ovn.find("DHCP_Options")}}


# -- the scenario --------------------------------------------------------------------------------

def test_cli_routed_ports_on_ovn_chassis_hosts(ovn_server):
    live, ovn = ovn_server
    cli = admin_cli(live)
    name = f"rpo-{uuid.uuid4().hex[:6]}"

    # Two chassis, as ovn-controller registers them: each host reaches one physnet.
    add_chassis(ovn, "ch-a", "host-a", "physnet1:br-ex")
    add_chassis(ovn, "ch-b", "host-b", "physnet2:br-ex")
    net, seg1, seg2, sub1, sub2 = routed_network(cli, name)
    net_id = net["id"]
    wait_until(lambda: reached(live, "host-a") == {seg1} and reached(live, "host-b") == {seg2},
               "each chassis host reaching the segment on its physnet")
    hosts = {h["host"]: h for h in api_get(live, "/v2.0/hosts").json()["hosts"]}
    assert set(hosts) == {"host-a", "host-b"}, hosts
    for host, chassis, physnet in (("host-a", "ch-a", "physnet1"), ("host-b", "ch-b", "physnet2")):
        entry = hosts[host]
        assert (entry["chassis"], entry["alive"], entry["physnets"]) == (chassis, True, [physnet])
        assert (entry["tunnel_types"], entry["segment_count"]) == (["geneve"], 1), entry
    agents = api_get(live, "/v2.0/agents").json()["agents"]
    assert sorted((a["host"], a["agent_type"], a["binary"]) for a in agents) == [
        ("host-a", "OVN Controller agent", "ovn-controller"),
        ("host-b", "OVN Controller agent", "ovn-controller")]

    # The network is a switch with a localnet port per segment, and a DHCP_Options row
    # per subnet.
    nb = wait_until(lambda: (names := nb_names(ovn))["dhcp"] == {sub1["id"], sub2["id"]}
                    and len(names["ports"]) == 2 and names, "the network realized")
    assert nb == {"switches": {f"neutron-{net_id}"},
                  "ports": {f"provnet-{seg1}", f"provnet-{seg2}"},
                  "dhcp": {sub1["id"], sub2["id"]}}

    # A port with a host gets an address from the subnet of the segment its chassis
    # reaches, and is bound; one without a host waits for one (deferred).
    port_a, port_b, deferred = together(
        lambda: cli.json("port", "create", "--network", net_id, "--host", "host-a", "p-a"),
        lambda: cli.json("port", "create", "--network", net_id, "--host", "host-b", "p-b"),
        lambda: cli.json("port", "create", "--network", net_id, "p-d"),
    )
    check_cli_port(port_a, name="p-a", network_id=net_id, host="host-a", vif_type="ovs",
                   status="ACTIVE", ip_allocation="immediate", revision=0)
    check_cli_port(port_b, name="p-b", network_id=net_id, host="host-b", vif_type="ovs",
                   status="ACTIVE", ip_allocation="immediate", revision=0)
    check_cli_port(deferred, name="p-d", network_id=net_id, host="", vif_type="unbound",
                   status="DOWN", ip_allocation="deferred", revision=0)
    one_address(port_a, sub1)
    ip_b = one_address(port_b, sub2)
    assert deferred["fixed_ips"] == []

    lsp_a = check_lsp(ovn, port_a, sub1, "host-a", net_id)
    check_lsp(ovn, port_b, sub2, "host-b", net_id)
    wait_until(lambda: backlog(live) == 0, "every event applied to the Northbound DB")
    assert lsp(ovn, deferred["id"]) is None  # its port.created was applied, and made nothing

    # Binding the deferred port allocates from host-b's subnet; moving p-a to host-b, which
    # does not reach p-a's address's segment, is refused.
    set_out, (shown, error) = together(
        lambda: cli.ok("port", "set", "--host", "host-b", deferred["id"]),
        lambda: refused(cli, "port", "set", "--host", "host-b", port_a["id"]),
    )
    assert set_out == ""
    assert error["type"] == "HostNotCompatibleWithFixedIps", error
    assert error["message"] == (
        f"Host host-b is not connected to a segment where the existing fixed_ips on port "
        f"{port_a['id']} will function given the routed network topology.")
    assert "ConflictException: 409" in shown and error["message"] in shown, shown

    bound, avail = together(
        lambda: cli.json("port", "show", deferred["id"]),
        lambda: cli.json("ip", "availability", "show", net_id),
    )
    check_cli_port(bound, name="p-d", network_id=net_id, host="host-b", vif_type="ovs",
                   status="ACTIVE", ip_allocation="deferred", revision=1)
    ip_d = one_address(bound, sub2)
    assert ip_d != ip_b and bound["mac_address"] == deferred["mac_address"]
    a_after = api_port(live, port_a["id"])  # the refused move changed nothing
    assert (a_after["binding:host_id"], a_after["fixed_ips"], a_after["revision_number"]) == (
        "host-a", port_a["fixed_ips"], 0)
    assert (avail["network_id"], avail["used_ips"], avail["total_ips"]) == (
        net_id, 3, 2 * POOL_SIZE)
    assert sorted(avail["subnet_ip_availability"], key=lambda s: s["cidr"]) == [
        {"subnet_id": sub1["id"], "subnet_name": f"{name}-a", "cidr": "10.40.1.0/24",
         "ip_version": 4, "used_ips": 1, "total_ips": POOL_SIZE},
        {"subnet_id": sub2["id"], "subnet_name": f"{name}-b", "cidr": "10.40.2.0/24",
         "ip_version": 4, "used_ips": 2, "total_ips": POOL_SIZE},
    ]
    check_lsp(ovn, bound, sub2, "host-b", net_id)  # the bound port appears, with its address
    assert lsp(ovn, port_a["id"]) == lsp_a  # the refused move reached nothing

    # host-a's chassis goes, and the host with it: p-a's binding fails. It keeps its host
    # and its address, and so its LSP, which follows the port's new revision.
    ovn.sbctl("chassis-del", "ch-a")
    wait_until(lambda: reached(live, "host-a") is None, "host-a gone with its chassis")
    failed = wait_until(
        lambda: (p := api_port(live, port_a["id"]))["binding:vif_type"] == "binding_failed"
        and p, "p-a's binding failing")
    assert (failed["status"], failed["binding:host_id"], failed["binding:vif_details"]) == (
        "DOWN", "host-a", {})
    assert (failed["fixed_ips"], failed["revision_number"]) == (port_a["fixed_ips"], 1)
    check_lsp(ovn, failed, sub1, "host-a", net_id)
    assert [h["host"] for h in api_get(live, "/v2.0/hosts").json()["hosts"]] == ["host-b"]
    assert [a["host"] for a in api_get(live, "/v2.0/agents").json()["agents"]] == ["host-b"]
    assert api_port(live, port_b["id"])["status"] == "ACTIVE"  # host-b's ports are untouched

    # Deletes that must fail, each with its error. p-a alone holds sub1's addresses and
    # keeps the network in use, so deleting p-b and p-d meanwhile changes none of them.
    (shown_g, error_g), (shown_s, error_s), (shown_n, error_n), deleted_bd = together(
        lambda: refused(cli, "network", "segment", "delete", seg1),
        lambda: refused(cli, "subnet", "delete", sub1["id"]),
        lambda: refused(cli, "network", "delete", net_id),
        lambda: cli.ok("port", "delete", port_b["id"], deferred["id"]),
    )
    assert error_g["type"] == "SegmentInUse", error_g
    assert error_g["message"] == (f"Segment '{seg1}' cannot be deleted: The segment is still "
                                  f"associated with subnet(s) {sub1['id']}.")
    assert error_s["type"] == "SubnetInUse", error_s
    assert error_s["message"] == (f"Unable to complete operation on subnet {sub1['id']}: One or "
                                  f"more ports have an IP allocation from this subnet: "
                                  f"{port_a['id']}.")
    assert error_n["type"] == "NetworkInUse", error_n
    assert net_id in error_n["message"], error_n
    for shown in (shown_g, shown_s, shown_n):
        assert "ConflictException: 409" in shown, shown
    assert deleted_bd == ""

    # A working order: ports, subnets, a segment, the network (with its other segment).
    # sub2 has no ports left, so it goes while p-a does; then sub1 and sub2's segment.
    assert together(lambda: cli.ok("port", "delete", port_a["id"]),
                    lambda: cli.ok("subnet", "delete", sub2["id"])) == ["", ""]
    assert together(lambda: cli.ok("subnet", "delete", sub1["id"]),
                    lambda: cli.ok("network", "segment", "delete", seg2)) == ["", ""]
    assert cli.ok("network", "delete", net_id) == ""
    for path in (f"/v2.0/networks/{net_id}", f"/v2.0/segments/{seg1}",
                 f"/v2.0/segments/{seg2}", f"/v2.0/subnets/{sub1['id']}",
                 f"/v2.0/subnets/{sub2['id']}", *(f"/v2.0/ports/{p['id']}"
                                                  for p in (port_a, port_b, deferred))):
        gone = api_get(live, path)
        assert gone.status_code == 404, path
        assert error_of(gone)["type"] == GONE[path.split("/")[2]], path
    empty = {"switches": set(), "ports": set(), "dhcp": set()}
    wait_until(lambda: nb_names(ovn) == empty, "the Northbound DB emptied")
