"""Every configured limit, at and beyond its edge: body size, JSON depth, control characters,
page size, rate limit, security headers, CORS and the database statement timeout."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from segmentd.api.ratelimit import address_key
from segmentd.db.engine import make_engine
from tests.conftest import build_api
from tests.e2e.server import E2E_CONFIG, serving
from tests.factories import error_of, issue_token, make_network, make_segment

# Limits are rules of the API layer; the statement-timeout tests choose their database.
pytestmark = pytest.mark.sqlite_only

SQLITE = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
BODY_LIMIT = 2048  # the smallest max_request_body_bytes allowed is 1024
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member"}


def assert_security_headers(resp) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, dict(resp.headers))
    assert "default-src 'none'" in resp.headers.get("content-security-policy", "")
    assert resp.headers.get("x-openstack-request-id", "").startswith("req-")
    assert "server" not in resp.headers


def nested(depth: int) -> dict:
    """`{"network": {"name": [[...]]}}` whose nesting depth is exactly `depth` (>= 3)."""
    value: object = "x"
    for _ in range(depth - 2):
        value = [value]
    return {"network": {"name": value}}


def chunks(total: int, size: int = 500):
    """A request body streamed without Content-Length (Transfer-Encoding: chunked)."""
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b" " * part
        sent += part


# -- Request body size ------------------------------------------------------------------------


@SQLITE
class TestBodyLimit:
    @pytest.fixture
    def api(self, db_url):
        api = build_api(db_url, max_request_body_bytes=BODY_LIMIT)
        with api.client:
            yield api

    def test_body_over_the_limit_with_content_length_is_413_and_writes_nothing(self, api):
        body = json.dumps({"network": {"name": "n", "description": "d" * BODY_LIMIT}})
        resp = api.client.post("/v2.0/networks", content=body,
                               headers={"Content-Type": "application/json"})
        assert resp.status_code == 413
        assert error_of(resp)["type"] == "RequestEntityTooLarge"
        assert_security_headers(resp)
        assert api.counts() == {"segments": 0, "networks": 0}

    def test_streamed_body_over_the_limit_is_413_and_writes_nothing(self, api):
        resp = api.client.post("/v2.0/networks", content=chunks(BODY_LIMIT + 1),
                               headers={"Content-Type": "application/json"})
        assert resp.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in resp.request.headers
        assert resp.status_code == 413
        assert error_of(resp)["type"] == "RequestEntityTooLarge"
        assert api.counts() == {"segments": 0, "networks": 0}

    def test_body_of_exactly_the_limit_is_read(self, api):
        head = b'{"network": {"name": "n"}}'
        body = head + b" " * (BODY_LIMIT - len(head))  # JSON allows trailing whitespace
        resp = api.client.post("/v2.0/networks", content=body,
                               headers={"Content-Type": "application/json"})
        assert resp.status_code == 201, resp.text

    def test_oversized_update_and_delete_by_content_length_change_nothing(self, api):
        net = make_network(api, name="keep")
        big = b" " * (BODY_LIMIT + 1)
        for method in ("PUT", "DELETE"):
            resp = api.client.request(method, f"/v2.0/networks/{net['id']}", content=big)
            assert resp.status_code == 413, (method, resp.text)
            assert error_of(resp)["type"] == "RequestEntityTooLarge"
        shown = api.get(f"/v2.0/networks/{net['id']}").json()["network"]
        assert shown["name"] == "keep" and shown["revision_number"] == net["revision_number"]

    def test_content_length_that_is_not_a_number_is_refused(self, api):
        resp = api.client.post("/v2.0/networks", content=b"{}",
                               headers={"Content-Length": "abc"})
        # A length the app cannot bound is refused as one over the limit (uvicorn's parser
        # already answers such a request 400 before the app sees it: test_request_head.py).
        assert resp.status_code == 413
        assert error_of(resp) == {"type": "RequestEntityTooLarge", "detail": "",
                                  "message": f"Request body is larger than {BODY_LIMIT} bytes."}
        assert api.counts() == {"segments": 0, "networks": 0}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """`segmentd serve` (uvicorn) on SQLite with a small body limit."""
    config = {**E2E_CONFIG, "max_request_body_bytes": BODY_LIMIT}
    with serving(tmp_path_factory.mktemp("limits-live"), name="limits", config=config) as server:
        yield server


def raw_request(base_url: str, method: str, path: str, body=None, headers=None):
    """http.client on a socket of its own: (status, lower-cased headers, parsed body)."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before the whole body is sent
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, (
            json.loads(raw) if raw else None
        )
    finally:
        conn.close()


