"""What a Keystone token maps to, segmentd's own tokens beside them, host agents with
Keystone credentials, and bad tokens that do not become Keystone requests."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.factories import report_body
from tests.keystone_auth.conftest import PASSWORD, call

pytestmark = pytest.mark.slow


def neutron_error(resp, status: int, kind: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["NeutronError"]["type"] == kind


def test_unscoped_and_domain_scoped_tokens_are_refused(live, cloud):
    unscoped, _ = cloud.keystone.issue_token(cloud.user_name("alice"), PASSWORD)
    domain_admin = cloud.user_name("dadmin")
    user_id = cloud.keystone.create_user(domain_admin, PASSWORD)
    cloud.keystone.request(
        "PUT", f"/domains/default/users/{user_id}/roles/{cloud.keystone.role_id('admin')}")
    scoped, body = cloud.keystone.issue_token(domain_admin, PASSWORD, domain="Default")
    assert "domain" in body and "project" not in body
    for token in (unscoped, scoped):
        neutron_error(call(live.url, "GET", "/v2.0/networks", token), 401, "NotAuthenticated")


def test_a_system_scoped_admin_is_admin_and_names_the_project_it_creates_for(live, cloud):
    user = cloud.user_name("sysadmin")
    cloud.keystone.assign_system_role(cloud.keystone.create_user(user, PASSWORD), "admin")
    token, body = cloud.keystone.issue_token(user, PASSWORD, system=True)
    assert body["system"] == {"all": True}
    alice = cloud.token("alice", "p1")
    mine = call(live.url, "POST", "/v2.0/networks", alice, json={"network": {"name": "a"}})
    assert mine.status_code == 201, mine.text
    listed = call(live.url, "GET", "/v2.0/networks", token).json()["networks"]
    assert mine.json()["network"]["id"] in [n["id"] for n in listed]
    no_project = call(live.url, "POST", "/v2.0/networks", token, json={"network": {"name": "s"}})
    neutron_error(no_project, 400, "HTTPBadRequest")
    assert "project_id" in no_project.json()["NeutronError"]["message"]
    named = call(live.url, "POST", "/v2.0/networks", token,
                 json={"network": {"name": "s", "project_id": cloud.projects["p2"]}})
    assert named.status_code == 201 and named.json()["network"]["project_id"] == cloud.projects["p2"]
    for net in (mine, named):
        assert call(live.url, "DELETE", f"/v2.0/networks/{net.json()['network']['id']}",
                    token).status_code == 204


def test_segmentds_own_tokens_work_beside_keystones(live, cloud):
    """The bootstrap admin token (segmentd's own) is looked up locally, never sent to
    Keystone; a made-up token with segmentd's prefix is 401 like any unknown one."""
    assert call(live.url, "GET", "/v2.0/segments", live.bootstrap).status_code == 200
    neutron_error(call(live.url, "GET", "/v2.0/networks", "sgd_" + "x" * 43), 401,
                  "NotAuthenticated")


def test_only_keystones_tokens_when_local_ones_are_turned_off(request, cloud, tmp_path):
    from tests.keystone_auth.conftest import serve

    server = serve(request, tmp_path, cloud, "keystone-only", accept_local_tokens=False)
    assert "bootstrap admin token" not in server.log()
    assert call(server.base_url, "GET", "/v2.0/networks",
                cloud.token("bob", "p2")).status_code == 200


def test_a_hosts_keystone_user_reports_for_its_own_host_only(request, cloud, tmp_path):
    """Users of host_user_domain_name are host agents bound to the host of their name; a
    service user outside it (a scheduler) is bound to no host."""
    from tests.keystone_auth.conftest import serve

    domain = f"hosts-{cloud.suffix}"
    domain_id = cloud.keystone.create_domain(domain)
    host = f"compute-{cloud.suffix}"
    cloud.keystone.create_user(host, PASSWORD, domain_id=domain_id,
                               project=cloud.projects["service"], roles=("service",))
    agent, _ = cloud.keystone.issue_token(host, PASSWORD, project="service", user_domain=domain)
    server = serve(request, tmp_path, cloud, "host-domain", host_user_domain_name=domain)
    url = server.base_url

    own = call(url, "POST", "/v2.0/host-reports", agent,
               json=report_body(host, tunnel_types=["geneve"]))
    assert own.status_code == 201, own.text
    other = call(url, "POST", "/v2.0/host-reports", agent,
                 json=report_body("compute-elsewhere", tunnel_types=["geneve"]))
    neutron_error(other, 403, "HostReportNotAllowed")
    neutron_error(call(url, "POST", "/v2.0/networks", agent,
                       json={"network": {"name": "by-agent"}}), 403, "PolicyNotAuthorized")

    scheduler = cloud.user_name("scheduler")
    cloud.keystone.create_user(scheduler, PASSWORD, project=cloud.projects["service"],
                               roles=("service",))
    token, _ = cloud.keystone.issue_token(scheduler, PASSWORD, project="service")
    anywhere = call(url, "POST", "/v2.0/host-reports", token,
                    json=report_body("compute-elsewhere", tunnel_types=["geneve"]))
    assert anywhere.status_code == 201, anywhere.text


def keystone_validations(keystone) -> int:
    return len(re.findall(r'"GET /v3/auth/tokens\?nocatalog', keystone.log()))


def test_a_repeated_bad_token_asks_keystone_once(live, cloud):
    bad = "gAAAAAB" + "A" * 180
    before = keystone_validations(cloud.keystone)
    for _ in range(12):  # within the shipped anonymous rate limit (a burst of 20)
        neutron_error(call(live.url, "GET", "/v2.0/networks", bad), 401, "NotAuthenticated")
    assert keystone_validations(cloud.keystone) - before == 1
    # Not even once for text no Keystone token is made of.
    neutron_error(call(live.url, "GET", "/v2.0/networks", "not a token!"), 401, "NotAuthenticated")
    assert keystone_validations(cloud.keystone) - before == 1


def test_a_valid_token_is_validated_once_then_remembered(live, cloud):
    token = cloud.token("bob", "p2")
    before = keystone_validations(cloud.keystone)
    for _ in range(20):
        assert call(live.url, "GET", "/v2.0/networks", token).status_code == 200
    assert keystone_validations(cloud.keystone) - before == 1


def test_a_flood_of_made_up_tokens_costs_keystone_a_bounded_number_of_validations(
        request, cloud, tmp_path):
    """Each new token is paid for before Keystone sees it: from the client address' anonymous
    budget (a burst of 20, as shipped), then from the process' allowance for such tokens (a
    burst of 20, 10 a second), then 429 without a word to Keystone. A new valid token from the
    same exhausted address, behind the same proxy as the flooder say, still gets through, and
    tokens already proven keep working."""
    from tests.keystone_auth.conftest import serve

    server = serve(request, tmp_path, cloud, "anonymous-budget")
    known = cloud.token("bob", "p2")
    assert call(server.base_url, "GET", "/v2.0/networks", known).status_code == 200
    fresh = cloud.token("alice", "p1")
    before = keystone_validations(cloud.keystone)
    with ThreadPoolExecutor(60) as pool:  # at once: a burst, as a flood comes
        answers = list(pool.map(
            lambda i: call(server.base_url, "GET", "/v2.0/networks",
                           f"gAAAAAB{i:0>120}").status_code, range(120)))
    asked = keystone_validations(cloud.keystone) - before
    assert set(answers) == {401, 429} and answers.count(401) >= 20, answers
    assert asked < 60, asked  # 20 + 20 and what a few seconds refill; 120 were sent
    assert call(server.base_url, "GET", "/v2.0/networks", known).status_code == 200
    wait_for_status(server.base_url, fresh, 200)


def wait_for_status(url: str, token: str, expected: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := call(url, "GET", "/v2.0/networks", token).status_code) != expected:
        assert got == 429 and time.monotonic() < deadline, got
        time.sleep(0.2)


def trust_token(cloud, trustor: str, trustor_domain: str, trustee: str, project_id: str,
                role: str) -> tuple[str, dict]:
    """`trustor` hands `role` on a project to `trustee` (Default), who takes a token of it."""
    ks = cloud.keystone
    trustor_token, body = ks._issue({
        "identity": {"methods": ["password"], "password": {"user": {
            "name": trustor, "domain": {"name": trustor_domain}, "password": PASSWORD}}},
        "scope": {"project": {"id": project_id}}})
    trustee_id = ks.get("/users", params={"name": trustee})["users"][0]["id"]
    trust = ks.post("/OS-TRUST/trusts", {"trust": {
        "trustor_user_id": body["user"]["id"], "trustee_user_id": trustee_id,
        "project_id": project_id, "impersonation": False, "roles": [{"name": role}]}},
        token=trustor_token)["trust"]
    return ks._issue({
        "identity": {"methods": ["password"], "password": {"user": {
            "name": trustee, "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"OS-TRUST:trust": {"id": trust["id"]}}})


def test_a_host_agent_cannot_hand_its_service_role_on_through_a_trust(request, cloud, tmp_path):
    """A trust's token names the trustee as its user, outside the host domain: were its
    service role accepted, a host's credentials plus any account would be an unbound service
    principal. A trust of ordinary roles (Heat's use) works, and its audit name says so."""
    from tests.keystone_auth.conftest import serve

    domain = f"thosts-{cloud.suffix}"
    domain_id = cloud.keystone.create_domain(domain)
    host = f"tcompute-{cloud.suffix}"
    cloud.keystone.create_user(host, PASSWORD, domain_id=domain_id,
                               project=cloud.projects["service"], roles=("service",))
    server = serve(request, tmp_path, cloud, "trusts", host_user_domain_name=domain)
    token, body = trust_token(cloud, host, domain, cloud.user_name("alice"),
                              cloud.projects["service"], "service")
    assert body["OS-TRUST:trust"] and {r["name"] for r in body["roles"]} == {"service"}
    for method, path, payload in (
            ("POST", "/v2.0/host-reports", report_body("victim", tunnel_types=["geneve"])),
            ("GET", "/metrics", None)):
        neutron_error(call(server.base_url, method, path, token, json=payload), 401,
                      "NotAuthenticated")

    heat, _ = trust_token(cloud, cloud.user_name("alice"), "Default", cloud.user_name("bob"),
                          cloud.projects["p1"], "member")
    made = call(server.base_url, "POST", "/v2.0/networks", heat, json={"network": {"name": "t"}})
    assert made.status_code == 201 and made.json()["network"]["project_id"] == cloud.projects["p1"]
    (row,) = [e for e in call(server.base_url, "GET", "/v2.0/audit-events",
                              bootstrap_of(server)).json()["audit_events"]
              if e["resource_id"] == made.json()["network"]["id"]]
    assert row["user_name"].startswith(f"{cloud.user_name('bob')} (trust ")
    assert cloud.users["alice"] in row["user_name"]


def bootstrap_of(server) -> str:
    from tests.e2e.server import bootstrap_tokens

    (token,) = bootstrap_tokens(server)
    return token


@pytest.mark.parametrize("spelling", ["padded", "plus", "slash", "dots"])
def test_other_spellings_of_a_valid_token_are_refused_without_asking_keystone(
        live, cloud, spelling):
    """Keystone's decoder takes padding, +/ for -_ and stray dots; segmentd takes a token
    only as Keystone issues it, so one token is one cache entry and one validation."""
    token = cloud.token("bob", "p2")
    variant = {"padded": token + "==", "plus": token.replace("-", "+").replace("_", "+"),
               "slash": token.replace("_", "/").replace("-", "/"),
               "dots": token[:20] + "...." + token[20:]}[spelling]
    if variant == token:
        variant = token + "=="  # the token happened to have neither - nor _
    assert cloud.keystone.validate(variant).status_code in (200, 404)  # Keystone may take it
    before = keystone_validations(cloud.keystone)
    neutron_error(call(live.url, "GET", "/v2.0/networks", variant), 401, "NotAuthenticated")
    assert keystone_validations(cloud.keystone) == before
    assert call(live.url, "GET", "/v2.0/networks", token).status_code == 200
