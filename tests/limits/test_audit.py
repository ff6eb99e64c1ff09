"""The audit trail: every mutating request, allowed or refused, and who made it.

Rows are read back through GET /v2.0/audit-events (admin only) and `segmentd audit list`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
from sqlalchemy import text

from segmentd.config import Settings
from tests.api.test_health import metric_samples
from tests.conftest import build_api
from tests.e2e.server import SEGMENTD
from tests.factories import error_of, issue_token, make_network

MEMBER = {"X-Project-Id": "p1", "X-Roles": "member"}
READER = {"X-Project-Id": "p1", "X-Roles": "reader"}
MISSING = "00000000-0000-0000-0000-000000000000"


def events(api, query: str = "", headers=None) -> list[dict]:
    """Audit rows as the development-mode admin (or `headers`) lists them."""
    resp = api.get(f"/v2.0/audit-events{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["audit_events"]


def rid(resp) -> str:
    return resp.headers["x-openstack-request-id"]


def summary(row: dict) -> tuple:
    return (row["action"], row["resource_type"], row["resource_id"], row["outcome"],
            row["status"], row["request_id"])


# -- What is recorded -------------------------------------------------------------------------


def test_network_create_update_delete_are_recorded_with_their_request_ids(api):
    created = api.post("/v2.0/networks", json={"network": {"name": "a"}})
    net_id = created.json()["network"]["id"]
    updated = api.put(f"/v2.0/networks/{net_id}", json={"network": {"name": "b"}})
    deleted = api.delete(f"/v2.0/networks/{net_id}")
    rows = events(api)
    assert [summary(r) for r in rows] == [
        ("create_network", "network", net_id, "success", 201, rid(created)),
        ("update_network", "network", net_id, "success", 200, rid(updated)),
        ("delete_network", "network", net_id, "success", 204, rid(deleted)),
    ]
    for row in rows:
        assert row["project_id"] == "dev"
        assert row["token_id"] is None  # development mode has no tokens
        assert row["roles"] == ["admin", "member", "reader"]
        assert row["time"].endswith("Z")


def test_segment_create_update_delete_are_recorded(api):
    net = make_network(api, **{"provider:network_type": "vxlan"})
    created = api.post("/v2.0/segments", json={"segment": {
        "network_id": net["id"], "network_type": "geneve"}})
    seg_id = created.json()["segment"]["id"]
    updated = api.put(f"/v2.0/segments/{seg_id}", json={"segment": {"name": "s"}})
    deleted = api.delete(f"/v2.0/segments/{seg_id}")
    assert [summary(r) for r in events(api, "?resource_type=segment")] == [
        ("create_segment", "segment", seg_id, "success", 201, rid(created)),
        ("update_segment", "segment", seg_id, "success", 200, rid(updated)),
        ("delete_segment", "segment", seg_id, "success", 204, rid(deleted)),
    ]


def test_denied_request_is_recorded_with_the_callers_project_and_status(api):
    net = make_network(api, headers=MEMBER)
    resp = api.post("/v2.0/segments", headers=MEMBER, json={"segment": {
        "network_id": net["id"], "network_type": "vxlan"}})
    assert resp.status_code == 403
    assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                              "message": "rule:create_segment is disallowed by policy"}
    (row,) = events(api, "?outcome=denied")
    assert summary(row) == ("create_segment", "segment", None, "denied", 403, rid(resp))
    assert row["project_id"] == "p1"
    assert row["roles"] == ["member", "reader"]


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/v2.0/networks", {"network": {"bogus": 1}}, 400),
    ("POST", "/v2.0/networks", "not json", 400),
    ("PUT", f"/v2.0/networks/{MISSING}", {"network": {"name": "x"}}, 404),
    ("DELETE", f"/v2.0/segments/{MISSING}", None, 404),
    ("DELETE", "/v2.0/networks/not-an-id", None, 404),
])
@pytest.mark.sqlite_only
def test_rejected_request_is_recorded_with_its_status(api, method, path, body, status):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    resp = api.client.request(method, path, **kwargs)
    assert resp.status_code == status
    (row,) = events(api)
    assert row["outcome"] == "rejected" and row["status"] == status
    assert row["request_id"] == rid(resp)
    assert row["action"] == {"POST": "create", "PUT": "update", "DELETE": "delete"}[method] + (
        "_network" if "networks" in path else "_segment")
    assert api.counts() == {"segments": 0, "networks": 0}


def test_conflict_and_failed_precondition_are_rejected_rows(api):
    net = make_network(api, **{"provider:network_type": "vlan",
                               "provider:physical_network": "physnet1",
                               "provider:segmentation_id": 200})
    clash = api.post("/v2.0/networks", json={"network": {
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": 200}})
    stale = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                    headers={"If-Match": "revision_number=99"})
    assert (clash.status_code, stale.status_code) == (409, 412)
    rows = events(api, "?outcome=rejected")
    assert [(r["action"], r["status"], r["request_id"]) for r in rows] == [
        ("create_network", 409, rid(clash)), ("update_network", 412, rid(stale)),
    ]


def test_reads_are_not_recorded(api):
    net = make_network(api)
    for path in ("/", "/v2.0/networks", f"/v2.0/networks/{net['id']}",
                 f"/v2.0/networks/{MISSING}", "/v2.0/segments", "/v2.0/audit-events",
                 "/v2.0/extensions"):
        api.get(path)
        api.get(path, headers=MEMBER)
    assert [r["action"] for r in events(api)] == ["create_network"]


@pytest.mark.sqlite_only
def test_rate_limited_write_is_logged_not_stored(db_url, caplog):
    """A flood of 429s must not grow the audit table: they are logged with the request id."""
    api = build_api(db_url, rate_limit_per_second=1, rate_limit_burst=1)
    with api.client:
        api.post("/v2.0/networks", json={"network": {"name": "a"}}, headers=MEMBER)
        with caplog.at_level("INFO", logger="segmentd.api.middleware"):
            refused = api.post("/v2.0/networks", json={"network": {"name": "b"}}, headers=MEMBER)
        assert refused.status_code == 429
        assert error_of(refused)["type"] == "OverLimit"
        assert [r["status"] for r in events(api)] == [201]
    assert rid(refused) in caplog.text


def test_streamed_body_over_the_limit_is_recorded_as_rejected_413(db_url):
    api = build_api(db_url, max_request_body_bytes=1024)
    with api.client:
        resp = api.client.post("/v2.0/networks", content=(b" " * 512 for _ in range(3)))
        assert resp.status_code == 413
        assert error_of(resp) == {"type": "RequestEntityTooLarge", "detail": "",
                                  "message": "Request body is larger than 1024 bytes."}
        rows = events(api)
    assert [summary(r) for r in rows] == [
        ("create_network", "network", None, "rejected", 413, rid(resp))]


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_body_refused_by_content_length_is_logged_not_stored(db_url, caplog):
    """Refused before anyone is identified: storing it would be an unauthenticated write path."""
    api = build_api(db_url, max_request_body_bytes=1024)
    with api.client, caplog.at_level("INFO", logger="segmentd.api.middleware"):
        resp = api.client.post("/v2.0/networks", content=b" " * 2048)
        assert resp.status_code == 413
        assert error_of(resp) == {"type": "RequestEntityTooLarge", "detail": "",
                                  "message": "Request body is larger than 1024 bytes."}
        assert events(api) == []
    assert any("refused a 2048-byte body" in r.getMessage() for r in caplog.records)


def test_refused_request_with_a_nul_in_the_path_id_is_still_recorded(api):
    resp = api.put("/v2.0/networks/a%00b", json={"network": {"name": "x"}})
    assert resp.status_code == 404
    assert error_of(resp) == {"type": "NetworkNotFound", "detail": "",
                              "message": "Network <invalid id> could not be found."}
    rows = events(api)
    assert [(r["action"], r["status"], r["request_id"]) for r in rows] == [
        ("update_network", 404, rid(resp))]


# -- GET /v2.0/audit-events -------------------------------------------------------------------


@pytest.fixture
def trail(api):
    """Five rows: two networks created, one renamed, one refused (400), one denied (403)."""
    a = make_network(api, name="a")
    b = make_network(api, name="b", headers=MEMBER)
    api.put(f"/v2.0/networks/{a['id']}", json={"network": {"name": "a2"}})
    refused = api.post("/v2.0/networks", json={"network": {"bogus": True}})
    assert refused.status_code == 400
    assert error_of(refused) == {"type": "HTTPBadRequest", "detail": "",
                                 "message": "Unrecognized attribute(s) 'bogus'"}
    denied = api.post("/v2.0/segments", headers=MEMBER,
                      json={"segment": {"network_id": b["id"], "network_type": "vxlan"}})
    assert denied.status_code == 403
    assert error_of(denied)["type"] == "PolicyNotAuthorized"
    return api, a


def test_default_order_is_oldest_first_and_sorting_reverses_it(trail):
    api, _ = trail
    rows = events(api)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(ids) == 5
    assert [r["id"] for r in events(api, "?sort_key=id&sort_dir=desc")] == ids[::-1]
    assert [r["action"] for r in rows] == [
        "create_network", "create_network", "update_network", "create_network", "create_segment"]


@pytest.mark.parametrize("query, expected", [
    ("?project_id=p1", 2),
    ("?action=create_network", 3),
    ("?outcome=success", 3),
    ("?outcome=rejected", 1),
    ("?outcome=denied", 1),
    ("?resource_type=segment", 1),
    ("?status=201", 2),
    ("?status=403&status=400", 2),
    ("?action=create_network&outcome=success&project_id=dev", 1),
    ("?outcome=error", 0),
])
def test_filters(trail, query, expected):
    api, _ = trail
    assert len(events(api, query)) == expected


def test_filter_by_resource_id_and_fields(trail):
    api, a = trail
    rows = events(api, f"?resource_id={a['id']}&fields=action&fields=status")
    assert rows == [{"action": "create_network", "status": 201},
                    {"action": "update_network", "status": 200}]


def test_unknown_filter_is_400(trail):
    api, _ = trail
    resp = api.get("/v2.0/audit-events?roles=admin")
    assert resp.status_code == 400
    assert error_of(resp)["type"] == "HTTPBadRequest"


def test_pages_of_two_walk_every_row_once(trail):
    api, _ = trail
    url, seen, pages = "/v2.0/audit-events?limit=2", [], 0
    while url:
        body = api.get(url).json()
        seen += [r["id"] for r in body["audit_events"]]
        nxt = [link["href"] for link in body.get("audit_events_links", []) if link["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
        pages += 1
    assert pages == 3
    assert seen == [r["id"] for r in events(api)]


@pytest.mark.parametrize("caller", [MEMBER, READER, {"X-Project-Id": "dev", "X-Roles": "member"}])
def test_non_admins_see_an_empty_trail(trail, caller):
    api, _ = trail
    assert events(api, headers=caller) == []


# -- segmentd audit list ----------------------------------------------------------------------


def audit_cli(tmp_path, db_url: str, *args: str) -> list[dict]:
    config = tmp_path / "audit.toml"
    config.write_text('log_level = "warning"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    out = subprocess.run(
        [SEGMENTD, "audit", "list", "--config", str(config), "--database-url", db_url,
         "--json", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.mark.sqlite_only
def test_cli_lists_the_trail_newest_first_with_filters(trail, tmp_path):
    api, _ = trail
    assert audit_cli(tmp_path, api.db_url) == events(api, "?sort_key=id&sort_dir=desc")
    filtered = audit_cli(tmp_path, api.db_url, "--project", "p1", "--outcome", "success",
                         "--action", "create_network", "--limit", "1")
    assert [(r["project_id"], r["action"], r["status"]) for r in filtered] == [
        ("p1", "create_network", 201)]


# -- Token mode -------------------------------------------------------------------------------


@pytest.fixture
def token_api(db_url):
    api = build_api(db_url, auth_mode="token", token_cache_seconds=0)
    with api.client:
        yield api


@pytest.mark.sqlite_only
def test_token_mode_rows_carry_the_token_id_never_the_secret(token_api, db_url, tmp_path):
    admin_secret, _ = issue_token(token_api, "ops", ["admin"])
    secret, row = issue_token(token_api, "p1", ["member", "reader"])
    admin = {"X-Auth-Token": admin_secret}
    created = token_api.post("/v2.0/networks", json={"network": {"name": "n"}},
                             headers={"X-Auth-Token": secret})
    assert created.status_code == 201
    listed = token_api.get("/v2.0/audit-events", headers=admin)
    (event,) = listed.json()["audit_events"]
    assert event["token_id"] == row["id"]
    assert event["project_id"] == "p1" and event["request_id"] == rid(created)
    assert event["outcome"] == "success"
    for text in (listed.text, json.dumps(audit_cli(tmp_path, db_url))):
        assert secret not in text and row["token_hash"] not in text
        assert admin_secret not in text


def audit_count(api) -> int:
    return api._run(
        lambda conn: conn.execute(text("SELECT count(*) FROM audit_events"))).scalar()


@pytest.mark.parametrize("token", [None, "sgd_not-a-real-token", "x" * 9000])
@pytest.mark.sqlite_only
def test_token_mode_bad_token_on_a_write_is_401_logged_not_stored(token_api, token, caplog):
    """Nobody is accountable for it: stored, it would be an unauthenticated write path."""
    headers = {"X-Auth-Token": token} if token else {}
    with caplog.at_level("INFO", logger="segmentd.api.middleware"):
        resp = token_api.post("/v2.0/networks", json={"network": {"name": "n"}},
                              headers=headers)
    assert resp.status_code == 401
    assert error_of(resp)["type"] == "NotAuthenticated"
    assert audit_count(token_api) == 0
    assert token_api.counts() == {"segments": 0, "networks": 0}
    assert f"refused create_network (network) from testclient: 401 [{rid(resp)}]" in caplog.text


def audit_rows_of(api, token_id: str) -> int:
    return api._run(lambda conn: conn.execute(
        text("SELECT count(*) FROM audit_events WHERE token_id = :t"), {"t": token_id})).scalar()


@pytest.mark.sqlite_only
def test_a_token_that_may_change_nothing_cannot_grow_the_trail_without_bound(token_api,
                                                                             caplog):
    """A reader's refused writes are stored up to its audit budget (at the defaults, 100 and
    then 1 per second, per process); the rest are logged and counted in /metrics. Another
    caller's refusals and every success are still stored."""
    admin_secret, admin_row = issue_token(token_api, "ops", ["admin"])
    reader_secret, reader_row = issue_token(token_api, "p1", ["reader"])
    admin = {"X-Auth-Token": admin_secret}
    burst = Settings.model_fields["audit_refusals_burst"].default
    rate = Settings.model_fields["audit_refusals_per_second"].default
    sent = 3 * burst
    started = time.monotonic()
    with caplog.at_level("INFO", logger="segmentd.api.middleware"):
        for i in range(sent):
            resp = token_api.post("/v2.0/networks", json={"network": {"name": f"n{i}"}},
                                  headers={"X-Auth-Token": reader_secret})
            assert resp.status_code == 403, resp.text
            assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                                      "message": "rule:create_network is disallowed by policy"}
    elapsed = time.monotonic() - started
    stored = audit_rows_of(token_api, reader_row["id"])
    # The budget refills while the requests are sent: at most `rate` more a second.
    assert burst <= stored <= burst + int(elapsed * rate) + 1 < sent
    over = [r.getMessage() for r in caplog.records if "over the audit budget" in r.getMessage()]
    assert len(over) == sent - stored
    assert f"refused create_network (network) from testclient project p1 token " \
           f"{reader_row['id']}: 403" in over[0]
    samples = metric_samples(token_api.get("/metrics", headers=admin).text)
    assert samples[("segmentd_audit_refusals_unrecorded_total", ())] == sent - stored

    # The admin's budget is its own, and successes are never throttled.
    missing = token_api.put(f"/v2.0/networks/{MISSING}", json={"network": {"name": "x"}},
                            headers=admin)
    assert missing.status_code == 404
    assert error_of(missing)["type"] == "NetworkNotFound"
    created = token_api.post("/v2.0/networks", json={"network": {"name": "ok"}}, headers=admin)
    assert created.status_code == 201
    rows = {r["request_id"]: r for r in events(token_api, "?project_id=ops", headers=admin)}
    assert rows[rid(missing)]["outcome"] == "rejected"
    assert rows[rid(created)]["outcome"] == "success"
    assert audit_rows_of(token_api, admin_row["id"]) == 2


