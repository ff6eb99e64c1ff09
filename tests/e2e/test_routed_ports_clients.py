"""Ports on a routed provider network through the real clients (python-openstackclient and
openstacksdk): host-aware address allocation, deferred allocation, binding, refused host
moves, network IP availability, port filters and the delete orders.

Host reports (which hosts reach which physical networks) come from agents, not from the
clients: they are posted with httpx with a service-role token.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid

import pytest
from openstack import exceptions as sdk_exc

from tests.e2e.test_openstack_clients import (
    NOT_FOUND,
    TIMESTAMP,
    UUID,
    Cli,
    admin_cli,
    api_get,
    sdk_connect,
)
from tests.e2e.server import BOOTSTRAP_PROJECT, HTTP, Live
from tests.factories import report_body

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
OVS_VIF_DETAILS = {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int",
                   "datapath_type": "system"}
POOL_SIZE = 253  # a /24 with the default pool: .2 to .254
# What `openstack port show -f json` prints of the API's attributes (under the SDK's names);
# the CLI adds the attributes of extensions segmentd does not have, each null or empty (which
# ones depends on the client's version).
CLI_PORT_KEYS = {
    "admin_state_up", "allowed_address_pairs", "binding_host_id", "binding_profile",
    "binding_vif_details", "binding_vif_type", "binding_vnic_type", "created_at",
    "description", "device_id", "device_owner", "extra_dhcp_opts", "fixed_ips", "id",
    "ip_allocation", "mac_address", "name", "network_id", "port_security_enabled",
    "project_id", "revision_number", "security_group_ids", "status", "updated_at",
}
EMPTY = (None, "", [], {})
LIST_HEADERS = {"ID", "Name", "MAC Address", "Fixed IP Addresses", "Status"}
AVAILABILITY_LIST_HEADERS = {"Network ID", "Network Name", "Total IPs", "Used IPs"}


# -- helpers -------------------------------------------------------------------------------

def report(live: Live, host: str, physnet: str) -> None:
    """An Open vSwitch agent on `host` with a bridge on `physnet` (a service-role report)."""
    body = report_body(host, bridge_mappings={physnet: "br-ex"})
    resp = HTTP.post(f"{live.url}/v2.0/host-reports", json=body,
                      headers={"X-Auth-Token": live.service})
    assert resp.status_code == 201, resp.text
    agent = resp.json()["agent"]
    assert (agent["host"], agent["agent_type"], agent["alive"]) == (
        host, "Open vSwitch agent", True)
    assert agent["configurations"]["bridge_mappings"] == {physnet: "br-ex"}


def together(*calls):
    """Independent client commands, one after another (the `openstack` shell runs in this
    process, which has one stdout and one environment); their results in order."""
    return [call() for call in calls]


def refused(cli: Cli, *args) -> tuple[str, dict]:
    """Run `openstack --debug ...`, which must fail; its error output and the NeutronError
    of the last error response (the wire body the CLI logs, which names the error type)."""
    out = cli.run("--debug", *args)
    assert out.returncode != 0, f"openstack {' '.join(args)} succeeded:\n{out.stdout}"
    errors = [json.loads(line.partition("RESP BODY: ")[2])["NeutronError"]
              for line in out.stderr.splitlines()
              if line.startswith("RESP BODY: ") and "NeutronError" in line]
    assert errors, out.stderr
    # The lines the user sees, without --debug's logging: the client's exception message.
    shown = [line for line in out.stderr.splitlines()
             if "Exception: " in line and not line.startswith(("openstack.", "Traceback"))]
    return "\n".join(shown), errors[-1]


def in_pool(address: str, cidr: str) -> bool:
    """An address of the subnet's default pool: in the CIDR, neither its ends nor .1."""
    ip, net = ipaddress.ip_address(address), ipaddress.ip_network(cidr)
    return ip in net and ip not in (net.network_address, net.broadcast_address,
                                    net.network_address + 1)


