"""Schemathesis against the OpenAPI document the app serves: no 5xx, every error a clean NeutronError.

Every operation of `/openapi.json` is fuzzed in process (the project's TestClient on the real
app, fresh migrated databases per operation), with valid and invalid inputs (schemathesis'
positive and negative modes, its coverage phase's boundary values included). Each generated
request goes to the app on SQLite and to the app on PostgreSQL (SEGMENTD_FUZZ_DATABASES,
comma-separated, chooses others). Each response
must be below 500 and, when it is an error, Neutron's error body with nothing internal in it.

The served document does not describe Neutron's list parameters (limit, marker, sort_key,
sort_dir, fields, page_reverse, attribute filters) nor the headers segmentd reads (If-Match,
X-Auth-Token, the development-mode identity headers): the loaded copy gets them added on
every collection and operation, so the fuzzer reaches the SQL built from them and every
integer and string read from a query string or header (integers of thousands of digits and
control characters included).

Budget: SEGMENTD_FUZZ_EXAMPLES examples per operation (default 20; derandomized, so a run is
repeatable). A longer, random run: `SEGMENTD_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/fuzz`,
or `tests/fuzz/run_long.py` which also prints the figures.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
from collections.abc import Mapping
from types import SimpleNamespace

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from schemathesis.core import NotSet
from schemathesis.generation.modes import GenerationMode
from starlette.testclient import TestClient

from segmentd.api.routes import (
    agents,
    audit_events,
    event_subscriptions,
    hosts,
    ip_availability,
    networks,
    ports,
    segments,
    subnets,
)
from segmentd.app import create_app
from tests.conftest import build_api, fresh_database, make_settings
from tests.factories import error_of, make_network, make_segment

EXAMPLES = int(os.environ.get("SEGMENTD_FUZZ_EXAMPLES", "20"))
LONG_RUN = "SEGMENTD_FUZZ_EXAMPLES" in os.environ
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
# Where each fuzzed request goes (run_long.py --db sets it).
FUZZ_DATABASES = os.environ.get("SEGMENTD_FUZZ_DATABASES", "sqlite,postgresql").split(",")
STATS_FILE = os.environ.get("SEGMENTD_FUZZ_STATS")  # run_long.py collects figures through it

# Text the server must never put in an error: its database, its code, its libraries, its version
# (matched case-sensitively: "Cannot update read-only attribute" is not SQL).
LEAKS = [
    # SQL and database drivers
    "SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", " WHERE ", "sqlalchemy", "psycopg",
    "asyncpg", "aiosqlite", "sqlite3", "asyncmy", "pymysql", "IntegrityError",
    "OperationalError", "DataError", "ProgrammingError", "DBAPIError", "[SQL:",
    "sqlalche.me",
    # tracebacks and source files
    "Traceback (most recent call last)", 'File "', ", line ", "/work/", "site-packages",
    ".py", "segmentd/",
    # library class paths and versions
    "pydantic_core.", "pydantic.", "pydantic.dev", "starlette.", "fastapi.", "uvicorn",
    "anyio.", "orjson.", "Python/3", "segmentd 0.", "0.1.0",
]


def served_document() -> dict:
    """`GET /openapi.json` of the real app (serving it touches no database)."""
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    resp = TestClient(app).get("/openapi.json")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _query(name: str, schema: dict, *, array: bool = False) -> dict:
    if array:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "style": "form", "explode": True}


# Integer columns as filters: values beyond the database's column type included.
INT_FILTERS = {"mtu", "revision_number", "segmentation_id", "provider:segmentation_id",
               "ip_version", "attempts"}
BOOL_FILTERS = {"shared", "admin_state_up", "enable_dhcp", "enabled", "alive"}
# Any integer, or plain digits: a few, or more than int() takes (4,300), leading zeros
# included; a few such values fit in one URL (httpx, like the server's 64 KiB head limit,
# refuses longer ones). The long ones are fixed: drawn from a pattern, each cost hypothesis
# a fifth of a second, a sixth of the fuzzing's time.
LONG_DIGITS = ["9" * 4301, "1" + "0" * 4399, "0" * 4300 + "7"]
DIGITS = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]{1,25}$"},
                    {"type": "string", "enum": LONG_DIGITS}]}


def list_parameters(fields: tuple[str, ...], audit: bool = False) -> list[dict]:
    """Neutron's list parameters: paging and sorting, then one filter per attribute."""
    params = [
        _query("limit", DIGITS),
        _query("marker", {"type": "string"}),
        _query("page_reverse", {"type": "boolean"}),
        _query("sort_key", {"type": "string", "enum": list(fields)}, array=True),
        _query("sort_dir", {"type": "string", "enum": ["asc", "desc"]}, array=True),
        _query("fields", {"type": "string", "enum": list(fields)}, array=True),
    ]
    for name in fields:
        if (audit and name == "status") or (not audit and name in INT_FILTERS):
            schema = DIGITS
        elif name in BOOL_FILTERS:
            schema = {"type": "boolean"}
        else:
            schema = {"type": "string"}
        params.append(_query(name, schema))
    return params


