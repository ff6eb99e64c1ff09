"""Paging is complete for every caller: walking the links with any page size visits exactly
the items the same caller's unlimited list shows, each once, in the same order (issue 19)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import build_api
from tests.factories import bridges, follow, make_network, make_segment, send_report

ADMIN = {"X-Project-Id": "ops", "X-Roles": "admin"}
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member"}
READER = {"X-Project-Id": "p1", "X-Roles": "reader"}
OTHER = {"X-Project-Id": "p2", "X-Roles": "member"}
SERVICE = {"X-Project-Id": "agents", "X-Roles": "service"}
HOST_AGENT = {"X-Project-Id": "agents", "X-Roles": "service", "X-Host": "compute-1"}
NO_ROLE = {"X-Project-Id": "p1", "X-Roles": "observer"}  # a role no rule names
CALLERS = {"admin": ADMIN, "member": MEMBER, "reader": READER, "other": OTHER,
           "service": SERVICE, "host_agent": HOST_AGENT, "no_role": NO_ROLE}


def post(api, path: str, member: str, headers=None, **attrs) -> dict:
    resp = api.post(path, json={member: attrs}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()[member]


def seed(api) -> dict[str, tuple[str, str, str, str]]:
    """Rows of several projects, some shared, interleaved; the list routes to walk, as
    name: (path, collection key, id key, sort key)."""
    mine = [make_network(api, headers=MEMBER, name=f"n{i % 2}") for i in range(3)]
    theirs = [make_network(api, headers=OTHER, name=f"n{i % 2}") for i in range(2)]
    shared = make_network(api, name="n1", shared=True, project_id="p2")
    make_network(api, name="n0")  # the admin's own
    segment = make_segment(api, mine[1]["id"], network_type="vlan",
                           physical_network="physnet1", name="s")
    for net, headers, cidr in ((mine[0], MEMBER, "10.1.0.0/24"), (mine[0], MEMBER, "fd01::/64"),
                               (theirs[0], OTHER, "10.2.0.0/24"), (shared, ADMIN, "10.3.0.0/24")):
        post(api, "/v2.0/subnets", "subnet", headers, network_id=net["id"], cidr=cidr,
             ip_version=6 if ":" in cidr else 4, name="sub")
    for i in range(4):  # p1's ports and p2's on p1's network, ids interleaved at random
        post(api, "/v2.0/ports", "port", MEMBER, network_id=mine[0]["id"], name=f"p{i % 2}")
        post(api, "/v2.0/ports", "port", ADMIN, network_id=mine[0]["id"], project_id="p2",
             name=f"p{i % 2}")
    for headers in (MEMBER, OTHER):
        post(api, "/v2.0/ports", "port", headers, network_id=shared["id"], name="p0")
    post(api, "/v2.0/ports", "port", OTHER, network_id=theirs[0]["id"], name="p1")
    for host in ("compute-1", "compute-2", "compute-3"):
        send_report(api, host, bridge_mappings=bridges("physnet1"))
    hook = post(api, "/v2.0/event-subscriptions", "event_subscription", url="https://192.0.2.7/",
                secret="s" * 32, event_types=["network.created"], name="hook")
    post(api, "/v2.0/event-subscriptions", "event_subscription", url="https://192.0.2.8/",
         secret="s" * 32, event_types=["network.created"], name="hook")
    return {
        "networks": ("/v2.0/networks", "networks", "id", "name"),
        "segments": ("/v2.0/segments", "segments", "id", "name"),
        "subnets": ("/v2.0/subnets", "subnets", "id", "name"),
        "ports": ("/v2.0/ports", "ports", "id", "name"),
        "agents": ("/v2.0/agents", "agents", "id", "host"),
        "hosts": ("/v2.0/hosts", "hosts", "host", "host"),
        "host_segments": ("/v2.0/hosts/compute-1/segments", "segments", "id", "name"),
        "segment_hosts": (f"/v2.0/segments/{segment['id']}/hosts", "hosts", "host", "host"),
        "subscriptions": ("/v2.0/event-subscriptions", "event_subscriptions", "id", "name"),
        "deliveries": (f"/v2.0/event-subscriptions/{hook['id']}/deliveries", "deliveries", "id",
                       "event_type"),
        "audit": ("/v2.0/audit-events", "audit_events", "id", "action"),
        "availability": ("/v2.0/network-ip-availabilities", "network_ip_availabilities",
                         "network_id", "network_name"),
        "availability_v6": ("/v2.0/network-ip-availabilities?ip_version=6",
                            "network_ip_availabilities", "network_id", "network_name"),
    }


def with_params(path: str, *params: str) -> str:
    query = "&".join(p for p in params if p)
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{query}"


def assert_walks_match(api, route, headers, limit: int, sort: str | None, reverse: bool) -> int:
    """Walk one route page by page and compare with the unlimited list; the items seen."""
    path, key, id_key, sort_key = route
    order = f"sort_key={sort_key}&sort_dir={sort}" if sort else ""
    whole = api.get(with_params(path, order), headers=headers)
    first = api.get(with_params(path, f"limit={limit}", order), headers=headers)
    assert first.status_code == whole.status_code, (first.text, whole.text)
    if whole.status_code != 200:
        return 0
    expected = [item[id_key] for item in whole.json()[key]]
    assert f"{key}_links" not in whole.json()  # all of it fits one unlimited page
    start = with_params(path, f"limit={limit}", order, "page_reverse=True" if reverse else "")
    pages, _ = follow(api, start, key, "previous" if reverse else "next", headers)
    # Neutron's rule: every full page links on, so the walk ends on the first page that is
    # not full, after exactly len // limit full ones.
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    assert len(pages[-1]) < limit
    assert len(pages) == len(expected) // limit + 1
    in_order = pages[::-1] if reverse else pages
    assert [item[id_key] for page in in_order for item in page] == expected
    return len(expected)


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_walking_any_route_with_any_page_size_sees_exactly_the_unlimited_list(db_url):
    api = build_api(db_url)
    with api.client:
        routes = seed(api)

        @settings(max_examples=250, deadline=None, database=None)
        @given(caller=st.sampled_from(sorted(CALLERS)), route=st.sampled_from(sorted(routes)),
               limit=st.integers(1, 12), sort=st.sampled_from([None, "asc", "desc"]),
               reverse=st.booleans())
        def check(caller, route, limit, sort, reverse):
            assert_walks_match(api, routes[route], CALLERS[caller], limit, sort, reverse)

        check()


# A fixed set on every database: each caller on the routes where what it sees differs.
EXAMPLES = [
    ("reader", "ports", 1, None, False, 5),  # p1's own 5 ports, not p2's on p1's network
    ("reader", "ports", 3, "desc", True, 5),
    ("member", "ports", 2, "asc", False, 9),  # and p2's 4 on p1's network, and p2's on shared
    ("other", "ports", 1, None, True, 7),  # p2's own 7
    ("no_role", "networks", 1, None, False, 1),  # the shared network only
    ("reader", "networks", 2, "asc", False, 4),
    ("other", "subnets", 1, "desc", False, 2),
    ("reader", "subnets", 1, None, True, 3),
    ("member", "segments", 1, None, False, 0),
    ("admin", "segments", 3, "asc", True, 8),
    ("host_agent", "networks", 2, None, False, None),  # whatever its role lets it read
    ("service", "ports", 4, None, False, 11),
    ("admin", "availability_v6", 1, None, False, 1),
    ("admin", "hosts", 1, "desc", False, 3),
    ("admin", "subscriptions", 1, None, True, 2),
]


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_fixed_walks_see_exactly_the_unlimited_list(db_url):
    api = build_api(db_url)
    with api.client:
        routes = seed(api)
        for caller, route, limit, sort, reverse, count in EXAMPLES:
            seen = assert_walks_match(api, routes[route], CALLERS[caller], limit, sort, reverse)
            assert count is None or seen == count, (caller, route)
        # The scope is neither wider nor narrower than the read rule: a caller lists exactly
        # the rows it may show one by one.
        for collection in ("networks", "segments", "subnets", "ports"):
            every = [r["id"] for r in api.get(f"/v2.0/{collection}", headers=ADMIN).json()[collection]]
            for caller, headers in CALLERS.items():
                listed = [r["id"] for r in
                          api.get(f"/v2.0/{collection}", headers=headers).json()[collection]]
                shown = [i for i in every
                         if api.get(f"/v2.0/{collection}/{i}", headers=headers).status_code == 200]
                assert sorted(listed) == sorted(shown), (collection, caller)


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_a_policy_rule_sql_cannot_express_still_fills_every_page(db_url, tmp_path):
    """An operator's rule hides shared networks from non-admins: the row check decides, and
    pages read on past the rows it drops (more of them in a row than a page holds)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("get_network: \"rule:admin_only or "
                      "(rule:project_reader and 'False':%(shared)s)\"\n")
    api = build_api(db_url, policy_file=str(policy))
    with api.client:
        for i in range(3):
            make_network(api, headers=MEMBER, name=f"own{i}")
            for j in range(4):
                make_network(api, name=f"shared{i}{j}", shared=True)
        route = ("/v2.0/networks", "networks", "id", "name")
        for limit in (1, 2, 3, 4):
            for sort, reverse in ((None, False), ("desc", True)):
                assert assert_walks_match(api, route, MEMBER, limit, sort, reverse) == 3
        assert assert_walks_match(api, route, ADMIN, 5, "asc", False) == 15