def check_cli_port(port: dict, *, name: str, network_id: str, host: str, vif_type: str,
                   status: str, ip_allocation: str, revision: int) -> None:
    """Every attribute `openstack port show/create -f json` prints for a port."""
    assert set(port) >= CLI_PORT_KEYS, CLI_PORT_KEYS - set(port)
    for key in set(port) - CLI_PORT_KEYS:
        assert port[key] in EMPTY, (key, port[key])
    assert UUID.match(port["id"]) and port["name"] == name and port["description"] == ""
    assert port["network_id"] == network_id and port["project_id"] == BOOTSTRAP_PROJECT
    assert MAC.match(port["mac_address"]), port["mac_address"]
    assert port["admin_state_up"] is True
    assert port["device_id"] == "" and port["device_owner"] == ""
    assert port["binding_host_id"] == host
    assert port["binding_vnic_type"] == "normal" and port["binding_profile"] == {}
    assert port["binding_vif_type"] == vif_type
    assert port["binding_vif_details"] == (OVS_VIF_DETAILS if vif_type == "ovs" else {})
    assert port["status"] == status and port["ip_allocation"] == ip_allocation
    assert port["allowed_address_pairs"] == [] and port["extra_dhcp_opts"] == []
    assert port["security_group_ids"] == [] and port["port_security_enabled"] is True
    assert TIMESTAMP.match(port["created_at"]) and TIMESTAMP.match(port["updated_at"])
    assert port["updated_at"] >= port["created_at"]
    assert port["revision_number"] == revision


def one_address(port: dict, subnet: dict) -> str:
    """The port's only fixed IP, which must come from `subnet`'s pool."""
    (fixed,) = port["fixed_ips"]
    assert fixed["subnet_id"] == subnet["id"], (fixed, subnet["id"])
    assert in_pool(fixed["ip_address"], subnet["cidr"]), fixed
    return fixed["ip_address"]


def listed(rows: list[dict]) -> dict[str, dict]:
    """`openstack port list -f json` rows by port ID, each with the default columns."""
    for row in rows:
        assert set(row) == LIST_HEADERS, row
    return {row["ID"]: row for row in rows}


def routed_network(cli: Cli, name: str):
    """A network with VLAN segments on physnet1 and physnet2 and a /24 on each."""
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", name)
    (seg1_row,) = cli.json("network", "segment", "list", "--network", net["id"])
    assert seg1_row["Network"] == net["id"] and seg1_row["Network Type"] == "vlan"
    seg1 = seg1_row["ID"]
    seg2 = cli.json("network", "segment", "create", "--network", net["id"],
                    "--network-type", "vlan", "--physical-network", "physnet2", f"{name}-2")
    assert (seg2["network_id"], seg2["physical_network"]) == (net["id"], "physnet2")
    sub1, sub2 = together(
        lambda: cli.json("subnet", "create", "--network", net["id"], "--network-segment",
                         seg1, "--subnet-range", "10.40.1.0/24", f"{name}-a"),
        lambda: cli.json("subnet", "create", "--network", net["id"], "--network-segment",
                         seg2["id"], "--subnet-range", "10.40.2.0/24", f"{name}-b"),
    )
    for sub, seg, cidr in ((sub1, seg1, "10.40.1.0/24"), (sub2, seg2["id"], "10.40.2.0/24")):
        assert (sub["segment_id"], sub["cidr"], sub["network_id"]) == (seg, cidr, net["id"])
        prefix = cidr.rsplit(".", 1)[0]
        assert sub["allocation_pools"] == [{"start": f"{prefix}.2", "end": f"{prefix}.254"}]
    return net, seg1, seg2["id"], sub1, sub2


# -- python-openstackclient ----------------------------------------------------------------

