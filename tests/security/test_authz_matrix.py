"""Who may call which route in token mode: a matrix generated from the app's route table.

Every (method, path) the application serves must have a row in EXPECTED, and every row must
still name a served route, so a new route cannot go unchecked. Each row gives the status every
principal gets when the path parameters name real objects: a network created for p1 and its
segment, an agent (and its host) recorded by a service-role host report, and a webhook
subscription. Refused writes must leave the database and the event bus untouched.

The service role is two principals: `service` is bound to no host (a compute scheduler),
`host_agent` is a service token bound to AGENT_HOST (`token create --host`), the agent on
that host: it reports for its host and reads, and changes nothing else.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from segmentd.app import create_app
from segmentd.services.tokens import hash_token
from tests.conftest import make_settings, shared_api
from tests.factories import error_of, issue_token, report_body
from tests.security.support import (
    TOKEN_MODE,
    auth,
    expire_token,
    revoke_token,
    token_api,
)

OWNER, OTHER = "p1", "p2"

# Principals holding a token that works ...
VALID = ("admin", "member_of_p1", "reader_of_p1", "member_of_other_project", "service",
         "host_agent")
# ... and requests that must be 401 wherever a token is needed.
INVALID = (
    "no_token",
    "oversized_token",  # 10,000 characters: refused before any lookup
    "not_a_token",
    "stored_hash_as_token",  # the SHA-256 the tokens table holds is not a credential
    "expired_admin_token",
    "revoked_admin_token",
)
PRINCIPALS = VALID + INVALID

# What FastAPI adds by itself; everything else the app serves is in EXPECTED.
NOT_IN_MATRIX = {("GET", "/openapi.json"), ("HEAD", "/openapi.json")}


def statuses(admin, member, reader, other, service, agent, *, invalid=401) -> dict[str, int]:
    row = dict(zip(VALID, (admin, member, reader, other, service, agent), strict=True))
    return {**row, **dict.fromkeys(INVALID, invalid)}


ANY_VALID_TOKEN = statuses(200, 200, 200, 200, 200, 200)
ADMIN_ONLY = statuses(200, 403, 403, 403, 403, 403)
NET = "/v2.0/networks/{network_id}"
SEG = "/v2.0/segments/{segment_id}"
SUBNET = "/v2.0/subnets/{subnet_id}"
PORT = "/v2.0/ports/{port_id}"
AVAILABILITY = "/v2.0/network-ip-availabilities"
AGENT = "/v2.0/agents/{agent_id}"
SUB = "/v2.0/event-subscriptions/{sub_id}"
FIXTURE_HOST = "matrix-fixture-host"
AGENT_HOST = "matrix-made-host"  # the host_agent's host, the one the report body names
# Subscriptions in this test point at a closed loopback port and are created disabled:
# nothing is ever sent, and the dispatcher has no delivery to wait on at shutdown.
HOOK_URL = "http://127.0.0.1:9/hook"
HOOK_SECRET = "matrix-secret-" * 3
HOOK_SETTINGS = {"webhook_allowed_networks": ["127.0.0.1/32"], "webhook_timeout_seconds": 1.0}

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    # The version document is public: clients discover versions before they authenticate
    # (Neutron serves it outside keystonemiddleware), so even a bad token gets it.
    ("GET", "/"): statuses(200, 200, 200, 200, 200, 200, invalid=200),
    # Everything under /v2.0 needs a valid token, as behind keystonemiddleware.
    ("GET", "/v2.0"): ANY_VALID_TOKEN,
    ("GET", "/v2.0/"): ANY_VALID_TOKEN,
    ("GET", "/v2.0/extensions"): ANY_VALID_TOKEN,
    ("GET", "/v2.0/extensions/{alias}"): ANY_VALID_TOKEN,
    # Lists answer every valid token; what each one sees is in VISIBLE.
    ("GET", "/v2.0/networks"): ANY_VALID_TOKEN,
    # The body asks for a network of p1: its members may, another project's may not. A
    # member naming a project not its own is 400 before any policy, as in Neutron; the
    # service roles may name any project, so only the policy refuses them (403).
    ("POST", "/v2.0/networks"): statuses(201, 201, 403, 400, 403, 403),
    # Another project's network is 404, like a missing one; the service role may read, and
    # a host agent too, but neither changes networks.
    ("GET", NET): statuses(200, 200, 200, 404, 200, 200),
    ("PUT", NET): statuses(200, 200, 403, 404, 403, 403),
    ("DELETE", NET): statuses(204, 204, 403, 404, 403, 403),
    # Segments are admin-only: hidden (404, []) from anyone who cannot read them, 403 on
    # create to those who can see the network (404 to those who cannot).
    ("GET", "/v2.0/segments"): ANY_VALID_TOKEN,
    ("POST", "/v2.0/segments"): statuses(201, 403, 403, 404, 403, 403),
    ("GET", SEG): statuses(200, 404, 404, 404, 404, 404),
    ("PUT", SEG): statuses(200, 404, 404, 404, 404, 404),
    ("DELETE", SEG): statuses(204, 404, 404, 404, 404, 404),
    # Subnets follow their network: its project's members write, its readers, the service
    # and host agents read, another project sees nothing (404).
    ("GET", "/v2.0/subnets"): ANY_VALID_TOKEN,
    ("POST", "/v2.0/subnets"): statuses(201, 201, 403, 404, 403, 403),
    ("GET", SUBNET): statuses(200, 200, 200, 404, 200, 200),
    ("PUT", SUBNET): statuses(200, 200, 403, 404, 403, 403),
    ("DELETE", SUBNET): statuses(204, 204, 403, 404, 403, 403),
    # Ports: their project's members and the network's owners write; its readers read; the
    # unbound service (Nova) creates, reads, updates (binds) and deletes, as in Neutron; a
    # host agent only reads: a compromised host cannot move or remove anyone's ports.
    ("GET", "/v2.0/ports"): ANY_VALID_TOKEN,
    ("POST", "/v2.0/ports"): statuses(201, 201, 403, 404, 201, 403),
    ("GET", PORT): statuses(200, 200, 200, 404, 200, 200),
    ("PUT", PORT): statuses(200, 200, 403, 404, 200, 403),
    ("DELETE", PORT): statuses(204, 204, 403, 404, 204, 403),
    # Address usage is admin-only, as in Neutron.
    ("GET", AVAILABILITY): ADMIN_ONLY,
    ("GET", AVAILABILITY + "/{network_id}"): ADMIN_ONLY,
    # The audit trail is admin-only: others get an empty list.
    ("GET", "/v2.0/audit-events"): ANY_VALID_TOKEN,
    # Host reports come from agents: the service role only (not even admin); a host agent
    # for its own host only (the body names AGENT_HOST).
    ("POST", "/v2.0/host-reports"): statuses(403, 403, 403, 403, 201, 201),
    # Agents are admin-only and, as in Neutron, hidden from anyone else: an empty list,
    # 404 for one agent (like a missing one).
    ("GET", "/v2.0/agents"): ANY_VALID_TOKEN,
    ("GET", AGENT): statuses(200, 404, 404, 404, 404, 404),
    ("PUT", AGENT): statuses(200, 404, 404, 404, 404, 404),
    ("DELETE", AGENT): statuses(204, 404, 404, 404, 404, 404),
    # What hosts reach is admin-only: 403 to everyone else.
    ("GET", "/v2.0/hosts"): ADMIN_ONLY,
    ("GET", "/v2.0/hosts/{host}/segments"): ADMIN_ONLY,
    ("GET", SEG + "/hosts"): ADMIN_ONLY,
    # Webhook subscriptions and their delivery status are admin-only.
    ("GET", "/v2.0/event-subscriptions"): ADMIN_ONLY,
    ("POST", "/v2.0/event-subscriptions"): statuses(201, 403, 403, 403, 403, 403),
    ("GET", SUB): ADMIN_ONLY,
    ("PUT", SUB): statuses(200, 403, 403, 403, 403, 403),
    ("DELETE", SUB): statuses(204, 403, 403, 403, 403, 403),
    ("GET", SUB + "/deliveries"): ADMIN_ONLY,
    # Event schemas are public documentation, but still behind a valid token.
    ("GET", "/v2.0/event-schemas"): ANY_VALID_TOKEN,
    ("GET", "/v2.0/event-schemas/{event_type}"): ANY_VALID_TOKEN,
    # The OVN drift report is admin-only; with no check run yet (no OVN here) it is a 404.
    ("GET", "/v2.0/ovn/drift"): statuses(404, 403, 403, 403, 403, 403),
    # The backend's state is admin-only; with backend = "none" there is none (404).
    ("GET", "/v2.0/ovn/status"): statuses(404, 403, 403, 403, 403, 403),
    # Probes for orchestrators need no token and say nothing an attacker could use.
    ("GET", "/healthz"): statuses(200, 200, 200, 200, 200, 200, invalid=200),
    ("GET", "/readyz"): statuses(200, 200, 200, 200, 200, 200, invalid=200),
    # Metrics: admins and the unbound service role (a scraper's token), not host agents.
    ("GET", "/metrics"): statuses(200, 403, 403, 403, 200, 403),
}

# Lists: (collection, which fixture object, principals that see it). None: any item at all.
READERS_OF_P1 = ("member_of_p1", "reader_of_p1", "service", "host_agent")
VISIBLE = {
    ("GET", "/v2.0/networks"): ("networks", "network", {"admin", *READERS_OF_P1}),
    ("GET", "/v2.0/segments"): ("segments", "segment", {"admin"}),
    ("GET", "/v2.0/subnets"): ("subnets", "subnet", {"admin", *READERS_OF_P1}),
    ("GET", "/v2.0/ports"): ("ports", "port", {"admin", *READERS_OF_P1}),
    ("GET", AVAILABILITY): ("network_ip_availabilities", "availability", {"admin"}),
    ("GET", "/v2.0/audit-events"): ("audit_events", None, {"admin"}),
    ("GET", "/v2.0/agents"): ("agents", "agent", {"admin"}),
    ("GET", "/v2.0/hosts"): ("hosts", "host", {"admin"}),
    ("GET", "/v2.0/hosts/{host}/segments"): ("segments", "segment", {"admin"}),
    ("GET", SEG + "/hosts"): ("hosts", "host", {"admin"}),
    ("GET", "/v2.0/event-subscriptions"): ("event_subscriptions", "subscription", {"admin"}),
    ("GET", "/v2.0/event-schemas"): ("event_schemas", None, set(VALID)),
}
# What identifies an item of a fixture object's collection (hosts are named, not numbered).
ITEM_KEY = {"host": "host", "availability": "network_id"}

ERROR_TYPES = {401: {"NotAuthenticated"}, 403: {"PolicyNotAuthorized"},
               404: {"NetworkNotFound", "SegmentNotFound", "SubnetNotFound", "PortNotFound", "AgentNotFound", "HostNotFound",
                     "EventSubscriptionNotFound", "EventTypeNotFound", "OvnDriftReportNotFound",
                     "OvnBackendNotConfigured"}}
MUTATING = {"POST", "PUT", "DELETE"}
# Accepted writes that publish no event: subscriptions configure delivery, they are not
# resources events describe.
PUBLISHES_NOTHING = {("POST", "/v2.0/event-subscriptions"), ("PUT", SUB), ("DELETE", SUB)}
# Tables a refused request must leave as they were (audit_events takes the refusal itself;
# the outbox is checked through api.events).
COUNTED = ("networks", "segments", "subnets", "ports", "ip_allocations", "agents", "hosts", "host_reach", "event_subscriptions",
           "event_deliveries")


def request_body(method: str, path: str, fx: dict) -> dict | None:
    """What each write sends: valid for an admin, so only authorization can refuse it."""
    if (method, path) == ("POST", "/v2.0/networks"):
        return {"network": {"name": "made-by-matrix", "project_id": OWNER}}
    if (method, path) == ("POST", "/v2.0/segments"):
        return {"segment": {"network_id": fx["network"]["id"], "network_type": "geneve"}}
    if (method, path) == ("POST", "/v2.0/subnets"):
        return {"subnet": {"network_id": fx["network"]["id"], "cidr": "10.78.0.0/24",
                           "ip_version": 4}}
    if (method, path) == ("POST", "/v2.0/ports"):
        return {"port": {"network_id": fx["network"]["id"], "name": "made-by-matrix"}}
    if (method, path) == ("PUT", PORT):
        return {"port": {"name": "renamed-by-matrix"}}
    if (method, path) == ("PUT", SUBNET):
        return {"subnet": {"name": "renamed-by-matrix"}}
    if (method, path) == ("PUT", NET):
        return {"network": {"name": "renamed-by-matrix"}}
    if (method, path) == ("PUT", SEG):
        return {"segment": {"name": "renamed-by-matrix"}}
    if (method, path) == ("POST", "/v2.0/host-reports"):
        return host_report("matrix-made-host")
    if (method, path) == ("PUT", AGENT):
        return {"agent": {"description": "changed-by-matrix"}}
    if (method, path) == ("POST", "/v2.0/event-subscriptions"):
        return subscription_body("made-by-matrix")
    if (method, path) == ("PUT", SUB):
        return {"event_subscription": {"name": "renamed-by-matrix"}}
    return None


def host_report(host: str) -> dict:
    """An agent on `host` reaching geneve: the fixture network's tenant segment."""
    return report_body(host, tunnel_types=["geneve"])


