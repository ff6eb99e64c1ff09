"""openstackclient and openstacksdk with ordinary password authentication: they find segmentd
as the `network` service in a real Keystone's catalog and send Keystone tokens."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions as sdk_exc

from tests.e2e.test_openstack_clients import Cli, client_env
from tests.keystone_auth.conftest import PASSWORD, call

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]


def clouds_yaml(tmp_path, cloud, users: dict[str, tuple[str, str, str]]):
    """A clouds.yaml as an operator's users have it: one entry per (user, project, domain)."""
    lines = ["clouds:"]
    for entry, (user, project, domain) in users.items():
        lines += [
            f"  {entry}:", "    auth_type: password", "    region_name: RegionOne",
            "    auth:", f"      auth_url: {cloud.keystone.url}", f"      username: {user}",
            f"      password: {PASSWORD if entry != 'admin' else cloud.keystone.admin_password}",
            f"      project_name: {project}", f"      user_domain_name: {domain}",
            f"      project_domain_name: {domain}",
        ]
    path = tmp_path / "clouds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sdk(cloud, user: str, project: str) -> openstack.connection.Connection:
    admin = user == "admin"
    return openstack.connect(
        auth_url=cloud.keystone.url, region_name="RegionOne",
        username=user if admin else cloud.user_name(user),
        password=cloud.keystone.admin_password if admin else PASSWORD,
        project_name=project if admin else f"{project}-{cloud.suffix}",
        user_domain_name="Default", project_domain_name="Default")


def test_openstackclient_through_the_catalog(live, cloud, tmp_path):
    """Members create networks, subnets and ports in their project; the admin adds provider
    networks and segments; a reader reads and cannot write; nobody sees another's project."""
    path = clouds_yaml(tmp_path, cloud, {
        "alice": (cloud.user_name("alice"), f"p1-{cloud.suffix}", "Default"),
        "bob": (cloud.user_name("bob"), f"p2-{cloud.suffix}", "Default"),
        "carol": (cloud.user_name("carol"), f"p1-{cloud.suffix}", "Default"),
        "admin": ("admin", "admin", "Default"),
    })
    env = client_env(OS_CLIENT_CONFIG_FILE=str(path))
    alice, bob, carol, admin = (Cli("", env=env, auth=["--os-cloud", who])
                                for who in ("alice", "bob", "carol", "admin"))

    net = alice.json("network", "create", "alice-net")
    assert net["project_id"] == cloud.projects["p1"] and net["status"] in ("ACTIVE", "BUILD")
    subnet = alice.json("subnet", "create", "--network", net["id"],
                        "--subnet-range", "10.20.0.0/24", "alice-subnet")
    port = alice.json("port", "create", "--network", net["id"], "alice-port")
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert [n["ID"] for n in alice.json("network", "list")] == [net["id"]]

    assert bob.json("network", "list") == []
    assert "No Network found" in bob.fails("network", "show", net["id"])
    assert "No Network found" in bob.fails("network", "delete", net["id"])

    assert [n["ID"] for n in carol.json("network", "list")] == [net["id"]]
    assert "403" in carol.fails("network", "create", "carol-net")
    assert carol.json("network", "show", net["id"])["name"] == "alice-net"

    vlan = admin.json("network", "create", "--provider-network-type", "vlan",
                      "--provider-physical-network", "physnet1", "--project",
                      cloud.projects["p2"], "admin-vlan")
    assert vlan["provider:network_type"] == "vlan" and vlan["project_id"] == cloud.projects["p2"]
    segment = admin.json("network", "segment", "create", "--network", vlan["id"],
                         "--network-type", "vlan", "--physical-network", "physnet2", "seg2")
    segments = admin.json("network", "segment", "list", "--network", vlan["id"])
    assert {s["ID"] for s in segments} >= {segment["id"]} and len(segments) == 2
    every = {n["ID"] for n in admin.json("network", "list")}
    assert {net["id"], vlan["id"]} <= every
    assert [n["ID"] for n in bob.json("network", "list")] == [vlan["id"]]

    assert "403" in alice.fails("network", "segment", "create", "--network", net["id"],
                                "--network-type", "vxlan", "seg-by-member")
    alice.ok("port", "delete", port["id"])
    alice.ok("subnet", "delete", subnet["id"])
    alice.ok("network", "delete", net["id"])
    admin.ok("network", "delete", vlan["id"])


