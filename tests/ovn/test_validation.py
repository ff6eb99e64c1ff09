"""With backend = "ovn", a segment OVN cannot carry is a 400 at create time, and nothing
of it is written: not in the database, not in the outbox, not in the Northbound DB."""

from __future__ import annotations

import pytest

from tests.conftest import build_api, wait_until
from tests.factories import error_of, make_network, make_segment
from tests.ovn.test_realize import OWNER, pending_ovn_deliveries, switch


@pytest.fixture
def limited_api(db_url, ovn_dbs):
    """OVN publishing max_tunid 4095 (what northd writes once a VXLAN chassis exists)."""
    ovn_dbs.nbctl("set", "NB_Global", ".", "options:max_tunid=4095")
    api = build_api(db_url, backend="ovn", tenant_network_types=["vxlan"],
                    vni_ranges={"vxlan": ["4090:5000"], "geneve": ["1:16777215"]},
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5},
                    event_dispatch_interval_seconds=0.2)
    with api.client:
        limits = api.client.app.state.runtime.rules.limits
        wait_until(lambda: limits.max_tunnel_id() == 4095, "max_tunid read from the NB")
        yield api
    ovn_dbs.nbctl("remove", "NB_Global", ".", "options", "max_tunid")


def nb_switch_count(ovn_dbs) -> int:
    return len(ovn_dbs.find("Logical_Switch"))


def refused(api, ovn_dbs, method, path, body) -> dict:
    """Send a request that must be a 400 and change nothing anywhere; its NeutronError."""
    before, switches = api.counts(), nb_switch_count(ovn_dbs)
    api.clear_events()
    resp = api.request(method, path, json=body)
    assert resp.status_code == 400, resp.text
    assert api.counts() == before and api.events == []
    assert nb_switch_count(ovn_dbs) == switches
    return error_of(resp)


@pytest.mark.parametrize("network_type", ["vxlan", "geneve"])
def test_a_tunnel_id_above_max_tunid_is_refused(limited_api, ovn_dbs, network_type):
    err = refused(limited_api, ovn_dbs, "POST", "/v2.0/networks", {"network": {
        "name": "big", "provider:network_type": network_type,
        "provider:segmentation_id": 4096}})
    assert err["type"] == "InvalidInput"
    assert err["message"] == ("Invalid input for operation: Segmentation ID should be lower "
                              "or equal to 4095.")

    # The highest ID OVN carries is accepted, and realized.
    at_top = make_network(limited_api, name="top", **{
        "provider:network_type": network_type, "provider:segmentation_id": 4095})
    wait_until(lambda: switch(ovn_dbs, at_top["id"]), "the switch of the network at max_tunid")

    err = refused(limited_api, ovn_dbs, "POST", "/v2.0/segments", {"segment": {
        "network_id": at_top["id"], "network_type": network_type, "segmentation_id": 70000}})
    assert "lower or equal to 4095" in err["message"]


def test_gre_is_refused_with_the_ovn_backend(limited_api, ovn_dbs):
    err = refused(limited_api, ovn_dbs, "POST", "/v2.0/networks", {"network": {
        "name": "gre", "provider:network_type": "gre", "provider:segmentation_id": 10}})
    assert err["type"] == "InvalidInput"
    assert "Network type gre is not supported" in err["message"]


def test_allocation_stays_at_or_below_max_tunid(limited_api, ovn_dbs):
    """vni_ranges 4090:5000, max_tunid 4095: the six IDs OVN carries, then none."""
    ids = set()
    for i in range(6):
        net = make_network(limited_api, name=f"auto{i}")
        ids.add(net["provider:segmentation_id"])
    assert ids == set(range(4090, 4096))
    before = limited_api.counts()
    resp = limited_api.post("/v2.0/networks", json={"network": {"name": "one too many"}})
    assert resp.status_code == 503, resp.text
    assert error_of(resp)["type"] == "NoNetworkAvailable"
    assert limited_api.counts() == before
    wait_until(lambda: not pending_ovn_deliveries(limited_api), "the six realized")
    assert limited_api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    again = make_network(limited_api, name="reuses")
    assert again["provider:segmentation_id"] == net["provider:segmentation_id"]


def test_without_max_tunid_the_configured_range_is_used(db_url, ovn_dbs):
    api = build_api(db_url, backend="ovn", tenant_network_types=["vxlan"],
                    vni_ranges={"vxlan": ["70000:70000"], "geneve": ["1:16777215"]},
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5})
    with api.client:
        wait_until(lambda: api.client.app.state.runtime.rules.limits is not None
                   and api.client.app.state.runtime.rules.limits._northbound.connected,
                   "the NB connection")
        assert api.client.app.state.runtime.rules.limits.max_tunnel_id() is None
        net = make_network(api, name="unbounded")
        assert net["provider:segmentation_id"] == 70000
        seg = make_segment(api, net["id"], network_type="geneve", segmentation_id=16_000_000)
        assert seg["segmentation_id"] == 16_000_000
