"""A service token bound to a host is that host's agent, and nothing more.

`segmentd token create --roles service --host h1` is for the agent on h1: it reports for h1
and reads the networks, subnets and ports it plugs. A compromised h1 must not be able to
create, move or remove anyone's ports, nor change networks, segments or subnets; the
unbound service principal (a compute scheduler) still binds ports on any host.
"""

from __future__ import annotations

import pytest
import yaml

from segmentd.auth.policy import Policy, check
from segmentd.context import RequestContext
from tests.factories import error_of, issue_token
from tests.security.support import auth, segmentd, token_api
from tests.security.test_authz_matrix import (
    FIXTURE_HOST,
    HOOK_SETTINGS,
    OWNER,
    host_report,
    issue_principals,
    make_objects,
    row_counts,
    snapshot,
)

AGENT_HOST, OTHER_HOST = "h1", "h2"


def bind_port(api, service: dict, network_id: str, host: str) -> dict:
    """A port of OWNER bound to `host`, as a compute scheduler (unbound service) makes it."""
    resp = api.post("/v2.0/ports", headers=service, json={"port": {
        "network_id": network_id, "project_id": OWNER, "binding:host_id": host}})
    assert resp.status_code == 201, resp.text
    port = resp.json()["port"]
    assert port["binding:host_id"] == host and port["binding:vif_type"] == "ovs", port
    return port


def world(api, creds: dict) -> dict:
    """The matrix's objects of OWNER, both hosts reported, and a port of OWNER on each."""
    fx = make_objects(api, creds["admin"], creds["service"])
    for host in (AGENT_HOST, OTHER_HOST):
        resp = api.post("/v2.0/host-reports", json=host_report(host), headers=creds["service"])
        assert resp.status_code == 201, resp.text
    for host in (AGENT_HOST, OTHER_HOST):
        fx[f"port_on_{host}"] = bind_port(api, creds["service"], fx["network"]["id"], host)
    return fx


def state(api, admin: dict, fx: dict) -> tuple:
    """Every object of `world` as the admin sees it, and the rows of every table that counts."""
    ports = tuple(api.get(f"/v2.0/ports/{fx[f'port_on_{h}']['id']}", headers=admin).json()
                  for h in (AGENT_HOST, OTHER_HOST))
    return snapshot(api, admin, fx), ports, row_counts(api)


def attacks(fx: dict) -> list[tuple[str, str, dict | None, int, str]]:
    """(method, url, body, status, error type): what a compromised h1 tries."""
    net, seg, sub = fx["network"]["id"], fx["segment"]["id"], fx["subnet"]["id"]
    on_h1, on_h2 = fx["port_on_h1"]["id"], fx["port_on_h2"]["id"]
    refused = "PolicyNotAuthorized"
    return [
        # A port in another project, bound to another host; or any port at all.
        ("POST", "/v2.0/ports", {"port": {"network_id": net, "project_id": OWNER,
                                          "binding:host_id": OTHER_HOST}}, 403, refused),
        ("POST", "/v2.0/ports", {"port": {"network_id": net}}, 403, refused),
        # Moving ports between hosts, unbinding, or any other change.
        ("PUT", f"/v2.0/ports/{on_h1}", {"port": {"binding:host_id": OTHER_HOST}}, 403, refused),
        ("PUT", f"/v2.0/ports/{on_h2}", {"port": {"binding:host_id": AGENT_HOST}}, 403, refused),
        ("PUT", f"/v2.0/ports/{on_h1}", {"port": {"binding:host_id": ""}}, 403, refused),
        ("PUT", f"/v2.0/ports/{on_h1}", {"port": {"admin_state_up": False}}, 403, refused),
        ("DELETE", f"/v2.0/ports/{on_h1}", None, 403, refused),
        ("DELETE", f"/v2.0/ports/{on_h2}", None, 403, refused),
        ("DELETE", f"/v2.0/ports/{fx['port']['id']}", None, 403, refused),
        ("POST", "/v2.0/networks", {"network": {"name": "agent-made"}}, 403, refused),
        ("PUT", f"/v2.0/networks/{net}", {"network": {"admin_state_up": False}}, 403, refused),
        ("DELETE", f"/v2.0/networks/{net}", None, 403, refused),
        ("POST", "/v2.0/segments", {"segment": {"network_id": net, "network_type": "geneve"}},
         403, refused),
        # Segments are admin-only to read: hidden, 404 like a missing one.
        ("PUT", f"/v2.0/segments/{seg}", {"segment": {"name": "agent-named"}}, 404,
         "SegmentNotFound"),
        ("DELETE", f"/v2.0/segments/{seg}", None, 404, "SegmentNotFound"),
        ("POST", "/v2.0/subnets", {"subnet": {"network_id": net, "cidr": "10.79.0.0/24",
                                              "ip_version": 4}}, 403, refused),
        ("PUT", f"/v2.0/subnets/{sub}", {"subnet": {"enable_dhcp": False}}, 403, refused),
        ("DELETE", f"/v2.0/subnets/{sub}", None, 403, refused),
        # Reports for another host: one that has ports, one that has an agent already.
        ("POST", "/v2.0/host-reports", host_report(OTHER_HOST), 403, "HostReportNotAllowed"),
        ("POST", "/v2.0/host-reports", host_report(FIXTURE_HOST), 403, "HostReportNotAllowed"),
    ]


