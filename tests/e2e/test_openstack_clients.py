"""The real OpenStack clients (python-openstackclient and openstacksdk) against `segmentd serve`
on the shipped example config, with its bootstrap admin token."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import threading
import uuid
import warnings

import httpx
import openstack
import pytest
from openstack import exceptions as sdk_exc

from tests.e2e.server import BOOTSTRAP_PROJECT, HTTP, VENV_BIN, Live

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # openstacksdk internals
]

OPENSTACK = str(VENV_BIN / "openstack")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_FOUND = re.compile(r"could not be found|No \w+ found for", re.IGNORECASE)
SEGMENT_KEYS = {
    "id", "network_id", "name", "description", "physical_network", "network_type",
    "segmentation_id", "created_at", "updated_at", "revision_number",
}
NETWORK_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "admin_state_up", "shared",
    "status", "mtu", "subnets", "l2_adjacency", "created_at", "updated_at", "revision_number",
}
PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
VXLAN_MTU = 1500 - 20 - 30  # global_physnet_mtu minus IPv4 and VXLAN headers


# -- helpers -------------------------------------------------------------------------------

def client_env(**extra) -> dict[str, str]:
    """The environment without any OS_* settings of whoever runs the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(extra)
    return env


def run_cli(*args, auth: list[str], env=None, process: bool = False) -> subprocess.CompletedProcess:
    """`openstack *auth *args`: the installed executable when `process`, else the same
    program (openstackclient's shell.main) in this process, which skips the ~1.3 s of CPU a
    fresh interpreter spends importing it. The clouds.yaml tests run the executable."""
    env = env or client_env()
    if process:
        return subprocess.run([OPENSTACK, *auth, *args], capture_output=True, text=True,
                              timeout=60, env=env)
    return _run_in_process([*auth, *args], env)


_IN_PROCESS = threading.Lock()  # one stdout, one environment: one run at a time


def _run_in_process(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """shell.main(argv) with `env` as the environment and its own stdout and stderr, one run
    at a time; the logging and warnings settings it changes are put back afterwards, and the
    API clients it caches on its ClientManager class (one per process, so a later run would
    reuse the endpoint of an earlier one) are dropped."""
    from osc_lib.clientmanager import ClientCache
    from openstackclient import shell
    from openstackclient.common.clientmanager import ClientManager

    with _IN_PROCESS:
        out, err = io.StringIO(), io.StringIO()
        loggers = [logging.getLogger(), *(
            logger for logger in logging.root.manager.loggerDict.values()
            if isinstance(logger, logging.Logger))]
        saved_logging = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
        saved_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                try:
                    code = shell.main(argv)
                except SystemExit as stop:  # argparse's usage errors
                    code = stop.code if isinstance(stop.code, int) else 1
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            for logger, level, handlers in saved_logging:
                if logger.level != level:  # each setLevel clears every logger's cache
                    logger.setLevel(level)
                if logger.handlers != handlers:
                    logger.handlers[:] = handlers
            for cls in ClientManager.__mro__:  # plugins set theirs on osc_lib's base class
                for attribute in vars(cls).values():
                    if isinstance(attribute, ClientCache):
                        attribute._handle = None
    return subprocess.CompletedProcess(["openstack", *argv], code, out.getvalue(),
                                       err.getvalue())


def token_auth(endpoint: str, token: str) -> list[str]:
    return ["--os-auth-type", "admin_token", "--os-endpoint", endpoint, "--os-token", token]


class Cli:
    """`openstack ...` with admin_token auth against one endpoint (the executable when
    `process`, else in this process: see run_cli)."""

    def __init__(self, endpoint: str, token: str | None = None, env=None, auth=None,
                 process: bool = False):
        self.auth = auth if auth is not None else token_auth(endpoint, token)
        self.env = env
        self.process = process

    def run(self, *args) -> subprocess.CompletedProcess:
        return run_cli(*args, auth=self.auth, env=self.env, process=self.process)

    def ok(self, *args) -> str:
        out = self.run(*args)
        assert out.returncode == 0, f"openstack {' '.join(args)}\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def json(self, *args):
        return json.loads(self.ok(*args, "-f", "json"))

    def fails(self, *args) -> str:
        out = self.run(*args)
        assert out.returncode != 0, f"openstack {' '.join(args)} succeeded:\n{out.stdout}"
        return out.stdout + out.stderr


def admin_cli(live: Live) -> Cli:
    return Cli(live.url, live.admin)


def as_admin(live: Live) -> dict[str, str]:
    return {"X-Auth-Token": live.admin}


def api_get(live: Live, path: str, **params) -> httpx.Response:
    return HTTP.get(live.url + path, params=params, headers=as_admin(live))


def walk_pages(live: Live, limit: int) -> list[dict]:
    """GET the segments page by page, following `segments_links` next until it ends."""
    items, next_url, pages = [], f"{live.url}/v2.0/segments?limit={limit}", 0
    while next_url:
        resp = HTTP.get(next_url, headers=as_admin(live))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["segments"]) <= limit
        items += body["segments"]
        links = {link["rel"]: link["href"] for link in body.get("segments_links", [])}
        if pages:
            assert "previous" in links, body
        next_url = links.get("next")
        pages += 1
        assert pages < 100, "pagination does not end"
    return items