def subscription_body(name: str) -> dict:
    return {"event_subscription": {"name": name, "url": HOOK_URL, "secret": HOOK_SECRET,
                                   "event_types": ["network.created"], "enabled": False}}


def fill_path(path: str, fx: dict) -> str:
    values = {
        "network_id": fx["network"]["id"],
        "segment_id": fx["segment"]["id"],
        "subnet_id": fx["subnet"]["id"],
        "port_id": fx["port"]["id"],
        "alias": "segment",
        "agent_id": fx["agent"]["id"],
        "host": fx["host"]["host"],
        "sub_id": fx["subscription"]["id"],
        "event_type": "segment.created",
    }

    def value(m: re.Match) -> str:
        assert m.group(1) in values, f"no value for path parameter {m.group(1)} of {path}"
        return values[m.group(1)]

    return re.sub(r"\{(\w+)\}", value, path)


def served_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, nested routers included."""
    try:  # FastAPI >= 0.16x keeps included routers nested in app.routes
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI: app.routes is already flat
        routes = list(app.routes)
    served = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        assert methods, f"route {getattr(route, 'path', route)!r} has no methods: a mount?"
        served |= {(m, route.path) for m in methods}
    return served


def unlisted(served: set[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(served - set(EXPECTED) - NOT_IN_MATRIX)


# -- principals and objects -------------------------------------------------------------------

def issue_principals(api) -> dict[str, dict[str, str]]:
    """The X-Auth-Token headers of every principal (none for no_token)."""
    admin, _ = issue_token(api, "admin", ["admin"], name="admin")
    member, _ = issue_token(api, OWNER, ["member"], name="member")
    reader, _ = issue_token(api, OWNER, ["reader"], name="reader")
    other, _ = issue_token(api, OTHER, ["member"], name="other")
    service, _ = issue_token(api, "service", ["service"], name="service")
    agent, _ = issue_token(api, "agents", ["service"], name="agent", host=AGENT_HOST)
    expired, _ = issue_token(api, "admin", ["admin"], name="expired",
                             expires_in=timedelta(days=1))
    expire_token(api, "expired")
    revoked, _ = issue_token(api, "admin", ["admin"], name="revoked")
    revoke_token(api, "revoked")
    return {
        "admin": auth(admin),
        "member_of_p1": auth(member),
        "reader_of_p1": auth(reader),
        "member_of_other_project": auth(other),
        "service": auth(service),
        "host_agent": auth(agent),
        "no_token": {},
        "oversized_token": auth("x" * 10_000),
        "not_a_token": auth("not-a-token"),
        "stored_hash_as_token": auth(hash_token(admin)),
        "expired_admin_token": auth(expired),
        "revoked_admin_token": auth(revoked),
    }


def make_objects(api, admin: dict, service: dict | None = None) -> dict:
    """A fresh network of p1 (made by the admin) and the tenant segment it got.

    With the service role's credentials also an agent on FIXTURE_HOST (reported by the
    service, reaching that segment) and a fresh webhook subscription (made by the admin).
    """
    resp = api.post("/v2.0/networks", json={"network": {"name": "p1-net", "project_id": OWNER}},
                    headers=admin)
    assert resp.status_code == 201, resp.text
    network = resp.json()["network"]
    segs = api.get("/v2.0/segments", params={"network_id": network["id"]}, headers=admin)
    (segment,) = segs.json()["segments"]
    resp = api.post("/v2.0/subnets", headers=admin, json={"subnet": {
        "network_id": network["id"], "cidr": "10.77.0.0/24", "ip_version": 4}})
    assert resp.status_code == 201, resp.text
    subnet = resp.json()["subnet"]
    # The fixture port holds no address (the subnet stays deletable) and is the network's
    # own service port (the network stays deletable; it goes with it).
    resp = api.post("/v2.0/ports", headers=admin, json={"port": {
        "network_id": network["id"], "project_id": OWNER, "fixed_ips": [],
        "device_owner": "network:dhcp"}})
    assert resp.status_code == 201, resp.text
    fx = {"network": network, "segment": segment, "subnet": subnet,
          "port": resp.json()["port"], "availability": {"network_id": network["id"]}}
    if service is None:
        return fx
    resp = api.post("/v2.0/host-reports", json=host_report(FIXTURE_HOST), headers=service)
    assert resp.status_code == 201, resp.text
    fx["agent"] = resp.json()["agent"]
    fx["host"] = {"host": FIXTURE_HOST}
    resp = api.post("/v2.0/event-subscriptions", json=subscription_body("fixture"), headers=admin)
    assert resp.status_code == 201, resp.text
    fx["subscription"] = resp.json()["event_subscription"]
    return fx


def snapshot(api, admin: dict, fx: dict) -> tuple:
    """The fixture objects as the admin sees them now (status and body)."""
    urls = [f"/v2.0/networks/{fx['network']['id']}", f"/v2.0/segments/{fx['segment']['id']}",
            f"/v2.0/subnets/{fx['subnet']['id']}", f"/v2.0/ports/{fx['port']['id']}"]
    if "agent" in fx:
        urls += [f"/v2.0/agents/{fx['agent']['id']}",
                 f"/v2.0/event-subscriptions/{fx['subscription']['id']}",
                 f"/v2.0/hosts/{FIXTURE_HOST}/segments"]
    found = []
    for url in urls:
        resp = api.get(url, headers=admin)
        found += [resp.status_code, resp.json()]
    return tuple(found)


def row_counts(api) -> dict[str, int]:
    """Rows per COUNTED table, read through the app's own engine."""

    async def count(conn):
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar()
                for t in COUNTED}

    return api._run(count)