def _header(name: str, schema: dict) -> dict:
    return {"name": name, "in": "header", "required": False, "schema": schema}


# What segmentd reads from headers besides the caller's identity (which CALLERS sets).
HEADERS = [
    _header("X-Auth-Token", {"type": "string"}),
    _header("X-User-Id", {"type": "string"}),
    _header("X-Host", {"type": "string"}),
]
IF_MATCH = _header("If-Match", {"anyOf": [
    {"type": "string", "pattern": "^revision_number=[0-9]{1,25}$"},
    {"type": "string", "enum": [f"revision_number={d}" for d in LONG_DIGITS]}, {"type": "string"},
]})
LISTS = [  # every collection and the attributes it lists, filters and sorts by
    ("/v2.0/networks", networks.FIELDS), ("/v2.0/segments", segments.FIELDS),
    ("/v2.0/subnets", subnets.FIELDS), ("/v2.0/ports", ports.FIELDS),
    ("/v2.0/network-ip-availabilities", ip_availability.FIELDS),
    ("/v2.0/hosts", hosts.HOST_FIELDS), ("/v2.0/hosts/{host}/segments", hosts.SEGMENT_FIELDS),
    ("/v2.0/segments/{segment_id}/hosts", hosts.SEGMENT_HOST_FIELDS),
    ("/v2.0/agents", agents.FIELDS), ("/v2.0/event-subscriptions", event_subscriptions.FIELDS),
    ("/v2.0/event-subscriptions/{sub_id}/deliveries", event_subscriptions.DELIVERY_FIELDS),
]


def dangling_refs(doc: dict) -> list[str]:
    """Every `$ref` of the document that names nothing in it."""

    def resolves(ref: str) -> bool:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    found = []

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not resolves(ref):
                found.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return found