# Paths no route takes (404) or whose route takes no POST/PUT (405), and a route that needs
# a token (401); the free text in them must never reach a row or a log line.
FLOOD_TARGETS = [
    ("POST", "/v2.0/<script>x</script>-{i}", 404),
    ("PUT", "/v2.0/DROP TABLE networks;--{i}", 404),
    ("DELETE", "/admin/%0aforged-line-{i}", 404),
    ("POST", "/v2.0/networks/" + MISSING, 405),
    ("POST", "/v2.0/networks", 401),
]


@pytest.mark.parametrize("token", [None, "sgd_not-a-real-token"])
@pytest.mark.sqlite_only
def test_anonymous_flood_adds_no_audit_row_and_is_limited_per_address(token_api, token,
                                                                       caplog):
    """400 anonymous writes at the default limits: none stored, the address throttled (429)
    after its burst, and a valid token from the same address still served."""
    admin_secret, _ = issue_token(token_api, "ops", ["admin"])
    headers = {"X-Auth-Token": token} if token else {}
    burst = Settings.model_fields["anonymous_rate_limit_burst"].default
    rate = Settings.model_fields["anonymous_rate_limit_per_second"].default
    statuses = []
    started = time.monotonic()
    with caplog.at_level("INFO", logger="segmentd.api.middleware"):
        for i in range(400):
            method, path, status = FLOOD_TARGETS[i % len(FLOOD_TARGETS)]
            resp = token_api.client.request(method, path.format(i=i), headers=headers,
                                            json={"network": {"name": "x" * 200}})
            statuses.append(resp.status_code)
            if i < burst:
                assert resp.status_code == status, (i, resp.status_code)
            elif resp.status_code == 429:
                assert error_of(resp)["type"] == "OverLimit"
                assert resp.headers["retry-after"] == "1"  # under a token, refilled at 2/s
            else:  # the bucket refilled meanwhile (2 per second at the defaults)
                assert resp.status_code == status, (i, resp.status_code)
    elapsed = time.monotonic() - started
    # The bucket refills while the requests are sent: at most `rate` more a second.
    served = len(statuses) - statuses.count(429)
    assert burst <= served <= burst + int(elapsed * rate) + 1 < len(statuses), (served, elapsed)
    assert audit_count(token_api) == 0
    assert token_api.counts() == {"segments": 0, "networks": 0}
    # segmentd's own log lines (the test client logs the URLs it requests itself)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("segmentd"))
    assert "refused" in logged
    for text_ in ("script", "DROP", "forged", MISSING):
        assert text_ not in logged
    served = token_api.get("/v2.0/networks", headers={"X-Auth-Token": admin_secret})
    assert served.status_code == 200