# -- the matrix ---------------------------------------------------------------------------------

def check_cell(api, creds, principal, method, path, fx) -> tuple[list[str], bool]:
    """(problems with one (route, principal) cell, whether it changed anything).

    No problems when it behaves as EXPECTED.
    """
    cell = f"{principal:24} {method:6} {path}"
    if (method, path) not in EXPECTED:
        return [f"{cell}: no row in EXPECTED (add one for this new route)"], False
    admin = creds["admin"]
    url = fill_path(path, fx)
    if method in MUTATING:
        before, counts = snapshot(api, admin, fx), row_counts(api)
    api.clear_events()

    resp = api.request(method, url, json=request_body(method, path, fx),
                       headers=creds[principal])

    expected = EXPECTED[(method, path)][principal]
    changed = method in MUTATING and resp.status_code < 400
    if resp.status_code != expected:
        return [f"{cell}: expected {expected}, got {resp.status_code} {resp.text[:200]}"], changed
    problems = []
    if resp.status_code in ERROR_TYPES and error_of(resp)["type"] not in ERROR_TYPES[resp.status_code]:
        problems.append(f"{cell}: error type {error_of(resp)['type']}")
    if (method, path) in VISIBLE and resp.status_code == 200:
        collection, which, seen_by = VISIBLE[(method, path)]
        items = resp.json()[collection]
        key = ITEM_KEY.get(which, "id")
        seen = bool(items) if which is None else fx[which][key] in {i[key] for i in items}
        if seen != (principal in seen_by):
            problems.append(f"{cell}: {'sees' if seen else 'does not see'} the {which or 'events'}")
    if method in MUTATING and resp.status_code >= 400:
        if row_counts(api) != counts:
            problems.append(f"{cell}: refused, yet row counts changed")
        if api.events:
            problems.append(f"{cell}: refused, yet published {[e.type for e in api.events]}")
        if snapshot(api, admin, fx) != before:
            problems.append(f"{cell}: refused, yet a fixture object changed")
    if method in MUTATING and resp.status_code < 400:
        if (method, path) in PUBLISHES_NOTHING:
            if api.events:
                problems.append(f"{cell}: published {[e.type for e in api.events]}")
        elif not api.events:
            problems.append(f"{cell}: accepted but published no event")
    if HOOK_SECRET in resp.text:
        problems.append(f"{cell}: the response shows a webhook secret")
    return problems, changed


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.sqlite_only
def test_route_matrix(request, db_kind, principal):
    """Every served route, as `principal`, against the fixture objects (see make_objects)."""
    api = shared_api(request, db_kind, **TOKEN_MODE, **HOOK_SETTINGS)
    creds = issue_principals(api)
    problems, fx = [], make_objects(api, creds["admin"], creds["service"])
    for method, path in sorted(served_routes(api.client.app)):
        if (method, path) in NOT_IN_MATRIX:
            continue
        found, changed = check_cell(api, creds, principal, method, path, fx)
        problems += found
        # The next cell meets the objects as first made; a refusal was checked to have
        # changed nothing, so only an accepted write needs fresh ones.
        if changed:
            fx = make_objects(api, creds["admin"], creds["service"])
    assert not problems, "\n" + "\n".join(problems)