def check_segment(seg: dict, *, network_id, network_type, physnet, name, revision=0) -> None:
    """Every attribute of a segment as the API (and `segment show -f json`) returns it."""
    assert set(seg) == SEGMENT_KEYS, seg
    assert UUID.match(seg["id"])
    assert seg["network_id"] == network_id
    assert seg["name"] == name
    assert seg["description"] == ""
    assert seg["network_type"] == network_type
    assert seg["physical_network"] == physnet
    if network_type == "vlan":
        assert 100 <= seg["segmentation_id"] <= 2999  # physnet1's range
    else:
        assert 1 <= seg["segmentation_id"] <= 100_000  # the example's vxlan vni_ranges
    assert TIMESTAMP.match(seg["created_at"]) and TIMESTAMP.match(seg["updated_at"])
    assert seg["updated_at"] >= seg["created_at"]
    assert seg["revision_number"] == revision


def check_vlan_network(net: dict, name: str) -> None:
    """A fresh one-segment VLAN provider network as the API returns it."""
    assert set(net) == NETWORK_KEYS | set(PROVIDER_KEYS), net
    assert UUID.match(net["id"]) and net["name"] == name and net["description"] == ""
    assert net["project_id"] == net["tenant_id"] == BOOTSTRAP_PROJECT
    assert net["admin_state_up"] is True and net["shared"] is False
    assert net["status"] == "ACTIVE" and net["mtu"] == 1500 and net["subnets"] == []
    assert net["provider:network_type"] == "vlan"
    assert net["provider:physical_network"] == "physnet1"
    assert 100 <= net["provider:segmentation_id"] <= 2999
    assert TIMESTAMP.match(net["created_at"]) and net["updated_at"] == net["created_at"]
    assert net["revision_number"] == 0


def check_fields_selection(live: Live, segment_id: str) -> None:
    resp = HTTP.get(
        f"{live.url}/v2.0/segments/{segment_id}", params=[("fields", "name"), ("fields", "id")],
        headers=as_admin(live),
    )
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["segment"]) == {"id", "name"}
    assert resp.json()["segment"]["id"] == segment_id


def set_mtu(live: Live, network_id: str, mtu: int) -> dict:
    """Raw PUT of the MTU as a JSON integer."""
    resp = HTTP.put(f"{live.url}/v2.0/networks/{network_id}", json={"network": {"mtu": mtu}},
                     headers=as_admin(live))
    assert resp.status_code == 200, resp.text
    return resp.json()["network"]


# -- python-openstackclient ----------------------------------------------------------------