def test_unrouted_write_of_a_known_caller_is_recorded_without_its_path(api):
    """resource_type comes from the route table: a path no route takes is `none`."""
    unrouted = api.post("/v2.0/DROP TABLE networks;--", json={})
    wrong_method = api.post(f"/v2.0/networks/{MISSING}", json={})
    nested = api.put("/v2.0/networks/a/b/c", json={})
    assert [r.status_code for r in (unrouted, wrong_method, nested)] == [404, 405, 404]
    assert [error_of(r)["type"] for r in (unrouted, wrong_method, nested)] == [
        "HTTPNotFound", "HTTPMethodNotAllowed", "HTTPNotFound"]
    assert [summary(r) for r in events(api)] == [
        ("post_unrouted", "none", None, "rejected", 404, rid(unrouted)),
        ("post_unrouted", "none", None, "rejected", 405, rid(wrong_method)),
        ("put_unrouted", "none", None, "rejected", 404, rid(nested)),
    ]
    assert events(api)[0]["project_id"] == "dev"


def test_an_id_in_the_path_is_recorded_only_when_shaped_like_one(api):
    """The id of a routed path is the caller's text too: free text where an id goes is
    recorded as `<invalid>`, never repeated."""
    free_text = api.put("/v2.0/networks/SELECT password FROM users; <script>",
                        json={"network": {"name": "x"}})
    id_like = api.delete("/v2.0/ports/please.call.me.at-555-0100")
    missing = api.put(f"/v2.0/networks/{MISSING}", json={"network": {"name": "x"}})
    assert [r.status_code for r in (free_text, id_like, missing)] == [404, 404, 404]
    assert [error_of(r)["type"] for r in (free_text, id_like, missing)] == [
        "NetworkNotFound", "PortNotFound", "NetworkNotFound"]
    assert [summary(r) for r in events(api)] == [
        ("update_network", "network", "<invalid>", "rejected", 404, rid(free_text)),
        ("delete_port", "port", "<invalid>", "rejected", 404, rid(id_like)),
        ("update_network", "network", MISSING, "rejected", 404, rid(missing)),
    ]


