"""Odd numbers and characters in query strings, headers and bodies: each a 400 or 412 in
Neutron's error format, never a 500, and nothing written (on every database)."""

from __future__ import annotations

import pytest

from tests.api.test_ports import row_counts
from tests.factories import error_of, make_network, make_port, make_segment, make_subnet

# Each case is refused before any SQL runs (tests/conftest.py: sqlite_only).
pytestmark = pytest.mark.sqlite_only

HUGE = "9" * 5000  # int() refuses more than 4300 digits
COLLECTIONS = [
    "networks", "segments", "subnets", "ports", "hosts", "agents", "audit-events",
    "event-subscriptions", "network-ip-availabilities",
]
# Digits str.isdigit() accepts that int() refuses or that are not ASCII.
ODD_DIGITS = ["²", "٣", "1_000", "+5", " 5", "-1"]


def resources(api) -> dict[str, str]:
    """One network, segment, subnet and port: each resource a PUT and DELETE can name."""
    net = make_network(api)
    seg = make_segment(api, net["id"], name="s")
    subnet = make_subnet(api, net["id"])
    port = make_port(api, net["id"])
    return {"networks": net["id"], "segments": seg["id"], "subnets": subnet["id"],
            "ports": port["id"]}


class TestIntegersInQueryStrings:
    @pytest.mark.parametrize("collection", COLLECTIONS)
    @pytest.mark.parametrize("limit", [HUGE, "9" * 21, *ODD_DIGITS])
    def test_a_limit_that_is_no_plain_bounded_integer_is_400(self, api, collection, limit):
        resp = api.get(f"/v2.0/{collection}", params={"limit": limit})
        assert resp.status_code == 400, resp.text
        err = error_of(resp)
        assert err["type"] == "HTTPBadRequest"
        assert "Bad limit request" in err["message"]
        assert len(err["message"]) < 200

    def test_a_large_limit_is_still_the_largest_page(self, api):
        make_network(api)
        resp = api.get("/v2.0/networks", params={"limit": "9" * 20})
        assert resp.status_code == 200 and len(resp.json()["networks"]) == 1

    @pytest.mark.parametrize("value", [HUGE, "9" * 11, "3000000000", "-3000000000", *ODD_DIGITS[:4]])
    @pytest.mark.parametrize("collection, attr", [
        ("networks", "mtu"), ("segments", "segmentation_id"), ("networks", "revision_number"),
        ("subnets", "ip_version"), ("ports", "revision_number"),
    ])
    def test_an_integer_filter_beyond_the_column_is_400(self, api, collection, attr, value):
        resp = api.get(f"/v2.0/{collection}", params={attr: value})
        assert resp.status_code == 400, resp.text
        assert error_of(resp)["type"] == "HTTPBadRequest"

    @pytest.mark.parametrize("marker", [HUGE, "²", "9" * 19, "9" * 18, "3000000000"])
    def test_an_odd_host_or_agent_marker_names_no_row(self, api, marker):
        for collection in ("hosts", "agents", "audit-events"):
            resp = api.get(f"/v2.0/{collection}", params={"marker": marker, "limit": "1"})
            assert resp.status_code == 200, (collection, resp.text)


class TestIfMatch:
    PRECONDITION_FAILED = {"type": "PreconditionFailed", "detail": "",
                           "message": "Precondition failed."}

    @pytest.mark.parametrize("revision", [HUGE, "9" * 11, "2147483648", *ODD_DIGITS])
    def test_a_revision_that_is_no_plain_bounded_integer_is_412_and_changes_nothing(
        self, api, revision
    ):
        ids = resources(api)
        before = row_counts(api)
        for collection, rid in ids.items():
            header = {"If-Match": f"revision_number={revision}".encode()}
            member = collection[:-1]
            put = api.put(f"/v2.0/{collection}/{rid}", json={member: {"name": "changed"}},
                          headers=header)
            assert put.status_code == 412, (collection, put.text)
            # Not a revision at all (no bounded integer): no row could match it.
            assert error_of(put) == self.PRECONDITION_FAILED, (collection, put.text)
            shown = api.get(f"/v2.0/{collection}/{rid}").json()[member]
            assert shown["name"] != "changed"
        delete = api.delete(f"/v2.0/ports/{ids['ports']}", headers=header)
        assert delete.status_code == 412, delete.text
        assert error_of(delete) == self.PRECONDITION_FAILED
        assert row_counts(api) == before

    def test_the_largest_revision_is_a_plain_mismatch(self, api):
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                       headers={"If-Match": "revision_number=2147483647"})
        assert resp.status_code == 412
        assert error_of(resp)["type"] == "RevisionNumberConstraintFailed"


