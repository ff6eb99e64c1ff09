"""Published event schemas: shipped files equal the definitions, served as is, and every
event a real scenario produces validates against them with the reference validator too."""

from __future__ import annotations

import json

import jsonschema
import pytest

from segmentd import constants as c
from segmentd.events import catalog
from tests.factories import error_of, make_network, make_segment

SERVICE = {"X-Roles": "service"}


def reference_validator(schema: dict) -> jsonschema.Draft7Validator:
    """The python-jsonschema validator of the draft the schemas declare, checking formats."""
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft7Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class TestShippedFiles:
    @pytest.mark.parametrize("event_type", c.EVENT_TYPES)
    def test_file_equals_the_definition(self, event_type):
        shipped = json.loads((catalog.SCHEMA_DIR / f"{event_type}.json").read_text())
        assert shipped == catalog.build_schema(event_type)

    def test_no_file_without_an_event_type(self):
        files = sorted(p.name for p in catalog.SCHEMA_DIR.iterdir())
        assert files == sorted(f"{t}.json" for t in c.EVENT_TYPES)

    def test_files_are_byte_for_byte_what_the_generator_writes(self, tmp_path):
        for path in catalog.write_schema_files(tmp_path):
            assert path.read_bytes() == (catalog.SCHEMA_DIR / path.name).read_bytes(), path.name

    @pytest.mark.parametrize("event_type", c.EVENT_TYPES)
    def test_each_is_a_valid_draft7_schema_for_its_type(self, event_type):
        schema = catalog.schema(event_type)
        reference_validator(schema)
        assert schema["title"] == event_type
        assert schema["properties"]["type"] == {"const": event_type}
        assert schema["additionalProperties"] is False


class TestServed:
    def test_list_has_every_type_with_its_file(self, api):
        resp = api.get("/v2.0/event-schemas")
        assert resp.status_code == 200, resp.text
        listed = resp.json()["event_schemas"]
        assert [s["type"] for s in listed] == list(c.EVENT_TYPES)
        for item in listed:
            assert set(item) == {"type", "schema"}
            assert item["schema"] == json.loads(
                (catalog.SCHEMA_DIR / f"{item['type']}.json").read_text())

    @pytest.mark.parametrize("event_type", ["segment.created", "host.segments_changed"])
    def test_show_is_the_schema_document_itself(self, api, event_type):
        resp = api.get(f"/v2.0/event-schemas/{event_type}")
        assert resp.status_code == 200, resp.text
        assert resp.json() == catalog.build_schema(event_type)

    @pytest.mark.parametrize("name", ["segment.exploded", "segment", "x" * 300, "' OR 1=1 --"])
    def test_unknown_type_is_404(self, api, name):
        resp = api.get(f"/v2.0/event-schemas/{name}")
        assert resp.status_code == 404, resp.text
        err = error_of(resp)
        assert err["type"] == "EventTypeNotFound"
        assert ("x" * 300) not in err["message"]

    def test_any_caller_may_read_them(self, api):
        resp = api.get("/v2.0/event-schemas", headers={"X-Project-Id": "p9", "X-Roles": "reader"})
        assert resp.status_code == 200, resp.text


def seg_of(api, network_id: str) -> str:
    found = api.get(f"/v2.0/segments?network_id={network_id}").json()["segments"]
    return found[0]["id"]


def run_scenario(api) -> None:
    """Changes that produce every event type once or more."""
    net = make_network(api, name="scenario")
    vlan = make_network(api, name="vlan", **{"provider:network_type": "vlan",
                                              "provider:physical_network": "physnet1"})
    seg = make_segment(api, net["id"], network_type="flat", physical_network="physnet1",
                       name=None)
    assert api.put(f"/v2.0/segments/{seg['id']}",
                   json={"segment": {"name": "flat"}}).status_code == 200
    v4 = api.post("/v2.0/subnets", json={"subnet": {
        "network_id": vlan["id"], "cidr": "10.1.0.0/24", "ip_version": 4,
        "segment_id": seg_of(api, vlan["id"]), "dns_nameservers": ["10.1.0.53"],
        "host_routes": [{"destination": "10.9.0.0/16", "nexthop": "10.1.0.1"}]}})
    assert v4.status_code == 201, v4.text
    v6 = api.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "2001:db8::/64", "ip_version": 6, "gateway_ip": None,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})
    assert v6.status_code == 201, v6.text
    assert api.put(f"/v2.0/subnets/{v6.json()['subnet']['id']}",
                   json={"subnet": {"name": "v6"}}).status_code == 200
    assert api.delete(f"/v2.0/subnets/{v6.json()['subnet']['id']}").status_code == 204
    assert api.put(f"/v2.0/networks/{net['id']}",
                   json={"network": {"name": "renamed", "description": "ünïcode ☃"}}
                   ).status_code == 200
    first = api.post("/v2.0/host-reports", headers=SERVICE, json={"report": {
        "host": "compute-1.example.org", "agent_type": "Open vSwitch agent",
        "binary": "neutron-openvswitch-agent",
        "configurations": {"bridge_mappings": {"physnet1": "br-ex"},
                           "tunnel_types": ["geneve", "vxlan"]}}})
    assert first.status_code == 201, first.text
    agent = first.json()["agent"]
    # A port bound on the host; the host's next report loses physnet1, so the port's
    # binding fails (port.updated), and then it is deleted.
    port = api.post("/v2.0/ports", json={"port": {
        "network_id": vlan["id"], "binding:host_id": "compute-1.example.org",
        "binding:profile": {"pci_slot": "0000:03:00.1"}, "device_owner": "compute:nova"}})
    assert port.status_code == 201, port.text
    second = api.post("/v2.0/host-reports", headers=SERVICE, json={"report": {
        "host": "compute-1.example.org", "agent_type": "Open vSwitch agent",
        "binary": "neutron-openvswitch-agent",
        "configurations": {"bridge_mappings": {"physnet2": "br-ex"}, "tunnel_types": []}}})
    assert second.status_code == 201, second.text
    assert api.delete(f"/v2.0/ports/{port.json()['port']['id']}").status_code == 204
    assert api.put(f"/v2.0/agents/{agent['id']}",
                   json={"agent": {"admin_state_up": False}}).status_code == 200
    assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
    assert api.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
    assert api.delete(f"/v2.0/networks/{vlan['id']}").status_code == 204
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204


def test_every_event_of_a_scenario_validates_against_the_served_schema(api):
    run_scenario(api)
    served = {s["type"]: s["schema"] for s in api.get("/v2.0/event-schemas").json()["event_schemas"]}
    validators = {t: reference_validator(schema) for t, schema in served.items()}
    events = api.events
    assert {e.type for e in events} == set(c.EVENT_TYPES)  # the scenario covers them all
    for event in events:
        doc = event.document()
        errors = [e.message for e in validators[event.type].iter_errors(doc)]
        assert errors == [], (event.type, errors)
        catalog.validate(doc)
        # The schema is not trivially permissive: a stray field or a wrong type is refused.
        assert not validators[event.type].is_valid({**doc, "stray": True})
        assert not validators[event.type].is_valid({**doc, "resource": {**doc["resource"],
                                                                        "stray": True}})
        for other in c.EVENT_TYPES:
            if other != event.type:
                assert not validators[other].is_valid(doc), (event.type, other)