@pytest.mark.slow
class TestLiveServer:
    def test_chunked_body_over_the_limit_is_413_and_writes_nothing(self, live_server):
        status, headers, body = raw_request(
            live_server.base_url, "POST", "/v2.0/networks", body=chunks(BODY_LIMIT + 600),
            headers={"Content-Type": "application/json"},  # http.client chunks an iterable
        )
        assert status == 413
        assert body["NeutronError"]["type"] == "RequestEntityTooLarge"
        assert_security_headers_raw(headers)
        _, _, listed = raw_request(live_server.base_url, "GET", "/v2.0/networks")
        assert listed == {"networks": []}

    def test_content_length_over_the_limit_is_413_before_the_body_is_read(self, live_server):
        status, headers, body = raw_request(
            live_server.base_url, "POST", "/v2.0/networks", body=b" " * (BODY_LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        assert status == 413 and body["NeutronError"]["type"] == "RequestEntityTooLarge"
        assert_security_headers_raw(headers)

    @pytest.mark.parametrize("method, path, expected", [
        ("GET", "/", 200),
        ("GET", "/v2.0/networks", 200),
        ("GET", "/v2.0/networks/00000000-0000-0000-0000-000000000000", 404),
        ("PATCH", "/v2.0/networks", 405),
        ("POST", "/v2.0/networks", 400),
    ])
    def test_uvicorn_sends_no_server_header_and_every_security_header(
        self, live_server, method, path, expected
    ):
        body = b"{" if method == "POST" else None
        status, headers, _ = raw_request(live_server.base_url, method, path, body=body)
        assert status == expected
        assert "server" not in headers, headers
        assert_security_headers_raw(headers)


def assert_security_headers_raw(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    assert "content-security-policy" in headers
    assert "server" not in headers


# -- JSON depth -------------------------------------------------------------------------------


@SQLITE
class TestJsonDepth:
    def test_json_nested_deeper_than_the_limit_is_400_and_at_the_limit_is_not(self, db_url):
        api = build_api(db_url, max_json_depth=8)
        with api.client:
            too_deep = api.post("/v2.0/networks", json=nested(9))
            at_limit = api.post("/v2.0/networks", json=nested(8))
            assert api.counts() == {"segments": 0, "networks": 0}
        assert too_deep.status_code == 400
        assert "nested deeper than 8" in error_of(too_deep)["message"]
        assert at_limit.status_code == 400  # a list is no name, but the depth was accepted
        assert "nested" not in error_of(at_limit)["message"]

    def test_default_depth_limit_applies_to_updates_too(self, api):
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json=nested(17))
        assert resp.status_code == 400
        assert "nested deeper than 16" in error_of(resp)["message"]

    def test_json_nested_beyond_the_parser_is_400_not_500(self, api):
        body = '{"network": {"name": ' + "[" * 50_000 + "]" * 50_000 + "}}"
        resp = api.client.post("/v2.0/networks", content=body,
                               headers={"Content-Type": "application/json"})
        assert resp.status_code == 400
        assert error_of(resp)["type"] == "MalformedRequestBody"


# -- Control characters -----------------------------------------------------------------------


CONTROL = ["a\x00b", "\x00", "tab\x01", "esc\x1b[31m", "del\x7f", "c1\x85", "nl\nx"]


class TestControlCharacters:
    @pytest.mark.parametrize("value", CONTROL)
    def test_control_characters_in_a_network_name_are_400_and_write_nothing(self, api, value):
        resp = api.post("/v2.0/networks", json={"network": {"name": value}})
        assert resp.status_code == 400
        assert "control characters" in error_of(resp)["message"]
        assert api.counts() == {"segments": 0, "networks": 0}

    @pytest.mark.parametrize("attr", ["name", "physical_network", "network_type"])
    def test_nul_in_segment_strings_is_400(self, api, attr):
        net = make_network(api)
        body = {"network_id": net["id"], "network_type": "flat", "physical_network": "phys",
                attr: "x\x00y"}
        resp = api.post("/v2.0/segments", json={"segment": body})
        assert resp.status_code == 400, resp.text
        assert error_of(resp) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": f"Invalid input for {attr}. Reason: control characters are not allowed."}
        assert api.counts() == {"segments": 1, "networks": 1}  # the network's own segment

    def test_description_refuses_nul_but_keeps_tab_and_newline(self, api):
        bad = api.post("/v2.0/networks", json={"network": {"description": "a\x00b"}})
        assert bad.status_code == 400
        assert error_of(bad) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": "Invalid input for description. Reason: control characters other than "
                       "tab and newline are not allowed."}
        good = make_network(api, description="line one\n\tline two")
        assert good["description"] == "line one\n\tline two"

    def test_printable_unicode_is_kept(self, api):
        assert make_network(api, name="réseau ✓ 網絡")["name"] == "réseau ✓ 網絡"

    @pytest.mark.parametrize("raw_id", ["%00", "a%00b", "%01%02", "x%1B[31m", "%7F"])
    @pytest.mark.parametrize("collection", ["networks", "segments"])
    def test_control_characters_in_a_path_id_are_404_without_echoing_them(
        self, api, collection, raw_id
    ):
        body = {collection[:-1]: {"name": "x"}}
        for method in ("GET", "PUT", "DELETE"):
            resp = api.request(method, f"/v2.0/{collection}/{raw_id}",
                               json=body if method == "PUT" else None)
            assert resp.status_code == 404, (method, resp.text)
            err = error_of(resp)
            assert err["message"].isprintable(), err
            assert "<invalid id>" in err["message"]

    def test_nul_in_a_filter_value_is_400(self, api):
        resp = api.get("/v2.0/networks?name=a%00b")
        assert resp.status_code == 400
        assert error_of(resp)["type"] == "HTTPBadRequest"


# -- Page size --------------------------------------------------------------------------------


class TestPageSize:
    @pytest.fixture
    def small_pages(self, db_url):
        api = build_api(db_url, pagination_max_limit=3)
        with api.client:
            net = make_network(api, name="n0")
            for i in range(1, 4):
                make_network(api, name=f"n{i}")
            for seg_id in (11, 12, 13):
                make_segment(api, net["id"], network_type="vxlan", segmentation_id=seg_id)
            yield api

    @pytest.mark.parametrize("collection", ["networks", "segments", "audit_events"])
    @pytest.mark.parametrize("limit", ["limit=100000", "limit=0", "", "limit=99999999999999999999"])
    def test_page_size_never_exceeds_the_maximum_and_links_to_the_rest(
        self, small_pages, collection, limit
    ):
        path = f"/v2.0/{collection.replace('_', '-')}?{limit}"
        body = small_pages.get(path).json()
        assert len(body[collection]) == 3
        links = {link["rel"]: link["href"] for link in body[f"{collection}_links"]}
        # Neutron links back from every page of a paged request; a list that asked for no
        # paging only links on, to what the maximum left out.
        paged = limit not in ("", "limit=0")
        assert sorted(links) == (["next", "previous"] if paged else ["next"])
        seen = [item["id"] for item in body[collection]]
        nxt = links["next"].replace("http://testserver", "")
        rest = small_pages.get(nxt).json()
        assert 1 <= len(rest[collection]) <= 3
        assert not {item["id"] for item in rest[collection]} & set(seen)

    def test_negative_or_non_numeric_limit_is_400(self, small_pages):
        for value in ("-1", "abc", "1.5"):
            resp = small_pages.get(f"/v2.0/networks?limit={value}")
            assert resp.status_code == 400, value
            assert error_of(resp)["type"] == "HTTPBadRequest"


# -- Rate limit -------------------------------------------------------------------------------


def burst(api, n: int, headers=None, path="/v2.0/networks"):
    return [api.get(path, headers=headers) for _ in range(n)]


@SQLITE
class TestRateLimit:
    @pytest.fixture
    def limited(self, db_url):
        api = build_api(db_url, rate_limit_per_second=1, rate_limit_burst=3)
        with api.client:
            yield api

    def test_fourth_quick_request_is_429_with_retry_after_and_over_limit(self, limited):
        responses = burst(limited, 4, MEMBER)
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        refused = responses[-1]
        # Less than one token is left, and one comes back a second: retry after 1 second.
        assert refused.headers["retry-after"] == "1"
        err = error_of(refused)
        assert err["type"] == "OverLimit"
        assert_security_headers(refused)

    def test_each_project_and_each_token_has_its_own_bucket(self, limited):
        assert burst(limited, 4, MEMBER)[-1].status_code == 429
        other_project = {"X-Project-Id": "p2", "X-Roles": "member"}
        assert [r.status_code for r in burst(limited, 3, other_project)] == [200] * 3
        # A token is the key when one is sent (development mode accepts any token).
        with_token = {**MEMBER, "X-Auth-Token": "token-a"}
        assert [r.status_code for r in burst(limited, 3, with_token)] == [200] * 3
        assert burst(limited, 1, with_token)[0].status_code == 429
        other_token = {**MEMBER, "X-Auth-Token": "token-b"}
        assert burst(limited, 1, other_token)[0].status_code == 200

    def test_writes_are_limited_and_a_refused_write_changes_nothing(self, limited):
        statuses = [limited.post("/v2.0/networks", json={"network": {"name": f"n{i}"}},
                                 headers=MEMBER).status_code for i in range(4)]
        assert statuses == [201, 201, 201, 429]
        assert limited.counts()["networks"] == 3

    def test_admins_are_limited_unless_exempt(self, db_url):
        api = build_api(db_url, rate_limit_per_second=1, rate_limit_burst=3)
        with api.client:
            assert burst(api, 4)[-1].status_code == 429  # no headers: the dev admin

    def test_rate_limit_exempt_admin_exempts_admins_only(self, db_url):
        api = build_api(db_url, rate_limit_per_second=1, rate_limit_burst=3,
                        rate_limit_exempt_admin=True)
        with api.client:
            admin = {"X-Project-Id": "ops", "X-Roles": "admin"}
            assert {r.status_code for r in burst(api, 10, admin)} == {200}
            assert {r.status_code for r in burst(api, 10)} == {200}
            assert burst(api, 4, MEMBER)[-1].status_code == 429

    def test_the_bucket_refills_at_the_configured_rate(self, db_url):
        # 2/s: a token takes 0.5 s to come back, far more than two requests take even on a
        # loaded machine (at 20/s a first request slower than 50 ms let the second through).
        api = build_api(db_url, rate_limit_per_second=2, rate_limit_burst=1)
        with api.client:
            assert [r.status_code for r in burst(api, 2, MEMBER)] == [200, 429]
            time.sleep(0.6)  # more than one token's worth at 2/s
            assert burst(api, 1, MEMBER)[0].status_code == 200

    def test_unversioned_documents_are_not_limited(self, limited):
        assert {r.status_code for r in burst(limited, 6, MEMBER, path="/")} == {200}

    def test_token_mode_limits_failed_authentication_per_client_address(self, db_url):
        api = build_api(db_url, auth_mode="token", anonymous_rate_limit_per_second=1,
                        anonymous_rate_limit_burst=3)
        with api.client:
            statuses = [api.get("/v2.0/networks", headers={"X-Auth-Token": f"guess-{i}"})
                        .status_code for i in range(4)]
            assert statuses == [401, 401, 401, 429]
            missing = api.post("/v2.0/networks", json={"network": {"name": "n"}})
            assert missing.status_code == 429  # no token at all spends from the same bucket
            assert error_of(missing)["type"] == "OverLimit"

    def test_per_token_limit_is_off_at_the_defaults(self, db_url):
        """A sequential client is never refused, however fast the server answers it."""
        api = build_api(db_url)
        with api.client:
            assert {r.status_code for r in burst(api, 300, MEMBER)} == {200}
            assert {r.status_code for r in burst(api, 300)} == {200}  # the dev admin

    def test_paths_without_a_route_spend_from_the_same_bucket(self, limited):
        statuses = [limited.get("/v2.0/no-such-things", headers=MEMBER).status_code,
                    limited.post(f"/v2.0/networks/{uuid.uuid4()}", headers=MEMBER).status_code,
                    *[r.status_code for r in burst(limited, 2, MEMBER)]]
        assert statuses == [404, 405, 200, 429]

    def test_token_mode_limits_per_token_not_per_project(self, db_url):
        api = build_api(db_url, auth_mode="token", token_cache_seconds=0,
                        rate_limit_per_second=1, rate_limit_burst=3)
        with api.client:
            first, _ = issue_token(api, "p1", ["member", "reader"], name="first")
            second, _ = issue_token(api, "p1", ["member", "reader"], name="second")
            assert burst(api, 4, {"X-Auth-Token": first})[-1].status_code == 429
            assert burst(api, 1, {"X-Auth-Token": second})[0].status_code == 200


@pytest.mark.parametrize("host, key", [
    ("192.0.2.7", "address:192.0.2.7"),
    ("::ffff:192.0.2.7", "address:192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "address:2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "address:2001:db8:1:2::/64"),
    ("testclient", "address:testclient"),
    (None, "address:unknown"),
])
def test_anonymous_callers_are_keyed_by_address_and_ipv6_by_its_64(host, key):
    assert address_key(host) == key


# -- Security headers -------------------------------------------------------------------------


async def _boom():
    raise RuntimeError("boom in /work/main/segmentd/secret.py: SELECT password FROM users")


@pytest.fixture
def api_with_a_failing_route(db_url):
    api = build_api(db_url)
    api.client.app.add_api_route("/v2.0/boom", _boom, methods=["GET"])
    with api.client:
        yield api


@SQLITE
class TestSecurityHeaders:
    def test_on_success_responses(self, api):
        net = make_network(api)
        responses = (
            api.get("/"),
            api.get("/v2.0/networks"),
            api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "m"}}),
            api.delete(f"/v2.0/networks/{net['id']}"),
        )
        assert [resp.status_code for resp in responses] == [200, 200, 200, 204]
        for resp in responses:
            assert_security_headers(resp)

    @pytest.mark.parametrize("method, path, body, status", [
        ("POST", "/v2.0/networks", {"network": {"bogus": 1}}, 400),
        ("POST", "/v2.0/segments", {"segment": {"network_id": "NET", "network_type": "vxlan"}},
         403),
        ("GET", "/v2.0/networks/00000000-0000-0000-0000-000000000000", None, 404),
        ("GET", "/v2.0/nothing-here", None, 404),
        ("PATCH", "/v2.0/networks", None, 405),
    ])
    def test_on_error_responses(self, api, method, path, body, status):
        net = make_network(api, headers=MEMBER)
        if body and "segment" in body:
            body = {"segment": {**body["segment"], "network_id": net["id"]}}
        resp = api.request(method, path, json=body, headers=MEMBER)
        assert resp.status_code == status
        error_of(resp)
        assert_security_headers(resp)

    def test_unexpected_error_is_500_with_nothing_but_the_request_id(
        self, api_with_a_failing_route
    ):
        resp = api_with_a_failing_route.get("/v2.0/boom")
        assert resp.status_code == 500
        err = error_of(resp)
        request_id = resp.headers["x-openstack-request-id"]
        assert err == {
            "type": "HTTPInternalServerError", "detail": "",
            "message": f"The server could not complete the request (request id {request_id}).",
        }

    def test_on_an_unexpected_500(self, api_with_a_failing_route):
        resp = api_with_a_failing_route.get("/v2.0/boom")
        assert resp.status_code == 500
        assert_security_headers(resp)