class TestContentLength:
    def test_a_content_length_of_5000_digits_is_413(self, api):
        resp = api.client.post("/v2.0/networks", content=b"{}", headers={
            "Content-Type": "application/json", "Content-Length": HUGE})
        assert resp.status_code == 413, resp.text
        assert error_of(resp)["type"] == "RequestEntityTooLarge"


NUL = "a\x00b"
PORT_STRINGS = ["device_id", "device_owner", "binding:host_id"]


class TestControlCharacters:
    @pytest.mark.parametrize("attr", PORT_STRINGS)
    @pytest.mark.parametrize("value", [NUL, "\x00", "x\x1b[31m", "c1\x85"])
    def test_in_a_port_string_on_create_is_400_and_writes_nothing(self, api, attr, value):
        net = make_network(api)
        before = row_counts(api)
        resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], attr: value}})
        assert resp.status_code == 400, resp.text
        err = error_of(resp)
        assert err["type"] == "HTTPBadRequest"
        assert attr in err["message"] and "control characters" in err["message"]
        assert row_counts(api) == before

    @pytest.mark.parametrize("attr", PORT_STRINGS)
    def test_in_a_port_string_on_update_is_400_and_changes_nothing(self, api, attr):
        net = make_network(api)
        port = make_port(api, net["id"])
        resp = api.put(f"/v2.0/ports/{port['id']}", json={"port": {attr: NUL}})
        assert resp.status_code == 400, resp.text
        assert "control characters" in error_of(resp)["message"]
        shown = api.get(f"/v2.0/ports/{port['id']}").json()["port"]
        assert shown["revision_number"] == port["revision_number"]

    @pytest.mark.parametrize("body", [
        {"binding:profile": {"k": NUL}},
        {"binding:profile": {NUL: "v"}},
        {"binding:profile": {"k": ["ok", {"deep": NUL}]}},
        {"fixed_ips": [{"ip_address": "10.0.0.5\x00"}]},
        {"mac_address": "fa:16:3e:00:00:01\x00"},
    ])
    def test_anywhere_in_a_port_body_is_400(self, api, body):
        net = make_network(api)
        make_subnet(api, net["id"])
        before = row_counts(api)
        resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], **body}})
        assert resp.status_code == 400, resp.text
        assert "control characters" in error_of(resp)["message"]
        assert row_counts(api) == before

    @pytest.mark.parametrize("body", [
        {"cidr": "10.1.0.0/24\x00"}, {"gateway_ip": "10.1.0.1\x00"},
        {"dns_nameservers": ["10.1.0.2\x00"]},
        {"allocation_pools": [{"start": "10.1.0.5\x00", "end": "10.1.0.9"}]},
        {"host_routes": [{"destination": "10.2.0.0/24", "nexthop": "10.1.0.1\x01"}]},
    ])
    def test_anywhere_in_a_subnet_body_is_400(self, api, body):
        net = make_network(api)
        before = row_counts(api)
        doc = {"network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4, **body}
        resp = api.post("/v2.0/subnets", json={"subnet": doc})
        assert resp.status_code == 400, resp.text
        assert "control characters" in error_of(resp)["message"]
        assert row_counts(api) == before

    def test_in_a_subscription_url_is_400(self, api):
        resp = api.post("/v2.0/event-subscriptions", json={"event_subscription": {
            "url": "https://example.com/\x00hook", "secret": "s" * 32,
            "event_types": ["network.created"]}})
        assert resp.status_code == 400, resp.text
        assert "control characters" in error_of(resp)["message"]

    def test_free_text_keeps_tab_and_newlines_and_names_do_not(self, api):
        net = make_network(api)
        port = make_port(api, net["id"], description="one\n\ttwo\r\n")
        assert port["description"] == "one\n\ttwo\r\n"
        resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": "a\tb"}})
        assert resp.status_code == 400
        assert error_of(resp) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": "Invalid input for name. Reason: control characters are not allowed."}

    @pytest.mark.parametrize("query", [
        "fixed_ips=ip_address%3D1%00", "fixed_ips=subnet_id%3D%00", "device_id=a%00b",
        "device_owner=%00", "binding:host_id=h%00", "name=a%01b", "mac_address=%1b",
    ])
    def test_in_a_port_filter_is_400(self, api, query):
        net = make_network(api)
        make_port(api, net["id"])
        resp = api.get(f"/v2.0/ports?{query}")
        assert resp.status_code == 400, resp.text
        assert error_of(resp)["type"] == "HTTPBadRequest"

    @pytest.mark.parametrize("collection", COLLECTIONS)
    def test_in_any_filter_value_is_400(self, api, collection):
        resp = api.get(f"/v2.0/{collection}?id=a%00b")
        assert resp.status_code == 400, resp.text
        assert error_of(resp)["message"] == "Invalid filter value for id"