@pytest.mark.postgresql
def test_cli_segment_lifecycle_create_list_paginate_rename_delete(pg_live_server):
    """The whole segment scenario through `openstack ... -f json` with admin_token auth."""
    cli = admin_cli(pg_live_server)
    net_name, seg_name = f"net-{uuid.uuid4().hex[:6]}", "seg-vxlan"

    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", net_name)
    net_id = net["id"]
    raw_net = api_get(pg_live_server, f"/v2.0/networks/{net_id}").json()["network"]
    check_vlan_network(raw_net, net_name)
    for key in NETWORK_KEYS - {"tenant_id"}:  # OSC prints the API's values (and more)
        assert net[key] == raw_net[key], key
    for key in PROVIDER_KEYS:
        assert net[key] == raw_net[key], key
    assert net["segments"] is None

    # A VXLAN segment carries at most 1450: segmentd refuses it on an MTU-1500 network.
    err = cli.fails("network", "segment", "create", "--network", net_id,
                    "--network-type", "vxlan", seg_name)
    assert f"Requested MTU is too big, maximum is {VXLAN_MTU}" in err
    lowered = set_mtu(pg_live_server, net_id, VXLAN_MTU)
    assert lowered["mtu"] == VXLAN_MTU and lowered["revision_number"] == 1

    seg = cli.json("network", "segment", "create", "--network", net_name,
                   "--network-type", "vxlan", seg_name)
    check_segment(seg, network_id=net_id, network_type="vxlan", physnet=None, name=seg_name)
    assert seg == api_get(pg_live_server, f"/v2.0/segments/{seg['id']}").json()["segment"]

    listed = cli.json("network", "segment", "list", "--network", net_id)
    assert [r["Network"] for r in listed] == [net_id, net_id]
    by_type = {r["Network Type"]: r for r in listed}
    assert set(by_type) == {"vlan", "vxlan"}
    vlan_id = by_type["vlan"]["ID"]
    assert by_type["vlan"]["Segment"] == raw_net["provider:segmentation_id"]
    assert by_type["vlan"]["Name"] is None
    assert by_type["vxlan"] == {"ID": seg["id"], "Name": seg_name, "Network": net_id,
                                "Network Type": "vxlan", "Segment": seg["segmentation_id"]}
    vlan_seg = cli.json("network", "segment", "show", vlan_id)
    check_segment(vlan_seg, network_id=net_id, network_type="vlan", physnet="physnet1", name=None)
    # The CLI has no type filter: check it on the API the CLI uses.
    typed = api_get(pg_live_server, "/v2.0/segments", network_id=net_id, network_type="vxlan")
    assert [s["id"] for s in typed.json()["segments"]] == [seg["id"]]

    shown = cli.json("network", "show", net_id)
    assert shown["mtu"] == VXLAN_MTU and shown["status"] == "ACTIVE"
    assert shown["segments"] == [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
         "provider:segmentation_id": vlan_seg["segmentation_id"]},
        {"provider:network_type": "vxlan", "provider:physical_network": None,
         "provider:segmentation_id": seg["segmentation_id"]},
    ]
    assert all(shown[k] is None for k in PROVIDER_KEYS)

    everything = cli.json("network", "segment", "list")
    paged = cli.json("network", "segment", "list", "--limit", "1")
    assert sorted(r["ID"] for r in paged) == sorted(r["ID"] for r in everything)
    assert len({r["ID"] for r in paged}) == len(paged) == 2
    raw_paged = walk_pages(pg_live_server, limit=1)
    assert [s["id"] for s in raw_paged] == sorted(r["ID"] for r in everything)
    check_fields_selection(pg_live_server, seg["id"])

    assert cli.ok("network", "segment", "set", "--name", "renamed", seg["id"]) == ""
    renamed = cli.json("network", "segment", "show", seg["id"])
    check_segment(renamed, network_id=net_id, network_type="vxlan", physnet=None,
                  name="renamed", revision=1)
    assert renamed["segmentation_id"] == seg["segmentation_id"]
    assert renamed["created_at"] == seg["created_at"]

    assert cli.ok("network", "segment", "delete", seg["id"]) == ""
    assert NOT_FOUND.search(cli.fails("network", "segment", "show", seg["id"]))
    assert [r["ID"] for r in cli.json("network", "segment", "list", "--network", net_id)] == [
        vlan_id
    ]

    assert cli.ok("network", "delete", net_id) == ""
    assert NOT_FOUND.search(cli.fails("network", "show", net_id))
    assert NOT_FOUND.search(cli.fails("network", "segment", "show", vlan_id))
    assert api_get(pg_live_server, "/v2.0/segments").json() == {"segments": []}