def test_token_mode_unrouted_write_with_a_valid_token_is_recorded_with_its_caller(token_api):
    secret, row = issue_token(token_api, "p1", ["member", "reader"])
    resp = token_api.delete("/v2.0/no-such-things/" + "y" * 300,
                            headers={"X-Auth-Token": secret})
    assert resp.status_code == 404
    assert error_of(resp) == {"type": "HTTPNotFound", "detail": "",
                              "message": "The resource could not be found."}
    admin_secret, _ = issue_token(token_api, "ops", ["admin"])
    (event,) = token_api.get("/v2.0/audit-events",
                             headers={"X-Auth-Token": admin_secret}).json()["audit_events"]
    assert summary(event) == ("delete_unrouted", "none", None, "rejected", 404, rid(resp))
    assert (event["token_id"], event["project_id"]) == (row["id"], "p1")


def test_token_mode_members_see_an_empty_trail(token_api):
    secret, _ = issue_token(token_api, "p1", ["member", "reader"])
    token_api.post("/v2.0/networks", json={"network": {"name": "n"}},
                   headers={"X-Auth-Token": secret})
    resp = token_api.get("/v2.0/audit-events", headers={"X-Auth-Token": secret})
    assert resp.json() == {"audit_events": []}


def test_token_mode_bad_token_on_a_read_is_401_and_not_recorded(token_api):
    admin_secret, _ = issue_token(token_api, "ops", ["admin"])
    refused = token_api.get("/v2.0/networks", headers={"X-Auth-Token": str(uuid.uuid4())})
    assert refused.status_code == 401
    assert error_of(refused) == {"type": "NotAuthenticated", "detail": "",
                                 "message": "Authentication required."}
    assert token_api.get("/v2.0/audit-events",
                         headers={"X-Auth-Token": admin_secret}).json() == {"audit_events": []}