def hoist_nested_defs(doc: dict) -> None:
    """Move `$defs` embedded in request bodies to components/schemas, where `#/$defs/X`
    refs can resolve (bug 6: the served document's nested refs dangle)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})

    def walk(node):
        if isinstance(node, dict):
            for name, definition in node.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + node["$ref"].removeprefix("#/$defs/")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["paths"])
    walk(schemas)


def fuzzed_document() -> dict:
    doc = copy.deepcopy(served_document())
    hoist_nested_defs(doc)
    assert dangling_refs(doc) == []
    for path, fields in LISTS:
        doc["paths"][path]["get"].setdefault("parameters", []).extend(list_parameters(fields))
    doc["paths"]["/v2.0/audit-events"]["get"].setdefault("parameters", []).extend(
        list_parameters(audit_events.FIELDS, audit=True)
    )
    for operations in doc["paths"].values():
        for method, operation in operations.items():
            extra = [*HEADERS, IF_MATCH] if method in ("put", "delete") else HEADERS
            operation.setdefault("parameters", []).extend(copy.deepcopy(extra))
    return doc


schema = schemathesis.openapi.from_dict(fuzzed_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG_RUN,
    suppress_health_check=list(HealthCheck), print_blob=True,
)

# Who asks: the development-mode admin (no headers), a member of another project, a reader.
CALLERS = [
    {},
    {"X-Project-Id": "fuzz-member", "X-Roles": "member"},
    {"X-Project-Id": "fuzz-reader", "X-Roles": "reader"},
]


class Target:
    """The app on a fresh database of each kind in FUZZ_DATABASES, each with a live network
    and segment the fuzzer may hit; every generated request goes to each of them."""

    def __init__(self, apis: dict) -> None:
        self.apis = apis
        self.turn = itertools.count()
        self.requests = 0
        self.statuses: dict[int | str, int] = {}

    @staticmethod
    def live_ids(api) -> dict[str, str]:
        """A network and a segment that exist now (the fuzzer may have deleted the last ones)."""
        nets = api.get("/v2.0/networks?limit=1&name=fuzz-live").json()["networks"]
        net = nets[0] if nets else make_network(
            api, name="fuzz-live", **{"provider:network_type": "vxlan"}
        )
        segs = api.get(f"/v2.0/segments?limit=1&network_id={net['id']}").json()["segments"]
        seg = segs[0] if segs else make_segment(api, net["id"], network_type="geneve")
        return {"network_id": net["id"], "segment_id": seg["id"]}

    def send(self, case, check) -> None:
        """`case` to each database's app, then `check(case, response, database)`. Every other
        request on `/{id}` names a live resource; callers take turns."""
        turn = next(self.turn)
        given = dict(case.path_parameters or {})
        for database, api in self.apis.items():
            if given and turn % 2 == 0:
                live = self.live_ids(api)
                case.path_parameters = {k: live.get(k, v) for k, v in given.items()}
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            if "data" in kwargs:  # requests' raw body is httpx's content
                kwargs["content"] = kwargs.pop("data")
            kwargs.pop("cookies", None)  # the document declares none
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **CALLERS[turn % len(CALLERS)]}
            try:
                resp = api.request(kwargs.pop("method"), kwargs.pop("url"), **kwargs)
            except httpx.InvalidURL:  # too long for any client to send: counted, not sent
                self.statuses["unsendable"] = self.statuses.get("unsendable", 0) + 1
                reject()
            self.requests += 1
            self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
            check(case, resp, database)
            case.path_parameters = given


@pytest.fixture
def target(request, tmp_path):
    with contextlib.ExitStack() as stack:
        apis = {}
        for database in FUZZ_DATABASES:
            workdir = tmp_path / database
            workdir.mkdir()
            url = stack.enter_context(fresh_database(request, database, workdir))
            apis[database] = build_api(url)
            stack.enter_context(apis[database].client)
        t = Target(apis)
        yield t
    if STATS_FILE:
        with open(STATS_FILE, "a") as out:
            out.write(json.dumps({
                "test": request.node.name, "requests": t.requests,
                "statuses": t.statuses,
            }) + "\n")


def echoed_inputs(case) -> list[str]:
    """Every string the request carried: an error may quote them, and that is no leak."""
    found: list[str] = []

    def walk(value):
        if isinstance(value, Mapping):
            for k, v in value.items():
                found.append(str(k))
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif value is not None and not isinstance(value, NotSet):
            found.append(str(value))
            found.append(json.dumps(value, default=str))

    for part in (case.path_parameters, case.query, case.body, case.headers):
        walk(part)
    return sorted({s for s in found if s}, key=len, reverse=True)


def assert_clean_error(case, resp) -> None:
    """Neutron's error body, with nothing the server itself adds from its insides."""
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.text
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    error = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"}, body
    assert all(isinstance(error[k], str) for k in error), body
    text = "\n".join(error.values())
    for echoed in echoed_inputs(case):
        text = text.replace(echoed, "")
    leaks = [p for p in LEAKS if p in text]
    assert not leaks, f"{leaks} in {resp.text}"


@pytest.mark.postgresql
@schema.parametrize()
@FUZZ_SETTINGS
def test_operation_never_fails_with_5xx_and_errors_leak_nothing(case, target):
    """Each generated request, on each database in FUZZ_DATABASES (generated once: making
    the cases costs as much as answering them)."""
    target.send(case, check_response)


def check_response(case, resp, database: str) -> None:
    where = f"{database}: {case.method} {case.formatted_path} query={case.query} body={case.body!r}"
    assert resp.status_code < 500, f"{where}\n-> {resp.status_code} {resp.text}"
    assert "server" not in resp.headers, resp.headers
    assert resp.headers.get("x-openstack-request-id", "").startswith("req-")
    if resp.status_code >= 400:
        assert_clean_error(case, resp)