@pytest.mark.sqlite_only  # an authorization matrix: refused before any SQL runs
def test_a_host_bound_service_token_changes_no_network_segment_subnet_or_port(db_url):
    """The attack sequence of issue 19, each step 403 (404 where hidden) changing nothing."""
    made = segmentd("token", "create", "--project", "agents", "--roles", "service",
                    "--host", AGENT_HOST, "--name", "agent-h1", db_url=db_url)
    assert made.returncode == 0, made.stderr
    agent = auth(made.stdout.strip())
    api = token_api(db_url, **HOOK_SETTINGS)
    with api.client:
        creds = issue_principals(api)
        admin = creds["admin"]
        fx = world(api, creds)
        problems = []
        for method, url, body, status, kind in attacks(fx):
            before = state(api, admin, fx)
            api.clear_events()
            resp = api.request(method, url, json=body, headers=agent)
            step = f"{method} {url} {body}"
            if resp.status_code != status:
                problems.append(f"{step}: {resp.status_code} {resp.text[:200]}")
                continue
            error = error_of(resp)
            if error["type"] != kind or not error["message"]:
                problems.append(f"{step}: {error}")
            if state(api, admin, fx) != before or api.events:
                problems.append(f"{step}: refused, yet something changed")
        assert problems == [], "\n" + "\n".join(problems)
        # The ports are where the scheduler put them.
        for host in (AGENT_HOST, OTHER_HOST):
            port = api.get(f"/v2.0/ports/{fx[f'port_on_{host}']['id']}", headers=admin)
            assert port.json()["port"]["binding:host_id"] == host


def test_a_host_agent_reports_for_its_host_and_reads_the_ports_it_plugs(db_url):
    api = token_api(db_url, **HOOK_SETTINGS)
    with api.client:
        creds = issue_principals(api)
        fx = world(api, creds)
        agent, _ = issue_token(api, "agents", ["service"], name="agent-h1", host=AGENT_HOST)
        agent = auth(agent)

        for _ in range(2):  # the first report and a heartbeat
            resp = api.post("/v2.0/host-reports", json=host_report(AGENT_HOST), headers=agent)
            assert resp.status_code == 201, resp.text
            assert resp.json()["agent"]["host"] == AGENT_HOST
        mine = fx["port_on_h1"]
        listed = api.get("/v2.0/ports", params={"binding:host_id": AGENT_HOST}, headers=agent)
        assert listed.status_code == 200, listed.text
        assert [p["id"] for p in listed.json()["ports"]] == [mine["id"]]
        shown = api.get(f"/v2.0/ports/{mine['id']}", headers=agent).json()["port"]
        assert (shown["binding:host_id"], shown["binding:vif_type"]) == (AGENT_HOST, "ovs")
        assert shown["binding:vif_details"] == mine["binding:vif_details"]
        network = api.get(f"/v2.0/networks/{fx['network']['id']}", headers=agent)
        assert network.status_code == 200
        assert network.json()["network"]["mtu"] == fx["network"]["mtu"]
        subnets = api.get("/v2.0/subnets", params={"network_id": fx["network"]["id"]},
                          headers=agent).json()["subnets"]
        assert [s["id"] for s in subnets] == [fx["subnet"]["id"]]