# -- CORS -------------------------------------------------------------------------------------


PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "Content-Type, X-Auth-Token"}


@SQLITE
class TestCors:
    def test_no_cors_headers_by_default(self, api):
        preflight = api.request("OPTIONS", "/v2.0/networks",
                                headers={"Origin": "https://ui.example", **PREFLIGHT})
        simple = api.get("/v2.0/networks", headers={"Origin": "https://ui.example"})
        for resp in (preflight, simple):
            assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
        assert preflight.status_code == 405
        assert error_of(preflight) == {"type": "HTTPMethodNotAllowed", "detail": "",
                                       "message": "The method is not allowed."}

    def test_configured_origin_is_allowed_and_another_is_not(self, db_url):
        api = build_api(db_url, cors_allowed_origins=["https://ui.example"])
        with api.client:
            allowed = api.request("OPTIONS", "/v2.0/networks",
                                  headers={"Origin": "https://ui.example", **PREFLIGHT})
            other = api.request("OPTIONS", "/v2.0/networks",
                                headers={"Origin": "https://evil.example", **PREFLIGHT})
            simple = api.get("/v2.0/networks", headers={"Origin": "https://ui.example"})
            simple_other = api.get("/v2.0/networks", headers={"Origin": "https://evil.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        assert "X-Auth-Token" in allowed.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in allowed.headers
        assert "access-control-allow-origin" not in other.headers
        # Starlette's CORS middleware answers a preflight of another origin itself.
        assert (other.status_code, other.text) == (400, "Disallowed CORS origin")
        assert simple.headers["access-control-allow-origin"] == "https://ui.example"
        assert "X-Openstack-Request-Id" in simple.headers["access-control-expose-headers"]
        assert "access-control-allow-origin" not in simple_other.headers
        assert_security_headers(allowed)


# -- Database statement timeout ---------------------------------------------------------------


def run_on(engine, sql: str):
    async def go():
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.postgresql
@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_postgresql_statement_timeout_cancels_a_long_statement(db_url):
    assert run_on(make_engine(db_url, statement_timeout_ms=100), "SHOW statement_timeout") == "100ms"
    started = time.monotonic()
    with pytest.raises(DBAPIError, match="statement timeout"):
        run_on(make_engine(db_url, statement_timeout_ms=100), "SELECT pg_sleep(1)")
    assert time.monotonic() - started < 0.9


@pytest.mark.postgresql
@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_the_app_engine_carries_the_configured_statement_timeout(db_url):
    api = build_api(db_url, database_statement_timeout_ms=250)
    with api.client:
        engine = api.client.app.state.runtime.engine

        async def show():
            async with engine.connect() as conn:
                return (await conn.execute(text("SHOW statement_timeout"))).scalar()

        assert api.client.portal.call(show) == "250ms"


@pytest.mark.parametrize("db_kind", ["mariadb"], indirect=True)
def test_mariadb_statement_timeout_cancels_a_long_statement(db_url):
    assert run_on(make_engine(db_url, statement_timeout_ms=100),
                  "SELECT @@max_statement_time") == pytest.approx(0.1)
    with pytest.raises(DBAPIError, match="max_statement_time"):
        run_on(make_engine(db_url, statement_timeout_ms=100), "SELECT SLEEP(1)")
