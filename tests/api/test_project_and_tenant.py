"""project_id and tenant_id in a create body: Neutron's 400 when both are given and differ."""

from __future__ import annotations

import pytest

from tests.api.test_ports import row_counts
from tests.factories import error_of, make_network, make_segment, make_subnet

# Rules of the request body, decided before any SQL runs (tests/conftest.py: sqlite_only).
pytestmark = pytest.mark.sqlite_only

MISMATCH = "'project_id' and 'tenant_id' do not match"


def body_for(api, collection: str) -> dict:
    """A create body of `collection` that succeeds as it stands (the admin's own project)."""
    if collection == "networks":
        return {"name": "n"}
    net = make_network(api)
    if collection == "subnets":
        return {"network_id": net["id"], "cidr": "10.5.0.0/24", "ip_version": 4}
    make_subnet(api, net["id"])
    return {"network_id": net["id"]}


@pytest.mark.parametrize("collection", ["networks", "subnets", "ports"])
class TestCreate:
    @pytest.mark.parametrize("project, tenant", [("dev", "other"), ("other", "dev"), ("dev", None)])
    def test_both_given_and_different_is_400_and_creates_nothing(
        self, api, collection, project, tenant
    ):
        body = body_for(api, collection)
        before = row_counts(api)
        resp = api.post(f"/v2.0/{collection}", json={
            collection[:-1]: {**body, "project_id": project, "tenant_id": tenant}})
        assert resp.status_code == 400, resp.text
        assert error_of(resp) == {"type": "HTTPBadRequest", "message": MISMATCH, "detail": ""}
        assert row_counts(api) == before

    @pytest.mark.parametrize("given", [
        {"project_id": "dev", "tenant_id": "dev"}, {"project_id": "dev"}, {"tenant_id": "dev"}, {},
    ])
    def test_one_or_both_the_same_create_it_in_that_project(self, api, collection, given):
        body = body_for(api, collection)
        resp = api.post(f"/v2.0/{collection}", json={collection[:-1]: {**body, **given}})
        assert resp.status_code == 201, resp.text
        created = resp.json()[collection[:-1]]
        assert (created["project_id"], created["tenant_id"]) == ("dev", "dev")


@pytest.mark.parametrize("collection", ["networks", "ports"])
def test_an_admin_names_another_project_with_either_key(api, collection):
    """tenant_id alone is read as project_id (older clients send only tenant_id)."""
    for key in ("project_id", "tenant_id"):
        body = body_for(api, collection)
        resp = api.post(f"/v2.0/{collection}", json={collection[:-1]: {**body, key: "p9"}})
        assert resp.status_code == 201, resp.text
        created = resp.json()[collection[:-1]]
        assert (created["project_id"], created["tenant_id"]) == ("p9", "p9")


def test_segments_and_subscriptions_take_neither(api):
    """Neither resource has an owner project in its body: both keys are unknown attributes."""
    net = make_network(api)
    make_segment(api, net["id"])
    for key in ("project_id", "tenant_id"):
        seg = api.post("/v2.0/segments", json={"segment": {
            "network_id": net["id"], "network_type": "vxlan", key: "dev"}})
        sub = api.post("/v2.0/event-subscriptions", json={"event_subscription": {
            "url": "https://example.com/h", "secret": "s" * 32,
            "event_types": ["network.created"], key: "dev"}})
        for resp in (seg, sub):
            assert resp.status_code == 400, resp.text
            assert error_of(resp)["message"] == f"Unrecognized attribute(s) '{key}'"
