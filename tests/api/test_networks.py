"""/v2.0/networks through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.api.test_subnets import post_subnet
from tests.factories import error_of, make_network, make_segment, make_subnet

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member,reader"}
OTHER = {"X-Project-Id": "p2", "X-Roles": "member,reader"}
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


class TestCreateNetwork:
    def test_plain_network_gets_one_tenant_segment(self, api):
        net = make_network(api, name="plain")
        assert net["provider:network_type"] == "geneve"
        assert 1 <= net["provider:segmentation_id"] <= 16777215
        assert net["provider:physical_network"] is None
        assert net["mtu"] == 1450  # 1500 - 20 (IPv4) - 30 (Geneve header)
        assert (net["status"], net["project_id"], net["tenant_id"]) == ("ACTIVE", "dev", "dev")
        assert net["admin_state_up"] is True and net["shared"] is False
        assert [e.type for e in api.events] == ["network.created", "segment.created"]
        assert api.counts() == {"networks": 1, "segments": 1}

    def test_vlan_provider_network(self, api):
        net = make_network(api, **{"provider:network_type": "vlan",
                                   "provider:physical_network": "physnet1",
                                   "provider:segmentation_id": 110})
        assert [net[k] for k in PROVIDER] == ["vlan", "physnet1", 110]
        assert net["mtu"] == 1500

    def test_multi_provider_segments_render_as_a_list(self, api):
        net = make_network(api, segments=[
            {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
            {"provider:network_type": "vlan", "provider:physical_network": "physnet2",
             "provider:segmentation_id": 7},
        ])
        assert not any(k in net for k in PROVIDER)
        assert [s["provider:physical_network"] for s in net["segments"]] == ["physnet1", "physnet2"]
        assert net["segments"][1]["provider:segmentation_id"] == 7

    def test_member_naming_another_project_is_400_and_creates_nothing(self, api):
        for key in ("project_id", "tenant_id"):
            resp = api.post("/v2.0/networks", json={"network": {key: "p-unknown"}}, headers=MEMBER)
            assert resp.status_code == 400
            assert error_of(resp) == {
                "type": "HTTPBadRequest", "detail": "",
                "message": "Only a caller allowed to act for other projects may give a "
                           "project_id (or tenant_id) other than its own"}
        assert api.counts() == {"networks": 0, "segments": 0}
        assert make_network(api, headers=MEMBER, project_id="p1")["project_id"] == "p1"
        assert make_network(api, project_id="p-unknown")["project_id"] == "p-unknown"

    def test_requested_mtu_is_kept_and_validated(self, api):
        net = make_network(api, mtu=1400)
        assert net["mtu"] == 1400
        before = api.counts()
        resp = api.post("/v2.0/networks", json={"network": {"name": "n", "mtu": 9000}})
        assert resp.status_code == 400
        assert "maximum is 1450" in error_of(resp)["message"]
        assert api.counts() == before

    def test_taken_provider_vlan_is_409_and_creates_no_network(self, api):
        make_network(api, **{"provider:network_type": "vlan",
                             "provider:physical_network": "physnet1",
                             "provider:segmentation_id": 200})
        before, n_events = api.counts(), len(api.events)
        resp = api.post("/v2.0/networks", json={"network": {
            "provider:network_type": "vlan", "provider:physical_network": "physnet1",
            "provider:segmentation_id": 200}})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "VlanIdInUse"
        assert api.counts() == before and len(api.events) == n_events

    @pytest.mark.parametrize(
        ("attrs", "type_"),
        [
            ({"provider:network_type": "vlan", "segments": [{"provider:network_type": "vxlan"}]},
             "SegmentsSetInConjunctionWithProviders"),
            ({"segments": [{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                            "provider:segmentation_id": 5}] * 2},
             "SegmentsContainDuplicateEntry"),
            ({"provider:physical_network": "physnet1"}, "InvalidInput"),
            ({"segments": []}, "HTTPBadRequest"),
            ({"segments": [{"provider:network_type": "vxlan", "bogus": 1}]}, "HTTPBadRequest"),
            ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
              "provider:segmentation_id": 5000}, "InvalidInput"),
            ({"provider:network_type": "gre"}, "InvalidInput"),
            ({"admin_state_up": "yes"}, "HTTPBadRequest"),
            ({"shared": 1}, "HTTPBadRequest"),
            ({"mtu": -1}, "HTTPBadRequest"),
            ({"mtu": True}, "HTTPBadRequest"),
            ({"name": "x" * 256}, "HTTPBadRequest"),
            ({"name": None}, "HTTPBadRequest"),
            ({"status": "DOWN"}, "HTTPBadRequest"),
            ({"router:external": True}, "HTTPBadRequest"),
        ],
    )
    @pytest.mark.sqlite_only
    def test_invalid_request_is_400_and_changes_nothing(self, api, attrs, type_):
        resp = api.post("/v2.0/networks", json={"network": attrs})
        assert resp.status_code == 400, resp.text
        assert error_of(resp)["type"] == type_
        assert api.counts() == {"networks": 0, "segments": 0}
        assert api.events == []

    def test_member_creates_in_own_project_without_provider_view(self, api):
        net = make_network(api, headers=MEMBER)
        assert net["project_id"] == "p1"
        assert not any(k in net for k in PROVIDER)

    def test_member_may_not_set_provider_attributes(self, api):
        resp = api.post("/v2.0/networks", headers=MEMBER, json={"network": {
            "provider:network_type": "vxlan"}})
        assert resp.status_code == 403
        assert error_of(resp) == {
            "type": "PolicyNotAuthorized", "detail": "",
            "message": "rule:create_network:provider:network_type is disallowed by policy"}
        assert api.counts()["networks"] == 0

    def test_exhausted_tenant_types_is_503(self, db_url):
        from tests.conftest import build_api

        api = build_api(db_url, tenant_network_types=["vlan"], vlan_ranges=["only:5:5"])
        with api.client:
            make_network(api)
            resp = api.post("/v2.0/networks", json={"network": {"name": "n"}})
            assert resp.status_code == 503
            assert error_of(resp)["type"] == "NoNetworkAvailable"
            assert api.counts() == {"networks": 1, "segments": 1}


class TestReadNetwork:
    def test_another_projects_network_is_404_like_a_missing_one(self, api):
        net = make_network(api, headers=MEMBER)
        for method in ("GET", "PUT", "DELETE"):
            body = {"network": {"name": "x"}} if method == "PUT" else None
            resp = api.request(method, f"/v2.0/networks/{net['id']}", json=body, headers=OTHER)
            assert resp.status_code == 404
            assert error_of(resp)["message"] == f"Network {net['id']} could not be found."
        assert api.get("/v2.0/networks", headers=OTHER).json() == {"networks": []}

    def test_shared_network_is_visible_to_everyone(self, api):
        net = make_network(api, shared=True)
        assert api.get(f"/v2.0/networks/{net['id']}", headers=OTHER).status_code == 200

    @pytest.mark.parametrize("attr", PROVIDER)
    @pytest.mark.sqlite_only
    def test_hidden_provider_attribute_is_refused_as_a_filter_like_an_unknown_one(self, api, attr):
        make_network(api, headers=MEMBER, shared=False)
        make_network(api, shared=True)
        resp = api.get(f"/v2.0/networks?{attr}=5", headers=MEMBER)
        assert resp.status_code == 400
        assert error_of(resp)["message"] == f"['{attr}'] is invalid attribute for filtering"

    def test_provider_filters_join_segments(self, api):
        a = make_network(api, **{"provider:network_type": "vlan",
                                 "provider:physical_network": "physnet2"})
        make_network(api)
        got = api.get("/v2.0/networks?provider:physical_network=physnet2").json()["networks"]
        assert [n["id"] for n in got] == [a["id"]]
        got = api.get("/v2.0/networks?provider:network_type=geneve&provider:network_type=vlan")
        assert len(got.json()["networks"]) == 2

    def test_router_external_false_matches_every_network_and_true_none(self, api):
        mine = make_network(api, headers=MEMBER)
        shared = make_network(api, shared=True)
        seen = {"member": (MEMBER, {mine["id"], shared["id"]}), "other": (OTHER, {shared["id"]}),
                "admin": (None, {mine["id"], shared["id"]})}
        for headers, expected in seen.values():
            got = api.get("/v2.0/networks?router:external=False", headers=headers)
            assert got.status_code == 200, got.text
            assert {n["id"] for n in got.json()["networks"]} == expected
            assert api.get("/v2.0/networks?router:external=true",
                           headers=headers).json() == {"networks": []}
        both = api.get("/v2.0/networks?router:external=true&router:external=false").json()
        assert len(both["networks"]) == 2
        assert "router:external" not in both["networks"][0]  # no external-net extension
        resp = api.get("/v2.0/networks?router:external=maybe")
        assert resp.status_code == 400
        assert error_of(resp)["type"] == "HTTPBadRequest"
        resp = api.get("/v2.0/networks?sort_key=router:external")
        assert resp.status_code == 400

    def test_missing_network_is_404(self, api):
        resp = api.get(f"/v2.0/networks/{ZERO_UUID}")
        assert resp.status_code == 404
        assert error_of(resp)["type"] == "NetworkNotFound"


class TestUpdateNetwork:
    def test_update_name_mtu_and_admin_state(self, api):
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {
            "name": "n2", "mtu": 1400, "admin_state_up": False, "description": "d"}})
        assert resp.status_code == 200
        got = resp.json()["network"]
        assert (got["name"], got["mtu"], got["admin_state_up"], got["revision_number"]) == (
            "n2", 1400, False, 1)
        assert api.events[-1].type == "network.updated"

    def test_mtu_above_what_segments_carry_is_400(self, api):
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1500}})
        assert resp.status_code == 400
        assert error_of(resp) == {
            "type": "InvalidInput", "detail": "",
            "message": "Invalid input for operation: Requested MTU is too big, maximum is 1450."}
        assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["mtu"] == 1450

    def test_vlan_id_of_single_segment_network_can_change_and_frees_the_old(self, api):
        net = make_network(api, **{"provider:network_type": "vlan",
                                   "provider:physical_network": "physnet1",
                                   "provider:segmentation_id": 150})
        resp = api.put(f"/v2.0/networks/{net['id']}",
                       json={"network": {"provider:segmentation_id": 151}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["network"]["provider:segmentation_id"] == 151
        other = make_network(api, **{"provider:network_type": "vlan",
                                     "provider:physical_network": "physnet1",
                                     "provider:segmentation_id": 150})
        resp = api.put(f"/v2.0/networks/{other['id']}",
                       json={"network": {"provider:segmentation_id": 151}})
        assert resp.status_code == 409
        assert error_of(resp)["type"] == "VlanIdInUse"
        assert api.get(f"/v2.0/networks/{other['id']}").json()["network"][
            "provider:segmentation_id"] == 150

    UNSUPPORTED_UPDATE_ERRORS = {
        "provider:network_type": "ProviderUpdateNotSupported",
        "provider:segmentation_id": "InvalidInput",  # of a geneve network: only VLAN's change
        "segments": "HTTPBadRequest", "id": "HTTPBadRequest", "status": "HTTPBadRequest",
        "project_id": "HTTPBadRequest", "bogus": "HTTPBadRequest",
    }

    @pytest.mark.parametrize(
        "attrs",
        [{"provider:network_type": "vxlan"}, {"provider:segmentation_id": 9}, {"segments": []},
         {"id": ZERO_UUID}, {"status": "DOWN"}, {"project_id": "x"}, {"bogus": 1}],
    )
    @pytest.mark.sqlite_only
    def test_unsupported_update_is_400_and_changes_nothing(self, api, attrs):
        net = make_network(api)
        n_events = len(api.events)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": attrs})
        assert resp.status_code == 400, resp.text
        (attr,) = attrs
        assert error_of(resp)["type"] == self.UNSUPPORTED_UPDATE_ERRORS[attr], resp.text
        assert api.get(f"/v2.0/networks/{net['id']}").json()["network"] == net
        assert len(api.events) == n_events

    def test_stale_if_match_is_412(self, api):
        net = make_network(api)
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}},
                       headers={"If-Match": "revision_number=9"})
        assert resp.status_code == 412
        assert error_of(resp)["message"] == "Constrained to 9, but current revision is 0"


class TestDeleteNetwork:
    def test_delete_removes_segments_and_frees_their_ids(self, api):
        net = make_network(api, **{"provider:network_type": "vlan",
                                   "provider:physical_network": "physnet1",
                                   "provider:segmentation_id": 222})
        make_segment(api, net["id"], network_type="vlan", physical_network="physnet2",
                     segmentation_id=222)
        api.clear_events()
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        assert api.counts() == {"networks": 0, "segments": 0}
        assert sorted(e.type for e in api.events) == [
            "network.deleted", "segment.deleted", "segment.deleted"]
        make_network(api, **{"provider:network_type": "vlan",
                             "provider:physical_network": "physnet1",
                             "provider:segmentation_id": 222})

    def test_member_of_another_project_cannot_delete(self, api):
        net = make_network(api, headers=MEMBER)
        resp = api.delete(f"/v2.0/networks/{net['id']}", headers=OTHER)
        assert resp.status_code == 404
        assert error_of(resp)["type"] == "NetworkNotFound"
        assert api.counts()["networks"] == 1

    def test_reader_cannot_delete_own_project_network(self, api):
        net = make_network(api, headers=MEMBER)
        resp = api.delete(f"/v2.0/networks/{net['id']}",
                          headers={"X-Project-Id": "p1", "X-Roles": "reader"})
        assert resp.status_code == 403
        assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                                  "message": "rule:delete_network is disallowed by policy"}
        assert api.counts()["networks"] == 1


class TestCliIntegerStrings:
    """python-openstackclient sends --mtu and --provider-segment as digit strings."""

    def test_digit_strings_are_accepted_for_network_mtu_and_provider_id(self, api):
        net = make_network(api, mtu="1400", **{"provider:network_type": "vlan",
                                               "provider:physical_network": "physnet1",
                                               "provider:segmentation_id": "210"})
        assert (net["mtu"], net["provider:segmentation_id"]) == (1400, 210)

    @pytest.mark.parametrize("value", [" 210", "+210", "2.1e2", "0x10", "２１０", True, 210.0])
    @pytest.mark.sqlite_only
    def test_anything_else_is_still_400(self, api, value):
        resp = api.post("/v2.0/networks", json={"network": {
            "provider:network_type": "vlan", "provider:physical_network": "physnet1",
            "provider:segmentation_id": value}})
        assert resp.status_code == 400
        err = error_of(resp)
        assert err["type"] == "HTTPBadRequest"
        assert err["message"].startswith("Invalid input for provider:segmentation_id. Reason: ")
        assert err["message"].endswith(" is not an integer."), err
        assert api.counts()["networks"] == 0

    def test_segment_segmentation_id_stays_a_json_integer(self, api):
        net = make_network(api)
        resp = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan", "segmentation_id": "12"}})
        assert resp.status_code == 400
        assert error_of(resp) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": "Invalid input for segmentation_id. Reason: '12' is not an integer."}


class TestControlCharacters:
    @pytest.mark.parametrize("attr", ["name", "description"])
    def test_nul_in_a_string_is_400_on_every_database(self, api, attr):
        resp = api.post("/v2.0/networks", json={"network": {attr: "a\x00b"}})
        assert resp.status_code == 400
        assert "control characters" in error_of(resp)["message"]
        assert api.counts()["networks"] == 0

    def test_newline_is_fine_in_a_description_but_not_a_name(self, api):
        assert make_network(api, description="two\nlines")["description"] == "two\nlines"
        resp = api.post("/v2.0/networks", json={"network": {"name": "a\nb"}})
        assert resp.status_code == 400
        assert error_of(resp) == {
            "type": "HTTPBadRequest", "detail": "",
            "message": "Invalid input for name. Reason: control characters are not allowed."}

    @pytest.mark.parametrize("ident", ["a%00b", "not-an-id", "A" * 300, "%E2%80%AE"])
    def test_path_id_that_cannot_be_an_id_is_404(self, api, ident):
        for method in ("GET", "DELETE"):
            resp = api.request(method, f"/v2.0/networks/{ident}")
            assert resp.status_code == 404
            assert error_of(resp)["type"] == "NetworkNotFound"


class TestMtuMinimums:
    """Neutron takes any non-negative MTU; a subnet needs 68 (IPv4) or 1280 (IPv6), checked
    when the subnet is created and when the MTU is lowered (409 NetworkMTUSubnetConflict)."""

    @staticmethod
    def conflict(resp, network_id, minimum):
        assert resp.status_code == 409, resp.text
        assert error_of(resp) == {
            "type": "NetworkMTUSubnetConflict", "detail": "",
            "message": f"MTU of {network_id} is not valid, subnet requires a minimum of {minimum}"}

    def test_any_non_negative_mtu_is_taken_at_create(self, api):
        assert [make_network(api, mtu=m)["mtu"] for m in (1, 67, 68, 1279)] == [1, 67, 68, 1279]
        assert make_network(api, mtu=0)["mtu"] == 1450  # 0: the most the segments carry

    def test_a_subnet_needing_more_than_the_network_carries_is_409(self, api):
        tiny, small = make_network(api, mtu=67), make_network(api, mtu=1279)
        before, n_events = api.counts(), len(api.events)
        self.conflict(post_subnet(api, tiny["id"], cidr="10.0.0.0/24"), tiny["id"], 68)
        self.conflict(post_subnet(api, tiny["id"], cidr="2001:db8::/64"), tiny["id"], 68)
        self.conflict(post_subnet(api, small["id"], cidr="2001:db8::/64"), small["id"], 1280)
        assert (api.counts(), len(api.events)) == (before, n_events)
        assert api.get("/v2.0/subnets").json()["subnets"] == []
        make_subnet(api, small["id"], cidr="10.0.0.0/24")
        make_subnet(api, make_network(api, mtu=1280)["id"], cidr="2001:db8::/64")

    def test_lowering_the_mtu_below_what_a_subnet_needs_is_409(self, api):
        v4, v6 = make_network(api, mtu=1280), make_network(api, mtu=1280)
        make_subnet(api, v4["id"], cidr="10.0.0.0/24")
        make_subnet(api, v6["id"], cidr="2001:db8::/64")
        v4, v6 = (api.get(f"/v2.0/networks/{n['id']}").json()["network"] for n in (v4, v6))
        n_events = len(api.events)
        for net, mtu, minimum in ((v4, 67, 68), (v6, 1279, 1280), (v6, 67, 68),
                                  (v4, 0, 68)):  # 0 is checked as asked, as Neutron does
            resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": mtu}})
            self.conflict(resp, net["id"], minimum)
            assert api.get(f"/v2.0/networks/{net['id']}").json()["network"] == net
        assert len(api.events) == n_events
        resp = api.put(f"/v2.0/networks/{v4['id']}", json={"network": {"mtu": 68}})
        assert resp.json()["network"]["mtu"] == 68
        # Without subnets nothing bounds it from below; 0 means the most the segments carry.
        bare = make_network(api)
        for mtu, shown in ((10, 10), (0, 1450)):
            resp = api.put(f"/v2.0/networks/{bare['id']}", json={"network": {"mtu": mtu}})
            assert resp.json()["network"]["mtu"] == shown, resp.text