@pytest.mark.postgresql
def test_cli_routed_ports_allocation_binding_availability_and_delete_orders(pg_live_server):
    cli = admin_cli(pg_live_server)
    name = f"rp-{uuid.uuid4().hex[:6]}"
    net, seg1, seg2, sub1, sub2 = routed_network(cli, name)
    net_id = net["id"]

    report(pg_live_server, "host-a", "physnet1")
    report(pg_live_server, "host-b", "physnet2")
    report(pg_live_server, "host-c", "tiny")  # a physnet the network has no segment on

    # A port with a host gets an address on a segment that host reaches, and is bound; one
    # without a host waits for it (deferred); one asked for no address gets none.
    created_a, created_b, deferred, unaddressed = together(
        lambda: cli.json("port", "create", "--network", net_id, "--host", "host-a", "p-a"),
        lambda: cli.json("port", "create", "--network", net_id, "--host", "host-b", "p-b"),
        lambda: cli.json("port", "create", "--network", net_id, "p-d"),
        lambda: cli.json("port", "create", "--network", net_id, "--host", "host-a",
                         "--no-fixed-ip", "p-n"),
    )
    port_a, port_b, set_out = together(
        lambda: cli.json("port", "show", "p-a"),
        lambda: cli.json("port", "show", created_b["id"]),
        lambda: cli.ok("port", "set", "--host", "host-b", "p-d"),
    )
    assert (port_a, port_b) == (created_a, created_b)
    check_cli_port(port_a, name="p-a", network_id=net_id, host="host-a", vif_type="ovs",
                   status="ACTIVE", ip_allocation="immediate", revision=0)
    check_cli_port(port_b, name="p-b", network_id=net_id, host="host-b", vif_type="ovs",
                   status="ACTIVE", ip_allocation="immediate", revision=0)
    ip_a, ip_b = one_address(port_a, sub1), one_address(port_b, sub2)
    raw = api_get(pg_live_server, f"/v2.0/ports/{port_a['id']}").json()["port"]
    assert (raw["binding:host_id"], raw["binding:vif_type"], raw["fixed_ips"]) == (
        "host-a", "ovs", port_a["fixed_ips"])
    check_cli_port(unaddressed, name="p-n", network_id=net_id, host="host-a",
                   vif_type="ovs", status="ACTIVE", ip_allocation="none", revision=0)
    assert unaddressed["fixed_ips"] == []  # bound to the first segment host-a reaches
    macs = {p["mac_address"] for p in (port_a, port_b, deferred, unaddressed)}
    assert len(macs) == 4

    # The deferred port: no address until `port set --host host-b` binds it.
    check_cli_port(deferred, name="p-d", network_id=net_id, host="", vif_type="unbound",
                   status="DOWN", ip_allocation="deferred", revision=0)
    assert deferred["fixed_ips"] == []
    assert set_out == ""
    bound = cli.json("port", "show", deferred["id"])
    # ip_allocation is checked at the end (see there), so that it hides nothing else.
    check_cli_port(bound, name="p-d", network_id=net_id, host="host-b", vif_type="ovs",
                   status="ACTIVE", ip_allocation=bound["ip_allocation"], revision=1)
    ip_d = one_address(bound, sub2)
    assert ip_d != ip_b
    assert (bound["id"], bound["mac_address"], bound["created_at"]) == (
        deferred["id"], deferred["mac_address"], deferred["created_at"])

    # Moving p-a to a host that cannot reach its address's segment: refused. A host reaching
    # no segment of the network (one reporting another physnet, one never reported): refused.
    move, *creates = together(
        lambda: refused(cli, "port", "set", "--host", "host-b", "p-a"),
        *[lambda h=h: refused(cli, "port", "create", "--network", net_id, "--host", h,
                              f"p-{h}") for h in ("host-c", "host-z")],
    )
    shown, error = move
    assert error["type"] == "HostNotCompatibleWithFixedIps", error
    assert error["message"] == (
        f"Host host-b is not connected to a segment where the existing fixed_ips on port "
        f"{port_a['id']} will function given the routed network topology.")
    assert "ConflictException: 409" in shown and error["message"] in shown, shown
    for host, (shown, error) in zip(("host-c", "host-z"), creates):
        assert error["type"] == "HostNotConnectedToAnySegment", error
        assert error["message"] == (
            f"Host {host} is not connected to any segments on routed provider network "
            f"'{net_id}'.  It should be connected to one.")
        assert "ConflictException: 409" in shown and error["message"] in shown, shown

    a_after, avail, avail_list, every, on_b, on_sub1, by_ip = together(
        lambda: cli.json("port", "show", port_a["id"]),
        lambda: cli.json("ip", "availability", "show", net_id),
        lambda: cli.json("ip", "availability", "list"),
        lambda: cli.json("port", "list", "--network", net_id),
        lambda: cli.json("port", "list", "--network", net_id, "--host", "host-b"),
        lambda: cli.json("port", "list", "--network", net_id, "--fixed-ip",
                         f"subnet={name}-a"),
        lambda: cli.json("port", "list", "--fixed-ip", f"ip-address={ip_d}"),
    )
    assert a_after == port_a  # the refused move changed nothing
    every = listed(every)  # and the refused creates left no port
    assert set(every) == {port_a["id"], port_b["id"], bound["id"], unaddressed["id"]}
    assert every[unaddressed["id"]] == {
        "ID": unaddressed["id"], "Name": "p-n", "MAC Address": unaddressed["mac_address"],
        "Fixed IP Addresses": [], "Status": "ACTIVE"}

    # Network IP availability: used and total per subnet (p-n holds no address).
    known = {"network_id", "network_name", "project_id", "subnet_ip_availability",
             "total_ips", "used_ips"}
    assert set(avail) >= known, avail
    assert (avail["network_id"], avail["network_name"], avail["project_id"]) == (
        net_id, name, BOOTSTRAP_PROJECT)
    for key in set(avail) - known:  # extensions segmentd does not have
        assert avail[key] in EMPTY, (key, avail[key])
    assert sorted(avail["subnet_ip_availability"], key=lambda s: s["cidr"]) == [
        {"subnet_id": sub1["id"], "subnet_name": f"{name}-a", "cidr": "10.40.1.0/24",
         "ip_version": 4, "used_ips": 1, "total_ips": POOL_SIZE},
        {"subnet_id": sub2["id"], "subnet_name": f"{name}-b", "cidr": "10.40.2.0/24",
         "ip_version": 4, "used_ips": 2, "total_ips": POOL_SIZE},
    ]
    assert (avail["used_ips"], avail["total_ips"]) == (3, 2 * POOL_SIZE)
    (row,) = avail_list
    assert set(row) >= AVAILABILITY_LIST_HEADERS, row
    assert (row["Network ID"], row["Network Name"], row["Total IPs"], row["Used IPs"]) == (
        net_id, name, 2 * POOL_SIZE, 3)
    for header in set(row) - AVAILABILITY_LIST_HEADERS:  # "... in Subnet/Allocation Pool"
        assert row[header] in EMPTY, (header, row)

    # Port filters: by host, by subnet, by address.
    on_b = listed(on_b)
    assert set(on_b) == {port_b["id"], bound["id"]}
    assert on_b[port_b["id"]] == {
        "ID": port_b["id"], "Name": "p-b", "MAC Address": port_b["mac_address"],
        "Fixed IP Addresses": port_b["fixed_ips"], "Status": "ACTIVE"}
    assert on_b[bound["id"]] == {
        "ID": bound["id"], "Name": "p-d", "MAC Address": bound["mac_address"],
        "Fixed IP Addresses": [{"subnet_id": sub2["id"], "ip_address": ip_d}],
        "Status": "ACTIVE"}
    assert listed(on_sub1) == {port_a["id"]: {
        "ID": port_a["id"], "Name": "p-a", "MAC Address": port_a["mac_address"],
        "Fixed IP Addresses": [{"subnet_id": sub1["id"], "ip_address": ip_a}],
        "Status": "ACTIVE"}}
    assert listed(by_ip) == {bound["id"]: on_b[bound["id"]]}

    # Deletes that must fail, each with its error.
    (shown_s, error_s), (shown_n, error_n) = together(
        lambda: refused(cli, "subnet", "delete", sub1["id"]),
        lambda: refused(cli, "network", "delete", net_id),
    )
    assert error_s["type"] == "SubnetInUse", error_s
    assert sub1["id"] in error_s["message"] and port_a["id"] in error_s["message"], error_s
    assert "ConflictException: 409" in shown_s, shown_s
    assert error_n["type"] == "NetworkInUse", error_n
    assert "ConflictException: 409" in shown_n and net_id in error_n["message"], shown_n
    assert cli.ok("port", "delete", "p-a") == ""
    assert cli.ok("subnet", "delete", sub1["id"]) == ""  # its last address is gone
    shown, error = refused(cli, "network", "segment", "delete", seg1)  # p-n is bound to it
    assert error["type"] == "SegmentInUse", error
    assert unaddressed["id"] in error["message"] and "bound" in error["message"], error
    assert "ConflictException: 409" in shown, shown

    # And a valid order: ports, then subnets and segments, then the network.
    assert cli.ok("port", "delete", port_b["id"], "p-d", "p-n") == ""
    assert cli.ok("network", "segment", "delete", seg1) == ""
    assert cli.ok("subnet", "delete", sub2["id"]) == ""
    assert cli.ok("network", "segment", "delete", seg2) == ""
    assert cli.ok("network", "delete", net_id) == ""
    gone = together(lambda: cli.fails("network", "show", net_id),
                    lambda: cli.fails("port", "show", port_b["id"]))
    assert all(NOT_FOUND.search(err) for err in gone), gone

    # Neutron keeps the ip_allocation a port was created with: only port creation writes it
    # (db_base_plugin_v2.create_port_db), and the deferred allocation on update
    # (ipam_backend_mixin.update_port) leaves it, so the bound port still says "deferred".
    assert bound["ip_allocation"] == "deferred", bound["ip_allocation"]