def test_openstacksdk_through_the_catalog(live, cloud):
    """The SDK's network proxy finds segmentd by the catalog, as it finds Neutron."""
    bob, alice, admin = sdk(cloud, "bob", "p2"), sdk(cloud, "alice", "p1"), sdk(cloud, "admin", "admin")
    try:
        assert bob.network.get_endpoint().startswith(live.url)
        net = bob.network.create_network(name="bob-net")
        assert net.project_id == cloud.projects["p2"]
        subnet = bob.network.create_subnet(network_id=net.id, ip_version=4,
                                           cidr="10.30.0.0/24", name="bob-subnet")
        port = bob.network.create_port(network_id=net.id, name="bob-port")
        assert port.fixed_ips[0]["subnet_id"] == subnet.id
        assert [n.id for n in bob.network.networks()] == [net.id]

        assert net.id not in [n.id for n in alice.network.networks()]
        with pytest.raises(sdk_exc.ResourceNotFound):
            alice.network.get_network(net.id)

        routed = admin.network.create_network(
            name="routed", project_id=cloud.projects["p2"], provider_network_type="vlan",
            provider_physical_network="physnet1")
        (seg,) = admin.network.segments(network_id=routed.id)
        on_segment = admin.network.create_subnet(network_id=routed.id, segment_id=seg.id,
                                                 ip_version=4, cidr="10.40.0.0/24")
        assert on_segment.segment_id == seg.id
        assert routed.id in [n.id for n in bob.network.networks()]
        with pytest.raises(sdk_exc.ForbiddenException):
            bob.network.create_segment(network_id=net.id, network_type="vxlan")

        bob.network.delete_port(port)
        bob.network.delete_subnet(subnet)
        bob.network.delete_network(net)
        admin.network.delete_subnet(on_segment)
        admin.network.delete_network(routed)
    finally:
        for conn in (bob, alice, admin):
            conn.close()


def test_a_keystone_users_changes_are_audited_with_who_made_them(live, cloud):
    token = cloud.token("alice", "p1")
    created = call(live.url, "POST", "/v2.0/networks", token,
                   json={"network": {"name": "audited"}})
    assert created.status_code == 201, created.text
    refused = call(live.url, "POST", "/v2.0/networks", token,
                   json={"network": {"name": "x", "shared": True}})
    assert refused.status_code == 403, refused.text
    events = call(live.url, "GET", "/v2.0/audit-events?sort_key=id&sort_dir=desc&limit=50",
                  live.bootstrap).json()["audit_events"]
    mine = [e for e in events if e["user_id"] == cloud.users["alice"]]
    assert [(e["outcome"], e["resource_id"]) for e in mine][:2] == [
        ("denied", None), ("success", created.json()["network"]["id"])]
    for event in mine[:2]:
        assert event["user_name"] == cloud.user_name("alice")
        assert event["project_id"] == cloud.projects["p1"]
        assert {"member", "reader"} <= set(event["roles"])
        assert event["token_id"] and event["token_id"] not in token
        assert token not in str(event)
    assert call(live.url, "DELETE", f"/v2.0/networks/{created.json()['network']['id']}",
                token).status_code == 204


def test_the_readmes_catalog_commands_register_segmentd(request, private_keystone, tmp_path):
    """README's registration, run with openstackclient as an operator would (the password
    given on the command line instead of at a prompt), then its clouds.yaml user."""
    from tests.keystone_auth.conftest import make_cloud, serve

    keystone = private_keystone()
    cloud = make_cloud(keystone)
    server = serve(request, tmp_path, cloud, "readme")
    admin_env = client_env(
        OS_AUTH_URL=keystone.url, OS_USERNAME="admin", OS_PASSWORD=keystone.admin_password,
        OS_PROJECT_NAME="admin", OS_USER_DOMAIN_NAME="Default",
        OS_PROJECT_DOMAIN_NAME="Default", OS_IDENTITY_API_VERSION="3")
    operator = Cli("", env=admin_env, auth=[])
    operator.ok("service", "create", "--name", "segmentd", "--description", "Network segments",
                "network")
    for interface in ("public", "internal", "admin"):
        operator.ok("endpoint", "create", "--region", "RegionOne", "network", interface,
                    server.base_url)
    path = clouds_yaml(tmp_path, cloud, {
        "mycloud": (cloud.user_name("alice"), f"p1-{cloud.suffix}", "Default")})
    user = Cli("", env=client_env(OS_CLIENT_CONFIG_FILE=str(path)), auth=["--os-cloud", "mycloud"])
    net = user.json("network", "create", "demo-net")
    assert net["project_id"] == cloud.projects["p1"]
    assert user.json("network", "segment", "list") == []  # a member reads no segments