@pytest.mark.parametrize("suffix", ["", "/v2.0"])
def test_cli_through_clouds_yaml_with_endpoint_with_or_without_version(
    sqlite_live_server, tmp_path, suffix
):
    """`--os-cloud` from a clouds.yaml with admin_token auth; the endpoint may name /v2.0."""
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n"
        "  segmentd:\n"
        "    auth_type: admin_token\n"
        "    auth:\n"
        f"      endpoint: {sqlite_live_server.url}{suffix}\n"
        f"      token: {sqlite_live_server.admin}\n"
    )
    cli = Cli(sqlite_live_server.url, env=client_env(OS_CLIENT_CONFIG_FILE=str(clouds)),
              auth=["--os-cloud", "segmentd"], process=True)
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", "via-clouds-yaml")
    assert net["provider:network_type"] == "vlan" and net["mtu"] == 1500
    segs = cli.json("network", "segment", "list", "--network", "via-clouds-yaml")
    assert [(s["Network"], s["Network Type"]) for s in segs] == [(net["id"], "vlan")]
    assert cli.ok("network", "delete", net["id"]) == ""

    direct = Cli(f"{sqlite_live_server.url}{suffix}", sqlite_live_server.admin, process=True)
    assert direct.json("network", "list") == []


@pytest.mark.postgresql
def test_cli_integer_options_sent_as_strings_are_accepted(pg_live_server):
    """`network create --provider-segment N` and `network set --mtu N`: the CLI sends digit strings."""
    cli = admin_cli(pg_live_server)
    net = cli.json("network", "create", "--provider-network-type", "vlan",
                   "--provider-physical-network", "physnet1", "--provider-segment", "200", "n")
    assert net["provider:segmentation_id"] == 200
    cli.ok("network", "set", "--mtu", "1450", net["id"])
    assert cli.json("network", "show", net["id"])["mtu"] == 1450


# -- openstacksdk ----------------------------------------------------------------------------

def sdk_connect(live: Live, suffix: str = "", *, token: str | None = None):
    """An openstacksdk connection to `live` (its URL and `suffix`) with `token`, by default
    the admin's."""
    return openstack.connect(
        auth_type="admin_token",
        auth={"endpoint": live.url + suffix, "token": live.admin if token is None else token},
        load_yaml_config=False, load_envvars=False,
    )


def sdk_segment(seg) -> dict:
    """The API attributes of an sdk Segment."""
    return {k: getattr(seg, k) for k in SEGMENT_KEYS}