@pytest.mark.parametrize("message", [
    'Traceback (most recent call last):\n  File "/work/main/segmentd/db/driver.py", line 43',
    "(sqlite3.IntegrityError) NOT NULL constraint failed: networks.shared",
    "[SQL: SELECT networks.id FROM networks WHERE networks.mtu IN ($1::INTEGER)]",
    "1 validation error for NetworkCreate (https://errors.pydantic.dev/2.11/v/int_type)",
    "starlette.exceptions.HTTPException: 404",
])
def test_the_leak_check_catches_internal_text(message):
    case = SimpleNamespace(path_parameters={}, query={}, body={"network": {"name": "x"}},
                           headers={})
    body = {"NeutronError": {"type": "HTTPBadRequest", "message": message, "detail": ""}}
    with pytest.raises(AssertionError):
        assert_clean_error(case, httpx.Response(400, json=body))


def test_the_leak_check_forgives_what_the_request_itself_sent():
    sent = "SELECT * FROM /work/x.py"
    case = SimpleNamespace(path_parameters={}, query={}, body={"network": {"name": sent}},
                           headers={})
    body = {"NeutronError": {"type": "HTTPBadRequest", "detail": "",
                             "message": f"Invalid input for name. Reason: '{sent}' is bad."}}
    assert_clean_error(case, httpx.Response(400, json=body))


def test_served_document_is_the_apps_and_names_no_software_version():
    doc = served_document()
    assert doc["info"]["version"] == "2.0"  # the API's version, not segmentd's
    assert "segmentd 0." not in json.dumps(doc)
    assert {"/v2.0/networks", "/v2.0/segments", "/v2.0/audit-events"} <= set(doc["paths"])


# -- Regressions of bugs the fuzzer found --------------------------------------------------


def test_every_ref_of_the_served_document_resolves():
    assert dangling_refs(served_document()) == []


def test_fuzzer_generates_network_bodies():
    """Without hoist_nested_defs the fuzzer could not build a single POST /v2.0/networks body."""
    op = schema["/v2.0/networks"]["POST"]
    bodies = []

    @given(op.as_strategy())
    @settings(max_examples=10, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    def collect(case):
        bodies.append(case.body)

    collect()
    assert any(isinstance(b, dict) and "network" in b for b in bodies)


@pytest.mark.parametrize("db_kind", DATABASES, indirect=True)
@pytest.mark.parametrize("query", [
    "/v2.0/networks?mtu=9223372036854775808",
    "/v2.0/segments?segmentation_id=-9223372036854775809",
    "/v2.0/networks?provider:segmentation_id=99999999999999999999",
    "/v2.0/audit-events?status=99999999999999999999",
])
def test_bug1_integer_filter_beyond_64_bits_is_not_a_server_error(db_url, query):
    api = build_api(db_url)
    with api.client:
        resp = api.get(query)
    assert resp.status_code == 400, resp.text
    name, value = query.partition("?")[2].split("=")
    assert error_of(resp) == {
        "type": "HTTPBadRequest", "detail": "",
        "message": f"Invalid filter value for {name}: '{value}' is not an integer in range"}


@pytest.mark.postgresql
@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
def test_bug1_integer_filter_beyond_32_bits_is_not_a_server_error_on_postgresql(db_url):
    api = build_api(db_url)
    with api.client:
        resp = api.get("/v2.0/networks?mtu=2147483648")
    assert resp.status_code == 400, resp.text
    assert error_of(resp) == {
        "type": "HTTPBadRequest", "detail": "",
        "message": "Invalid filter value for mtu: '2147483648' is not an integer in range"}


@pytest.mark.parametrize("db_kind", DATABASES, indirect=True)
@pytest.mark.parametrize("attr", ["admin_state_up", "shared"])
def test_bug2_null_boolean_in_a_network_update_is_a_400(db_url, attr):
    api = build_api(db_url)
    with api.client:
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {attr: None}})
    assert resp.status_code == 400, resp.text
    assert error_of(resp) == {
        "type": "HTTPBadRequest", "detail": "",
        "message": f"Invalid input for {attr}. Reason: Input should be a valid boolean."}
