"""/v2.0/segments through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.factories import error_of, make_network, make_segment

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
SEGMENT_KEYS = {
    "id", "network_id", "name", "description", "physical_network", "network_type",
    "segmentation_id", "created_at", "updated_at", "revision_number",
}


def _unchanged(api, before, events_before):
    assert api.counts() == before
    assert len(api.events) == events_before


class TestCreateSegment:
    def test_vxlan_without_id_gets_one_from_the_range(self, api):
        net = make_network(api)
        seg = make_segment(api, net["id"], network_type="vxlan", name="s1", description="d")
        assert set(seg) == SEGMENT_KEYS
        assert 1 <= seg["segmentation_id"] <= 1000
        assert seg["physical_network"] is None
        assert (seg["name"], seg["description"], seg["revision_number"]) == ("s1", "d", 0)
        assert seg["created_at"].endswith("Z") and len(seg["created_at"]) == 20
        assert api.events[-1].type == "segment.created"
        assert api.events[-1].resource == seg

    def test_vlan_with_id_and_physnet(self, api):
        net = make_network(api)
        seg = make_segment(api, net["id"], network_type="vlan", physical_network="physnet1",
                           segmentation_id=4000)
        assert (seg["physical_network"], seg["segmentation_id"]) == ("physnet1", 4000)

    def test_vlan_without_physical_network_records_the_physnet_it_came_from(self, api):
        net = make_network(api)
        seg = make_segment(api, net["id"], network_type="vlan")
        # The configured ranges are tried in order: physnet1's (100-2999) has room.
        assert seg["physical_network"] == "physnet1"
        assert 100 <= seg["segmentation_id"] <= 2999

    def test_flat_segment_has_no_id_and_one_per_physnet(self, api):
        net = make_network(api)
        seg = make_segment(api, net["id"], network_type="flat", physical_network="rack9")
        assert seg["segmentation_id"] is None
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "flat", "physical_network": "rack9"}})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "FlatNetworkInUse"

    def test_taken_vlan_is_409_vlan_id_in_use(self, api):
        net = make_network(api)
        make_segment(api, net["id"], network_type="vlan", physical_network="physnet2",
                     segmentation_id=300)
        before, n_events = api.counts(), len(api.events)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vlan", "physical_network": "physnet2",
            "segmentation_id": 300}})
        assert resp.status_code == 409
        err = error_of(resp)
        assert err["type"] == "VlanIdInUse"
        assert err["message"] == (
            "Unable to create the network. The VLAN 300 on physical network physnet2 is in use."
        )
        _unchanged(api, before, n_events)

    def test_same_vlan_on_another_physnet_is_fine(self, api):
        net = make_network(api)
        make_segment(api, net["id"], network_type="vlan", physical_network="physnet1",
                     segmentation_id=300)
        make_segment(api, net["id"], network_type="vlan", physical_network="physnet2",
                     segmentation_id=300)

    def test_taken_tunnel_id_is_409_tunnel_id_in_use(self, api):
        net = make_network(api)
        make_segment(api, net["id"], network_type="vxlan", segmentation_id=77)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan", "segmentation_id": 77}})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "TunnelIdInUse"

    def test_same_vni_for_vxlan_and_geneve_is_fine(self, api):
        net = make_network(api)
        make_segment(api, net["id"], network_type="vxlan", segmentation_id=5)
        make_segment(api, net["id"], network_type="geneve", segmentation_id=5)

    def test_id_outside_configured_range_is_accepted_and_still_unique(self, api):
        net = make_network(api)
        make_segment(api, net["id"], network_type="vxlan", segmentation_id=50000)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan", "segmentation_id": 50000}})
        assert resp.status_code == 409
        assert error_of(resp) == {
            "type": "TunnelIdInUse", "detail": "",
            "message": "Unable to create the network. The tunnel ID 50000 is in use."}

    def test_exhausted_range_is_503_no_network_available(self, api):
        net = make_network(api)
        ids = {make_segment(api, net["id"], network_type="vlan",
                            physical_network="small")["segmentation_id"] for _ in range(3)}
        assert ids == {10, 11, 12}
        before, n_events = api.counts(), len(api.events)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vlan", "physical_network": "small"}})
        assert resp.status_code == 503
        assert error_of(resp)["type"] == "NoNetworkAvailable"
        _unchanged(api, before, n_events)

    def test_segment_that_cannot_carry_the_network_mtu_is_400(self, api):
        net = make_network(api, **{"provider:network_type": "vlan",
                                   "provider:physical_network": "physnet1"})
        assert net["mtu"] == 1500
        before, n_events = api.counts(), len(api.events)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan"}})
        assert resp.status_code == 400
        assert error_of(resp)["message"] == (
            "Invalid input for operation: Requested MTU is too big, maximum is 1450."
        )
        _unchanged(api, before, n_events)

    def test_unknown_network_is_404(self, api):
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": ZERO_UUID, "network_type": "vxlan"}})
        assert resp.status_code == 404
        assert error_of(resp) == {
            "type": "NetworkNotFound", "detail": "",
            "message": f"Network {ZERO_UUID} could not be found.",
        }

    @pytest.mark.parametrize(
        ("attrs", "needle"),
        [
            ({"segmentation_id": True, "network_type": "vxlan"}, "segmentation_id"),
            ({"segmentation_id": 1.0, "network_type": "vxlan"}, "segmentation_id"),
            ({"segmentation_id": "12", "network_type": "vxlan"}, "segmentation_id"),
            ({"segmentation_id": 0, "network_type": "vxlan"}, "out of range"),
            ({"segmentation_id": 16777216, "network_type": "geneve"}, "out of range"),
            ({"segmentation_id": 4095, "network_type": "vlan", "physical_network": "physnet1"},
             "out of range (1 through 4094)"),
            ({"segmentation_id": 0, "network_type": "vlan", "physical_network": "physnet1"},
             "out of range"),
            ({"segmentation_id": 5, "network_type": "vlan"}, "requires physical_network"),
            ({"network_type": "vlan", "physical_network": "physnet9"}, "unknown for VLAN"),
            ({"network_type": "vxlan", "physical_network": "physnet1"}, "specified for vxlan"),
            ({"network_type": "flat"}, "physical_network required for flat"),
            ({"network_type": "flat", "physical_network": "p", "segmentation_id": 3},
             "prohibited for flat"),
            ({"network_type": "gre"}, "network_type value 'gre' not supported"),
            ({"network_type": ""}, "network_type"),
            ({"network_type": "vxlan", "name": "x" * 256}, "name"),
            ({"network_type": "vxlan", "description": "x" * 256}, "description"),
            ({"network_type": "vxlan", "physical_network": "p" * 65}, "physical_network"),
            ({"network_type": "vxlan", "bogus": 1}, "Unrecognized attribute(s) 'bogus'"),
            ({"network_type": "vxlan", "id": "x"}, "Unrecognized attribute(s) 'id'"),
            ({}, "Required attribute 'network_type' not specified"),
        ],
    )
    @pytest.mark.sqlite_only
    def test_invalid_attribute_is_400_and_changes_nothing(self, api, attrs, needle):
        net = make_network(api)
        before, n_events = api.counts(), len(api.events)
        resp = api.post("/v2.0/segments", json={"segment": {"network_id": net["id"], **attrs}})
        assert resp.status_code == 400, resp.text
        assert needle in error_of(resp)["message"]
        _unchanged(api, before, n_events)

    @pytest.mark.parametrize(
        ("network_id", "needle"),
        [("not-a-uuid", "'not-a-uuid' is not a valid UUID"), (None, "network_id"), (5, "network_id")],
    )
    @pytest.mark.sqlite_only
    def test_bad_network_id_is_400(self, api, network_id, needle):
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": network_id, "network_type": "vxlan"}})
        assert resp.status_code == 400
        assert needle in error_of(resp)["message"]

    @pytest.mark.parametrize(
        "raw",
        [b"{", b"[]", b'{"segment": []}', b'{"segments": {}}', b'{"segment": {}, "x": 1}', b""],
    )
    @pytest.mark.sqlite_only
    def test_malformed_body_is_400(self, api, raw):
        resp = api.post("/v2.0/segments", content=raw, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400
        if raw in (b"{", b""):  # not JSON at all
            expected = ("MalformedRequestBody", "Malformed request body: Cannot understand JSON.")
        elif raw == b'{"segments": {}}':
            expected = ("HTTPBadRequest", "'segments' must be a list of segments")
        else:  # JSON without the one envelope key holding an object
            expected = ("HTTPBadRequest",
                        "Resource body required with the single key 'segment' or 'segments'")
        err = error_of(resp)
        assert (err["type"], err["message"]) == expected, raw

    def test_member_is_forbidden(self, api):
        net = make_network(api, headers={"X-Project-Id": "p1", "X-Roles": "member"})
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan"}},
            headers={"X-Project-Id": "p1", "X-Roles": "member"})
        assert resp.status_code == 403
        assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                                  "message": "rule:create_segment is disallowed by policy"}

    def test_segment_index_grows_per_network(self, api):
        net = make_network(api)
        for _ in range(3):
            make_segment(api, net["id"])
        shown = api.get(f"/v2.0/networks/{net['id']}").json()["network"]
        assert len(shown["segments"]) == 4
        assert shown["segments"][0]["provider:network_type"] == "geneve"  # the first, index 0


class TestShowSegment:
    def test_show_honours_fields(self, api):
        seg = make_segment(api, make_network(api)["id"], name="n")
        resp = api.get(f"/v2.0/segments/{seg['id']}", params=[("fields", "name"), ("fields", "id")])
        assert resp.json() == {"segment": {"name": "n", "id": seg["id"]}}
        assert resp.headers["X-Openstack-Request-Id"].startswith("req-")

    @pytest.mark.sqlite_only
    def test_unknown_field_is_400(self, api):
        seg = make_segment(api, make_network(api)["id"])
        resp = api.get(f"/v2.0/segments/{seg['id']}?fields=hosts")
        assert resp.status_code == 400
        assert error_of(resp) == {"type": "HTTPBadRequest", "detail": "",
                                  "message": "['hosts'] is invalid attribute for fields"}

    def test_missing_segment_is_404(self, api):
        resp = api.get(f"/v2.0/segments/{ZERO_UUID}")
        assert resp.status_code == 404
        assert error_of(resp)["message"] == f"Segment {ZERO_UUID} could not be found."


class TestUpdateSegment:
    def test_rename_bumps_revision_and_emits_event(self, api):
        seg = make_segment(api, make_network(api)["id"], name="a")
        resp = api.put(f"/v2.0/segments/{seg['id']}",
                       json={"segment": {"name": "b", "description": "new"}})
        assert resp.status_code == 200
        got = resp.json()["segment"]
        assert (got["name"], got["description"], got["revision_number"]) == ("b", "new", 1)
        assert got["segmentation_id"] == seg["segmentation_id"]
        assert api.events[-1].type == "segment.updated"

    @pytest.mark.parametrize(
        "attr", ["segmentation_id", "network_id", "network_type", "physical_network", "id"]
    )
    @pytest.mark.sqlite_only
    def test_fixed_attribute_is_400(self, api, attr):
        seg = make_segment(api, make_network(api)["id"])
        n_events = len(api.events)
        resp = api.put(f"/v2.0/segments/{seg['id']}", json={"segment": {attr: seg[attr]}})
        assert resp.status_code == 400
        assert error_of(resp)["message"] == f"Cannot update read-only attribute {attr}"
        assert len(api.events) == n_events

    def test_if_match_with_current_revision_succeeds(self, api):
        seg = make_segment(api, make_network(api)["id"])
        resp = api.put(f"/v2.0/segments/{seg['id']}", json={"segment": {"name": "x"}},
                       headers={"If-Match": "revision_number=0"})
        assert resp.status_code == 200

    def test_if_match_with_stale_revision_is_412_and_changes_nothing(self, api):
        seg = make_segment(api, make_network(api)["id"], name="keep")
        n_events = len(api.events)
        resp = api.put(f"/v2.0/segments/{seg['id']}", json={"segment": {"name": "x"}},
                       headers={"If-Match": "revision_number=7"})
        assert resp.status_code == 412
        assert error_of(resp)["type"] == "RevisionNumberConstraintFailed"
        assert api.get(f"/v2.0/segments/{seg['id']}").json()["segment"]["name"] == "keep"
        assert len(api.events) == n_events

    def test_missing_segment_is_404(self, api):
        resp = api.put(f"/v2.0/segments/{ZERO_UUID}", json={"segment": {"name": "x"}})
        assert resp.status_code == 404
        assert error_of(resp) == {"type": "SegmentNotFound", "detail": "",
                                  "message": f"Segment {ZERO_UUID} could not be found."}


class TestDeleteSegment:
    def test_delete_frees_the_id(self, api):
        net = make_network(api)
        seg = make_segment(api, net["id"], network_type="vlan", physical_network="physnet1",
                           segmentation_id=123)
        assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
        assert api.events[-1].type == "segment.deleted"
        gone = api.get(f"/v2.0/segments/{seg['id']}")
        assert gone.status_code == 404
        assert error_of(gone)["type"] == "SegmentNotFound"
        again = make_segment(api, net["id"], network_type="vlan", physical_network="physnet1",
                             segmentation_id=123)
        assert again["segmentation_id"] == 123

    def test_delete_twice_is_404(self, api):
        seg = make_segment(api, make_network(api)["id"])
        assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
        resp = api.delete(f"/v2.0/segments/{seg['id']}")
        assert resp.status_code == 404
        assert error_of(resp)["type"] == "SegmentNotFound"

    def test_delete_with_stale_if_match_is_412(self, api):
        seg = make_segment(api, make_network(api)["id"])
        resp = api.delete(f"/v2.0/segments/{seg['id']}", headers={"If-Match": "revision_number=3"})
        assert resp.status_code == 412
        assert error_of(resp) == {"type": "RevisionNumberConstraintFailed", "detail": "",
                                  "message": "Constrained to 3, but current revision is 0"}
        assert api.get(f"/v2.0/segments/{seg['id']}").status_code == 200
