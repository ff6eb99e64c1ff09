"""Bulk create (`{"networks": [...]}`, and for segments, subnets, ports alike): Neutron makes
all of them in one request or none, answers 201 with the list, and emits each one's events."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from segmentd.db.models import audit_events, ip_allocations, outbox_events, ports, subnets
from tests.conftest import build_api
from tests.factories import error_of, make_network

MEMBER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}


def rows(api) -> dict[str, int]:
    """Every table a bulk create writes: the resources, their addresses, events, audit."""
    async def count(conn):
        extra = {t.name: (await conn.execute(select(func.count()).select_from(t))).scalar()
                 for t in (subnets, ports, ip_allocations, outbox_events, audit_events)}
        return extra

    return {**api.counts(), **api._run(count)}


def audited(api) -> list[tuple[str, str, str | None, int]]:
    async def read(conn):
        found = await conn.execute(
            select(audit_events.c.action, audit_events.c.resource_type,
                   audit_events.c.resource_id, audit_events.c.status).order_by(audit_events.c.id))
        return [tuple(r) for r in found]

    return api._run(read)


def subnet_body(network_id: str, cidr: str, **attrs) -> dict:
    return {"network_id": network_id, "cidr": cidr, "ip_version": 4, **attrs}


class TestBulkNetworks:
    def test_creates_every_network_with_its_events_and_audit_rows(self, api):
        resp = api.post("/v2.0/networks", json={"networks": [
            {"name": "a"},
            {"network": {"name": "b", "provider:network_type": "vlan",
                         "provider:physical_network": "physnet1",
                         "provider:segmentation_id": 300}},
        ]})
        assert resp.status_code == 201, resp.text
        created = resp.json()["networks"]
        assert [n["name"] for n in created] == ["a", "b"]
        assert created[1]["provider:segmentation_id"] == 300
        assert created[0]["provider:network_type"] == "geneve"
        shown = [api.get(f"/v2.0/networks/{n['id']}").json()["network"] for n in created]
        assert shown == created
        events = api.events
        assert [e.type for e in events] == ["network.created", "segment.created"] * 2
        assert [e.resource_id for e in events if e.type == "network.created"] == \
            [n["id"] for n in created]
        assert [e.resource["network_id"] for e in events if e.type == "segment.created"] == \
            [n["id"] for n in created]
        assert audited(api) == [("create_network", "network", n["id"], 201) for n in created]
        assert api.counts() == {"networks": 2, "segments": 2}

    def test_a_failing_item_creates_none_and_answers_its_error(self, api):
        make_network(api, **{"provider:network_type": "vlan",
                             "provider:physical_network": "physnet1",
                             "provider:segmentation_id": 200})
        before, n_events = rows(api), len(api.events)
        resp = api.post("/v2.0/networks", json={"networks": [
            {"name": "first"},
            {"name": "second", "provider:network_type": "vlan",
             "provider:physical_network": "physnet1", "provider:segmentation_id": 200},
        ]})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "VlanIdInUse"
        assert len(api.events) == n_events
        after = rows(api)
        # the refusal is audited; nothing else was written
        assert after == {**before, "audit_events": before["audit_events"] + 1}
        assert [n["name"] for n in api.get("/v2.0/networks").json()["networks"]] == ["net"]

    def test_an_invalid_item_is_400_before_anything_is_written(self, api):
        before = rows(api)
        resp = api.post("/v2.0/networks", json={"networks": [{"name": "ok"}, {"mtu": "x"}]})
        assert resp.status_code == 400
        assert error_of(resp)["message"] == "Invalid input for mtu. Reason: 'x' is not an integer."
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}

    @pytest.mark.parametrize("body, message", [
        ({"networks": []}, "Resources required"),
        ({"networks": {"name": "x"}}, "'networks' must be a list of networks"),
        ({"networks": ["x"]}, "Each item of 'networks' must be a network (a JSON object)"),
        ({"networks": [{"name": "x"}], "network": {}},
         "Resource body required with the single key 'network' or 'networks'"),
    ])
    def test_malformed_bulk_bodies_are_400(self, api, body, message):
        before = rows(api)
        resp = api.post("/v2.0/networks", json=body)
        assert (resp.status_code, error_of(resp)["message"]) == (400, message)
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}

    def test_more_items_than_bulk_max_items_is_400(self, db_url):
        api = build_api(db_url, bulk_max_items=2)
        with api.client:
            resp = api.post("/v2.0/networks", json={"networks": [{}, {}, {}]})
            assert resp.status_code == 400
            assert error_of(resp)["message"] == "A bulk request may create at most 2 networks, not 3"
            assert api.counts() == {"networks": 0, "segments": 0}
            assert api.post("/v2.0/networks", json={"networks": [{}, {}]}).status_code == 201

    def test_policy_is_checked_per_item(self, api):
        before = rows(api)
        resp = api.post("/v2.0/networks", headers=MEMBER, json={"networks": [
            {"name": "mine"}, {"name": "shared", "shared": True}]})
        assert resp.status_code == 403
        assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                                  "message": "rule:create_network:shared is disallowed by policy"}
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}


class TestBulkSubnets:
    def test_creates_every_subnet(self, api):
        net = make_network(api)
        api.clear_events()
        resp = api.post("/v2.0/subnets", json={"subnets": [
            subnet_body(net["id"], "10.0.0.0/24", name="s1"),
            {"subnet": subnet_body(net["id"], "10.0.1.0/24", name="s2")},
        ]})
        assert resp.status_code == 201, resp.text
        created = resp.json()["subnets"]
        assert [(s["name"], s["cidr"]) for s in created] == [("s1", "10.0.0.0/24"),
                                                             ("s2", "10.0.1.0/24")]
        assert [(e.type, e.resource_id) for e in api.events if e.type.startswith("subnet.")] == [
            ("subnet.created", s["id"]) for s in created]
        assert audited(api)[-2:] == [("create_subnet", "subnet", s["id"], 201) for s in created]
        assert sorted(api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"]) == \
            sorted(s["id"] for s in created)

    def test_an_overlap_within_the_request_creates_none(self, api):
        net = make_network(api)
        before, n_events = rows(api), len(api.events)
        resp = api.post("/v2.0/subnets", json={"subnets": [
            subnet_body(net["id"], "10.0.0.0/24"), subnet_body(net["id"], "10.0.0.128/25")]})
        assert resp.status_code == 400
        assert error_of(resp)["type"] == "InvalidInput"
        assert "overlaps with another subnet" in error_of(resp)["message"]
        assert len(api.events) == n_events
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}


class TestBulkPorts:
    def test_creates_every_port_with_its_addresses(self, api):
        net = make_network(api)
        api.post("/v2.0/subnets", json={"subnet": subnet_body(net["id"], "10.0.0.0/29")})
        api.clear_events()
        resp = api.post("/v2.0/ports", json={"ports": [
            {"network_id": net["id"], "name": "p1"}, {"network_id": net["id"], "name": "p2"}]})
        assert resp.status_code == 201, resp.text
        created = resp.json()["ports"]
        addresses = [p["fixed_ips"][0]["ip_address"] for p in created]
        assert [p["name"] for p in created] == ["p1", "p2"] and len(set(addresses)) == 2
        assert [(e.type, e.resource_id) for e in api.events] == [
            ("port.created", p["id"]) for p in created]
        assert audited(api)[-2:] == [("create_port", "port", p["id"], 201) for p in created]
        assert rows(api)["ports"] == 2 and rows(api)["ip_allocations"] == 2

    def test_exhausting_the_subnet_midway_creates_none(self, api):
        net = make_network(api)
        # a /30 holds two usable addresses, one of them the gateway: room for one port
        api.post("/v2.0/subnets", json={"subnet": subnet_body(net["id"], "10.0.0.0/30")})
        before, n_events = rows(api), len(api.events)
        resp = api.post("/v2.0/ports", json={"ports": [
            {"network_id": net["id"]}, {"network_id": net["id"]}]})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "IpAddressGenerationFailure"
        assert len(api.events) == n_events
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}
        assert api.post("/v2.0/ports", json={"ports": [{"network_id": net["id"]}]}).status_code == 201


class TestBulkSegments:
    def test_creates_every_segment(self, api):
        net = make_network(api)
        api.clear_events()
        resp = api.post("/v2.0/segments", json={"segments": [
            {"network_id": net["id"], "network_type": "vlan", "physical_network": "physnet1",
             "segmentation_id": 301, "name": "v"},
            {"segment": {"network_id": net["id"], "network_type": "geneve", "name": "g"}},
        ]})
        assert resp.status_code == 201, resp.text
        created = resp.json()["segments"]
        assert [(s["name"], s["network_type"]) for s in created] == [("v", "vlan"), ("g", "geneve")]
        assert created[0]["segmentation_id"] == 301
        assert [(e.type, e.resource_id) for e in api.events] == [
            ("segment.created", s["id"]) for s in created]
        assert audited(api)[-2:] == [("create_segment", "segment", s["id"], 201) for s in created]
        assert api.counts() == {"networks": 1, "segments": 3}

    def test_a_taken_id_in_the_last_item_creates_none(self, api):
        net = make_network(api)
        before, n_events = rows(api), len(api.events)
        resp = api.post("/v2.0/segments", json={"segments": [
            {"network_id": net["id"], "network_type": "vlan", "physical_network": "physnet1",
             "segmentation_id": 302},
            {"network_id": net["id"], "network_type": "vlan", "physical_network": "physnet1",
             "segmentation_id": 302},
        ]})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "VlanIdInUse"
        assert len(api.events) == n_events
        assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}


def test_an_update_has_no_bulk_form(api):
    net = make_network(api)
    before = rows(api)
    resp = api.put(f"/v2.0/networks/{net['id']}", json={"networks": [{"name": "x"}]})
    assert (resp.status_code, error_of(resp)["message"]) == (400, "Bulk operation not supported")
    assert rows(api) == {**before, "audit_events": before["audit_events"] + 1}