def test_the_unbound_service_binds_moves_and_deletes_any_projects_port(db_url):
    """A compute scheduler's token (service, no host) keeps what Neutron gives Nova."""
    api = token_api(db_url, **HOOK_SETTINGS)
    with api.client:
        creds = issue_principals(api)
        fx = world(api, creds)
        service = creds["service"]
        port = bind_port(api, service, fx["network"]["id"], OTHER_HOST)
        assert port["project_id"] == OWNER
        url = f"/v2.0/ports/{port['id']}"
        moved = api.put(url, json={"port": {"binding:host_id": AGENT_HOST}}, headers=service)
        assert moved.status_code == 200 and moved.json()["port"]["binding:host_id"] == AGENT_HOST
        assert api.delete(url, headers=service).status_code == 204
        gone = api.get(url, headers=creds["admin"])
        assert gone.status_code == 404
        assert error_of(gone)["type"] == "PortNotFound"


@pytest.mark.parametrize("roles", [["admin"], ["member"], ["admin", "service"]])
def test_a_host_bound_token_of_any_role_is_only_its_hosts_agent(db_url, roles):
    """The host binding narrows every role: a bound admin or member is no admin or member."""
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        fx = make_objects(api, creds["admin"])
        secret, _ = issue_token(api, OWNER, roles, name="bound", host=AGENT_HOST)
        bound = auth(secret)
        counts = row_counts(api)
        net_url = f"/v2.0/networks/{fx['network']['id']}"
        made = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=bound)
        assert (made.status_code, error_of(made)["type"]) == (403, "PolicyNotAuthorized")
        renamed = api.put(net_url, json={"network": {"name": "x"}}, headers=bound)
        # Only a host agent (service) reads the network; to the others it is hidden.
        expected = (403, "PolicyNotAuthorized") if "service" in roles else (404, "NetworkNotFound")
        assert (renamed.status_code, error_of(renamed)["type"]) == expected, renamed.text
        hosts = api.get("/v2.0/hosts", headers=bound)
        assert (hosts.status_code, error_of(hosts)["type"]) == (403, "PolicyNotAuthorized")
        assert api.get(f"/v2.0/segments/{fx['segment']['id']}", headers=bound).status_code == 404
        assert row_counts(api) == counts
        report = api.post("/v2.0/host-reports", json=host_report(AGENT_HOST), headers=bound)
        assert report.status_code == (201 if "service" in roles else 403), report.text


def test_policy_decisions_are_never_shared_between_bound_and_unbound_credentials():
    """The decision cache keys on the host binding: same roles, project and user otherwise."""
    target = {"project_id": OWNER, "network_project_id": OWNER, "shared": False, "host": "h1"}
    unbound = RequestContext.build("agents", {"service"}, user_id="u")
    bound = RequestContext.build("agents", {"service"}, user_id="u", host="h1")
    elsewhere = RequestContext.build("agents", {"service"}, user_id="u", host="h2")
    for _ in range(2):  # the second round is answered from the cache
        assert [check(c, "update_port", target) for c in (unbound, bound, elsewhere)] == [
            True, False, False]
        assert [check(c, "create_host_report", target) for c in (unbound, bound, elsewhere)] == [
            True, True, False]
        assert [check(c, "get_port", target) for c in (unbound, bound, elsewhere)] == [
            True, True, True]


def test_policy_dump_writes_down_the_capability_model_of_the_service_role(tmp_path):
    """`segmentd policy dump`: the rules in effect, a usable policy file, each default under
    a comment saying what it is for; the service role's two principals among them."""
    out = segmentd("policy", "dump", db_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout) == Policy().rules()
    lines = out.stdout.splitlines()
    described = {next(iter(yaml.safe_load(lines[i + 1]))): line.removeprefix("# ")
                 for i, line in enumerate(lines) if line.startswith("# ")}
    assert described == Policy().descriptions()
    assert "compute scheduler" in described["service_api"]
    assert "changes no network, segment, subnet or port" in described["host_agent"]
    assert lines[lines.index("# " + described["create_host_report"]) + 1] == (
        "create_host_report: (rule:service_api or (rule:host_agent and rule:own_host))")