def test_expected_covers_exactly_the_served_routes():
    """A route without a row, or a row without a route, fails here and in the matrix."""
    app = create_app(make_settings("sqlite+aiosqlite:///unused-never-opened.db", **TOKEN_MODE))
    served = served_routes(app)
    assert unlisted(served) == [], "routes missing from EXPECTED"
    assert sorted(set(EXPECTED) - served) == [], "EXPECTED names routes the app no longer serves"
    assert NOT_IN_MATRIX <= served, "NOT_IN_MATRIX names routes the app no longer serves"
    for route, row in EXPECTED.items():
        assert set(row) == set(PRINCIPALS), route
    assert set(VISIBLE) <= set(EXPECTED)


def test_version_document_needs_no_token_even_in_token_mode(db_url):
    """GET / is what clients probe first; it names only the API version, nothing else."""
    api = token_api(db_url)
    with api.client:
        resp = api.get("/")
    assert resp.status_code == 200
    (version,) = resp.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"


# -- attribute-level rules, with real tokens ---------------------------------------------------

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def test_provider_attributes_are_admin_only_to_read_write_and_filter(db_url):
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        admin, member = creds["admin"], creds["member_of_p1"]
        fx = make_objects(api, admin)
        net_url = f"/v2.0/networks/{fx['network']['id']}"

        shown = api.get(net_url, headers=member).json()["network"]
        assert not set(shown) & {*PROVIDER, "segments"}, shown
        listed = api.get("/v2.0/networks", headers=member).json()["networks"]
        assert [n["id"] for n in listed] == [fx["network"]["id"]]
        assert not set(listed[0]) & {*PROVIDER, "segments"}, listed
        assert set(PROVIDER) <= set(api.get(net_url, headers=admin).json()["network"])

        counts, before = api.counts(), snapshot(api, admin, fx)
        api.clear_events()
        create = api.post("/v2.0/networks", headers=member, json={"network": {
            "name": "vlan", "provider:network_type": "vlan",
            "provider:physical_network": "physnet1"}})
        assert create.status_code == 403, create.text
        assert error_of(create)["message"] == (
            "rule:create_network:provider:network_type is disallowed by policy")
        with_segments = api.post("/v2.0/networks", headers=member, json={"network": {
            "name": "multi", "segments": [{"provider:network_type": "geneve"}]}})
        assert with_segments.status_code == 403, with_segments.text
        assert error_of(with_segments)["message"] == (
            "rule:create_network:segments is disallowed by policy")
        move = api.put(net_url, headers=member,
                       json={"network": {"provider:segmentation_id": 7}})
        assert move.status_code == 403, move.text
        assert error_of(move)["message"] == (
            "rule:update_network:provider:segmentation_id is disallowed by policy")
        assert api.counts() == counts and api.events == [] and snapshot(api, admin, fx) == before

        for attr in PROVIDER:
            probe = api.get("/v2.0/networks", params={attr: "geneve"}, headers=member)
            assert probe.status_code == 400, (attr, probe.text)
            assert error_of(probe)["message"] == f"['{attr}'] is invalid attribute for filtering"


