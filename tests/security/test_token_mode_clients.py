"""python-openstackclient and openstacksdk against `segmentd serve` in token mode, real tokens.

The admin token is the one `segmentd serve` prints when it bootstraps an empty database; the
other project's member token comes from `segmentd token create`. Both clients use
admin_token auth (the token is sent as X-Auth-Token, as with a Keystone token).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from openstack import exceptions as sdk_exc

from tests.e2e.server import EXAMPLE_CONFIG, bootstrap_tokens, database, start_server
from tests.e2e.test_openstack_clients import (
    NOT_FOUND,
    Cli,
    api_get,
    check_segment,
    sdk_connect,
    sdk_segment,
)
from tests.factories import error_of
from tests.security.support import auth, segmentd

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]


@dataclass
class TokenServer:
    url: str
    admin: str  # the bootstrap admin token (project "admin")
    other: str  # a member of project "other"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """One server for the module on the shipped example config (token mode), on a fresh
    SQLite database."""
    workdir = tmp_path_factory.mktemp("token-mode")
    with database("sqlite", workdir) as db_url:
        server = start_server(workdir, db_url, name="segmentd-token", config=EXAMPLE_CONFIG)
        try:
            (admin,) = bootstrap_tokens(server)
            out = segmentd("token", "create", "--project", "other", "--roles", "member",
                           "--name", "other-member", db_url=db_url)
            assert out.returncode == 0, out.stderr
            yield TokenServer(server.base_url, admin, out.stdout.strip())
        except BaseException:
            print(f"--- {server.log_path} ---\n{server.log()}")
            raise
        finally:
            server.stop()


def admin_network(server: TokenServer, name: str) -> dict:
    """A VLAN provider network of the admin's project, made through the API."""
    resp = httpx.post(f"{server.url}/v2.0/networks", headers=auth(server.admin), json={
        "network": {"name": name, "provider:network_type": "vlan",
                    "provider:physical_network": "physnet1"}})
    assert resp.status_code == 201, resp.text
    return resp.json()["network"]


# -- as the admin ------------------------------------------------------------------------------

def test_cli_with_the_bootstrap_admin_token_create_list_show_rename_delete(token_server):
    cli = Cli(token_server.url, token_server.admin)
    name = f"net-{uuid.uuid4().hex[:6]}"
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", name)
    assert net["project_id"] == "admin" and net["provider:network_type"] == "vlan"

    seg = cli.json("network", "segment", "create", "--network", name, "--network-type", "vlan",
                   "--physical-network", "physnet1", "seg-a")
    check_segment(seg, network_id=net["id"], network_type="vlan", physnet="physnet1",
                  name="seg-a")
    listed = cli.json("network", "segment", "list", "--network", net["id"])
    assert sorted(r["ID"] for r in listed) == sorted(
        s["id"] for s in api_get(token_server, f"/v2.0/segments?network_id={net['id']}")
        .json()["segments"])
    assert seg["id"] in {r["ID"] for r in listed} and len(listed) == 2
    assert cli.json("network", "segment", "show", seg["id"]) == seg

    assert cli.ok("network", "segment", "set", "--name", "renamed", seg["id"]) == ""
    renamed = api_get(token_server, f"/v2.0/segments/{seg['id']}").json()["segment"]
    assert (renamed["name"], renamed["revision_number"]) == ("renamed", 1)

    assert cli.ok("network", "segment", "delete", seg["id"]) == ""
    assert cli.ok("network", "delete", net["id"]) == ""
    for path, error_type in ((f"/v2.0/networks/{net['id']}", "NetworkNotFound"),
                             (f"/v2.0/segments/{seg['id']}", "SegmentNotFound")):
        gone = api_get(token_server, path)
        assert gone.status_code == 404
        assert error_of(gone)["type"] == error_type


def test_cli_with_an_unknown_token_is_refused(token_server):
    out = Cli(token_server.url, "sgd_" + uuid.uuid4().hex).fails("network", "list")
    assert "401" in out, out


def test_sdk_with_the_bootstrap_admin_token_create_list_show_rename_delete(token_server):
    conn = sdk_connect(token_server, token=token_server.admin)
    net = conn.network.create_network(name="sdk-net", provider_network_type="vlan",
                                      provider_physical_network="physnet1")
    assert net.project_id == "admin" and net.provider_network_type == "vlan"
    seg = conn.network.create_segment(network_id=net.id, network_type="vlan",
                                      physical_network="physnet1", name="sdk-seg")
    check_segment(sdk_segment(seg), network_id=net.id, network_type="vlan",
                  physnet="physnet1", name="sdk-seg")
    assert seg.id in {s.id for s in conn.network.segments(network_id=net.id)}
    assert conn.network.get_segment(seg.id).name == "sdk-seg"
    renamed = conn.network.update_segment(seg, name="renamed")
    assert (renamed.name, renamed.revision_number) == ("renamed", 1)
    conn.network.delete_segment(seg)
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_segment(seg.id)
    conn.network.delete_network(net)
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_network(net.id)

    stranger = sdk_connect(token_server, token="sgd_" + uuid.uuid4().hex)
    with pytest.raises(sdk_exc.HttpException) as refused:
        list(stranger.network.networks())
    assert refused.value.status_code == 401


# -- as a member of another project ------------------------------------------------------------

def test_cli_member_of_another_project_sees_nothing_of_the_admins_project(token_server):
    theirs = admin_network(token_server, f"admin-net-{uuid.uuid4().hex[:6]}")
    mine = httpx.post(f"{token_server.url}/v2.0/networks", headers=auth(token_server.other),
                      json={"network": {"name": "other-net"}})
    assert mine.status_code == 201, mine.text
    cli = Cli(token_server.url, token_server.other)

    listed = cli.json("network", "list")
    assert [r["ID"] for r in listed] == [mine.json()["network"]["id"]]
    assert cli.json("network", "segment", "list") == []
    assert NOT_FOUND.search(cli.fails("network", "show", theirs["id"]))


def test_sdk_member_of_another_project_sees_nothing_of_the_admins_project(token_server):
    theirs = admin_network(token_server, f"admin-net-{uuid.uuid4().hex[:6]}")
    conn = sdk_connect(token_server, token=token_server.other)
    mine = conn.network.create_network(name="sdk-mine")
    assert mine.project_id == "other" and mine.provider_network_type is None

    visible = list(conn.network.networks())
    assert mine.id in {n.id for n in visible} and theirs["id"] not in {n.id for n in visible}
    assert {n.project_id for n in visible} == {"other"}
    assert list(conn.network.segments()) == []
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_network(theirs["id"])
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.delete_network(theirs["id"], ignore_missing=False)
    with pytest.raises(sdk_exc.ForbiddenException):  # segments are admin-only, even on its own
        conn.network.create_segment(network_id=mine.id, network_type="geneve")
    assert api_get(token_server, f"/v2.0/networks/{theirs['id']}").status_code == 200
    conn.network.delete_network(mine)