def test_cli_port_list_long(sqlite_live_server):
    """`openstack port list --long` asks for fields=tags and fields=trunk_details, which
    Neutron ignores when it lacks those extensions: the listing must work."""
    cli = admin_cli(sqlite_live_server)
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", "long")
    report(sqlite_live_server, "host-a", "physnet1")
    port = cli.json("port", "create", "--network", net["id"], "--host", "host-a", "p")
    assert (port["binding_vif_type"], port["status"], port["fixed_ips"]) == ("ovs", "ACTIVE", [])
    rows = cli.json("port", "list", "--network", net["id"], "--long")
    assert len(rows) == 1, rows
    row = rows[0]
    assert set(row) == LIST_HEADERS | {"Security Groups", "Device Owner", "Tags",
                                       "Trunk subports"}, row
    assert (row["ID"], row["Name"], row["MAC Address"], row["Fixed IP Addresses"]) == (
        port["id"], "p", port["mac_address"], [])
    assert (row["Status"], row["Security Groups"], row["Device Owner"]) == ("ACTIVE", [], "")
    assert not row["Tags"] and not row["Trunk subports"], row


# -- openstacksdk ----------------------------------------------------------------------------

def test_sdk_port_on_routed_network(live_server):
    conn = sdk_connect(live_server)
    net = conn.network.create_network(name="sdk-routed-ports", provider_network_type="vlan",
                                      provider_physical_network="physnet1")
    seg1 = next(conn.network.segments(network_id=net.id))
    seg2 = conn.network.create_segment(network_id=net.id, network_type="vlan",
                                       physical_network="physnet2")
    sub1 = conn.network.create_subnet(network_id=net.id, segment_id=seg1.id, ip_version=4,
                                      cidr="10.50.1.0/24")
    sub2 = conn.network.create_subnet(network_id=net.id, segment_id=seg2.id, ip_version=4,
                                      cidr="10.50.2.0/24")
    assert (sub1.segment_id, sub2.segment_id) == (seg1.id, seg2.id)
    report(live_server, "host-a", "physnet1")
    report(live_server, "host-b", "physnet2")

    port = conn.network.create_port(network_id=net.id, binding_host_id="host-b",
                                    device_id="vm-1", device_owner="compute:nova", name="sdk-p")
    assert len(port.fixed_ips) == 1
    assert port.fixed_ips[0]["subnet_id"] == sub2.id
    assert in_pool(port.fixed_ips[0]["ip_address"], "10.50.2.0/24"), port.fixed_ips
    assert (port.binding_host_id, port.binding_vif_type, port.ip_allocation) == (
        "host-b", "ovs", "immediate")
    assert port.binding_vif_details == OVS_VIF_DETAILS and port.binding_vnic_type == "normal"
    assert (port.status, port.is_admin_state_up, port.revision_number) == ("ACTIVE", True, 0)
    assert (port.device_id, port.device_owner, port.name) == ("vm-1", "compute:nova", "sdk-p")
    assert MAC.match(port.mac_address) and port.project_id == BOOTSTRAP_PROJECT
    other = conn.network.create_port(network_id=net.id, device_id="vm-2")  # deferred
    assert (other.fixed_ips, other.ip_allocation, other.binding_vif_type, other.status) == (
        [], "deferred", "unbound", "DOWN")

    renamed = conn.network.update_port(port, name="sdk-renamed")
    assert (renamed.name, renamed.revision_number) == ("sdk-renamed", 1)
    assert renamed.fixed_ips == port.fixed_ips and renamed.binding_host_id == "host-b"
    assert (renamed.binding_vif_type, renamed.ip_allocation) == ("ovs", "immediate")
    with pytest.raises(sdk_exc.ConflictException, match="is not connected to a segment where"):
        conn.network.update_port(port, binding_host_id="host-a")
    fetched = conn.network.get_port(port.id)
    assert (fetched.name, fetched.binding_host_id, fetched.fixed_ips,
            fetched.revision_number) == ("sdk-renamed", "host-b", port.fixed_ips, 1)

    assert [p.id for p in conn.network.ports(device_id="vm-1")] == [port.id]
    assert [p.id for p in conn.network.ports(device_id="vm-2")] == [other.id]
    assert list(conn.network.ports(device_id="vm-3")) == []
    by_subnet = list(conn.network.ports(fixed_ips=f"subnet_id={sub2.id}"))
    assert [p.id for p in by_subnet] == [port.id]

    conn.network.delete_port(port, ignore_missing=False)
    assert conn.network.find_port(port.id) is None
    assert list(conn.network.ports(device_id="vm-1")) == []
    with pytest.raises(sdk_exc.NotFoundException, match="could not be found"):
        conn.network.get_port(port.id)
    conn.network.delete_port(other, ignore_missing=False)
    conn.network.delete_network(net, ignore_missing=False)
    assert list(conn.network.ports()) == []