def test_non_admins_may_not_share_or_create_for_another_project(db_url):
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        member, admin = creds["member_of_p1"], creds["admin"]
        fx = make_objects(api, admin)
        counts = api.counts()
        shared = api.post("/v2.0/networks", headers=member,
                          json={"network": {"name": "s", "shared": True}})
        assert shared.status_code == 403, shared.text
        assert error_of(shared) == {"type": "PolicyNotAuthorized", "detail": "",
                                    "message": "rule:create_network:shared is disallowed by policy"}
        foreign = api.post("/v2.0/networks", headers=member,
                           json={"network": {"name": "f", "project_id": OTHER}})
        assert foreign.status_code == 400, foreign.text
        assert error_of(foreign) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": "Only a caller allowed to act for other projects may give a project_id "
                       "(or tenant_id) other than its own"}
        share = api.put(f"/v2.0/networks/{fx['network']['id']}", headers=member,
                        json={"network": {"shared": True}})
        assert share.status_code == 403, share.text
        assert error_of(share) == {"type": "PolicyNotAuthorized", "detail": "",
                                   "message": "rule:update_network:shared is disallowed by policy"}
        assert api.counts() == counts
        # Once the admin shares it, the other project reads it but still may not change it.
        assert api.put(f"/v2.0/networks/{fx['network']['id']}", headers=admin,
                       json={"network": {"shared": True}}).status_code == 200
        other = creds["member_of_other_project"]
        assert api.get(f"/v2.0/networks/{fx['network']['id']}", headers=other).status_code == 200
        rename = api.put(f"/v2.0/networks/{fx['network']['id']}", headers=other,
                         json={"network": {"name": "mine"}})
        assert rename.status_code == 403, rename.text
        assert error_of(rename) == {"type": "PolicyNotAuthorized", "detail": "",
                                    "message": "rule:update_network is disallowed by policy"}
        hidden = api.get(f"/v2.0/segments/{fx['segment']['id']}", headers=other)
        assert hidden.status_code == 404
        assert error_of(hidden)["type"] == "SegmentNotFound"