@pytest.mark.parametrize("suffix", ["", "/v2.0"])
def test_sdk_segment_lifecycle_create_filter_paginate_rename_delete(live_server, suffix):
    """The segment scenario through openstacksdk's network proxy with admin_token auth."""
    conn = sdk_connect(live_server, suffix)
    net = conn.network.create_network(
        name="sdk-net", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    check_vlan_network(api_get(live_server, f"/v2.0/networks/{net.id}").json()["network"],
                       "sdk-net")
    assert (net.provider_network_type, net.provider_physical_network) == ("vlan", "physnet1")
    assert 100 <= net.provider_segmentation_id <= 2999
    assert net.mtu == 1500 and net.status == "ACTIVE" and net.project_id == BOOTSTRAP_PROJECT
    assert net.is_admin_state_up is True and net.is_shared is False
    assert net.revision_number == 0 and TIMESTAMP.match(net.created_at)

    with pytest.raises(sdk_exc.BadRequestException, match="Requested MTU is too big"):
        conn.network.create_segment(network_id=net.id, network_type="vxlan")
    net = conn.network.update_network(net, mtu=VXLAN_MTU)
    assert net.mtu == VXLAN_MTU and net.revision_number == 1

    created = [
        conn.network.create_segment(network_id=net.id, network_type="vxlan", name=f"vx{i}")
        for i in range(3)
    ]
    for i, seg in enumerate(created):
        check_segment(sdk_segment(seg), network_id=net.id, network_type="vxlan", physnet=None,
                      name=f"vx{i}")
        assert sdk_segment(seg) == api_get(live_server, f"/v2.0/segments/{seg.id}").json()[
            "segment"]
    vni = sorted(s.segmentation_id for s in created)
    assert len(set(vni)) == 3

    (vlan_seg,) = conn.network.segments(network_id=net.id, network_type="vlan")
    check_segment(sdk_segment(vlan_seg), network_id=net.id, network_type="vlan",
                  physnet="physnet1", name=None)
    assert vlan_seg.segmentation_id == net.provider_segmentation_id
    vxlan = list(conn.network.segments(network_id=net.id, network_type="vxlan"))
    assert sorted(s.id for s in vxlan) == sorted(s.id for s in created)
    assert list(conn.network.segments(network_id=net.id, network_type="geneve")) == []

    shown = conn.network.get_network(net.id)
    assert shown.provider_network_type is None
    assert shown.segments == [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
         "provider:segmentation_id": vlan_seg.segmentation_id}
    ] + [
        {"provider:network_type": "vxlan", "provider:physical_network": None,
         "provider:segmentation_id": s.segmentation_id} for s in created
    ]

    all_ids = sorted(s.id for s in conn.network.segments())
    assert len(all_ids) == 4
    for limit in (1, 3, 4, 10):
        paged = [s.id for s in conn.network.segments(limit=limit)]
        assert len(paged) == len(set(paged)) == 4, (limit, paged)
        assert sorted(paged) == all_ids
        assert [s["id"] for s in walk_pages(live_server, limit)] == all_ids
    check_fields_selection(live_server, created[0].id)

    renamed = conn.network.update_segment(created[0], name="renamed", description="d")
    assert (renamed.name, renamed.description, renamed.revision_number) == ("renamed", "d", 1)
    assert renamed.segmentation_id == created[0].segmentation_id
    assert conn.network.get_segment(created[0].id).name == "renamed"

    conn.network.delete_segment(created[0])
    with pytest.raises(sdk_exc.NotFoundException, match="could not be found"):
        conn.network.get_segment(created[0].id)
    assert conn.network.find_segment(created[0].id) is None
    assert len(list(conn.network.segments(network_id=net.id))) == 3

    conn.network.delete_network(net)
    with pytest.raises(sdk_exc.NotFoundException, match="could not be found"):
        conn.network.get_network(net.id)
    assert list(conn.network.segments()) == []
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.delete_segment(vlan_seg, ignore_missing=False)


def test_sdk_bulk_port_create_makes_every_port_or_none(live_server):
    """openstacksdk's create_ports sends Neutron's bulk body; a failing item leaves nothing."""
    conn = sdk_connect(live_server)
    net = conn.network.create_network(name="bulk-net")
    # a /29 has six usable addresses, one of them the gateway: room for five ports
    conn.network.create_subnet(network_id=net.id, cidr="10.9.0.0/29", ip_version=4)
    made = list(conn.network.create_ports([
        {"network_id": net.id, "name": "b1"}, {"network_id": net.id, "name": "b2"}]))
    assert [p.name for p in made] == ["b1", "b2"]
    shown = api_get(live_server, "/v2.0/ports", network_id=net.id).json()["ports"]
    assert sorted(p["id"] for p in shown) == sorted(p.id for p in made)
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in shown) == \
        sorted(p.fixed_ips[0]["ip_address"] for p in made)

    with pytest.raises(sdk_exc.ConflictException, match="No more IP addresses available"):
        list(conn.network.create_ports([{"network_id": net.id, "name": f"c{i}"}
                                        for i in range(4)]))
    after = api_get(live_server, "/v2.0/ports", network_id=net.id).json()["ports"]
    assert sorted(p["name"] for p in after) == ["b1", "b2"]