def test_development_headers_are_ignored_in_token_mode(db_url):
    """X-Project-Id / X-Roles / X-Host are trusted only in development mode."""
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        fx = make_objects(api, creds["admin"])
        claims = {"X-Project-Id": OTHER, "X-Roles": "admin,member,reader", "X-Host": "h1"}
        member = {**creds["member_of_p1"], **claims}
        hidden = api.get(f"/v2.0/segments/{fx['segment']['id']}", headers=member)
        assert hidden.status_code == 404
        assert error_of(hidden)["type"] == "SegmentNotFound"
        shown = api.get(f"/v2.0/networks/{fx['network']['id']}", headers=member)
        assert shown.status_code == 200 and "provider:network_type" not in shown.json()["network"]
        made = api.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=member)
        assert made.status_code == 201 and made.json()["network"]["project_id"] == OWNER
        assert api.get("/v2.0/audit-events", headers=member).json() == {"audit_events": []}
        for headers in (claims, {**claims, "X-Auth-Token": ""}):
            refused = api.get("/v2.0/networks", headers=headers)
            assert refused.status_code == 401
            assert error_of(refused)["type"] == "NotAuthenticated"


def test_a_hidden_network_as_marker_reveals_nothing_of_its_place_in_the_order(db_url):
    """Paging after another project's network id is paging without a marker."""
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        hidden = make_objects(api, creds["admin"])["network"]
        other = creds["member_of_other_project"]
        for name in ("a", "m", "z"):
            assert api.post("/v2.0/networks", json={"network": {"name": name}},
                            headers=other).status_code == 201
        for sort_dir in ("asc", "desc"):
            params = {"sort_key": "name", "sort_dir": sort_dir, "limit": "2"}
            plain = api.get("/v2.0/networks", params=params, headers=other).json()["networks"]
            after = api.get("/v2.0/networks", params={**params, "marker": hidden["id"]},
                            headers=other).json()["networks"]
            assert [n["name"] for n in after] == [n["name"] for n in plain]


def test_service_role_reads_networks_of_every_project(db_url):
    """rule:service_api grants get_network on any project's network, and SQL scoping agrees."""
    api = token_api(db_url)
    with api.client:
        creds = issue_principals(api)
        fx = make_objects(api, creds["admin"])
        service = creds["service"]
        listed = api.get("/v2.0/networks", headers=service).json()["networks"]
        assert fx["network"]["id"] in {n["id"] for n in listed}
        resp = api.get(f"/v2.0/networks/{fx['network']['id']}", headers=service)
        assert resp.status_code == 200, resp.text
        assert "provider:network_type" not in resp.json()["network"]
        for method in ("PUT", "DELETE"):
            got = api.request(method, f"/v2.0/networks/{fx['network']['id']}",
                              json={"network": {"name": "x"}} if method == "PUT" else None,
                              headers=service)
            assert got.status_code == 403, got.text
            action = "update_network" if method == "PUT" else "delete_network"
            assert error_of(got) == {"type": "PolicyNotAuthorized", "detail": "",
                                     "message": f"rule:{action} is disallowed by policy"}
