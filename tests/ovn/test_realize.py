"""API changes become Northbound rows (after commit, through the outbox), on every database."""

from __future__ import annotations

import pytest

from tests.conftest import build_api, wait_until
from tests.factories import make_vlan_network
from tests.ovn.conftest import OvnDatabases

OWNER = "segmentd-test"


@pytest.fixture
def ovn_api(db_url, ovn_dbs):
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5},
                    event_dispatch_interval_seconds=0.2)
    with api.client:
        yield api


def switch(ovn_dbs, network_id):
    rows = ovn_dbs.find("Logical_Switch", f"name=neutron-{network_id}")
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def port(ovn_dbs, segment_id):
    rows = ovn_dbs.find("Logical_Switch_Port", f"name=provnet-{segment_id}")
    return rows[0] if rows else None


def create_vlan_network(api, name="rack1", physnet="physnet1", vlan=101):
    """(network, its one segment): a VLAN network, as the OVN tests make them."""
    net = make_vlan_network(api, name=name, physnet=physnet, vlan=vlan)
    segs = api.client.get(f"/v2.0/segments?network_id={net['id']}").json()["segments"]
    return net, segs[0]


def test_vlan_network_becomes_a_switch_with_a_localnet_port(ovn_api, ovn_dbs):
    net, seg = create_vlan_network(ovn_api)
    ls = wait_until(lambda: switch(ovn_dbs, net["id"]), "the network's switch")
    assert ls["external_ids"] == {
        "neutron:network_name": "rack1",
        "neutron:mtu": str(net["mtu"]),
        "neutron:revision_number": str(net["revision_number"]),
        "neutron:availability_zone_hints": "",
        "neutron:provnet-network-type": "vlan",
        "neutron:provnet-physical-network": "physnet1",
        "segmentd:owner": OWNER,
    }
    assert ls["other_config"] == {"mcast_snoop": "false", "mcast_flood_unregistered": "false",
                                  "vlan-passthru": "false", "fdb_age_threshold": "300"}
    lsp = wait_until(lambda: port(ovn_dbs, seg["id"]), "the segment's localnet port")
    assert lsp["type"] == "localnet"
    assert lsp["addresses"] == "unknown"
    assert lsp["tag_request"] == 101
    assert lsp["options"] == {"network_name": "physnet1", "mcast_flood_reports": "true",
                              "mcast_flood": "false", "localnet_learn_fdb": "false"}
    assert lsp["external_ids"] == {"neutron:provnet-physical-network": "physnet1",
                                   "segmentd:owner": OWNER}
    assert lsp["_uuid"] in ls["ports"] or lsp["_uuid"] == ls["ports"]


def test_rename_delete_segment_and_delete_network_mirror(ovn_api, ovn_dbs):
    net, first = create_vlan_network(ovn_api, vlan=102)
    r = ovn_api.client.post("/v2.0/segments", json={"segment": {
        "network_id": net["id"], "network_type": "flat", "physical_network": "physnet2"}})
    assert r.status_code == 201, r.text
    flat = r.json()["segment"]
    flat_port = wait_until(lambda: port(ovn_dbs, flat["id"]), "the flat segment's port")
    assert flat_port["tag_request"] == []  # flat: no tag

    r = ovn_api.client.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "renamed"}})
    assert r.status_code == 200, r.text
    wait_until(lambda: switch(ovn_dbs, net["id"])["external_ids"]["neutron:network_name"] == "renamed",
               "the rename in the switch's external_ids")
    assert switch(ovn_dbs, net["id"])["external_ids"]["neutron:revision_number"] == str(
        r.json()["network"]["revision_number"])

    assert ovn_api.client.delete(f"/v2.0/segments/{flat['id']}").status_code == 204
    wait_until(lambda: port(ovn_dbs, flat["id"]) is None, "the flat port's removal")
    stays = port(ovn_dbs, first["id"])  # the other segment's port stays
    assert (stays["type"], stays["tag_request"]) == ("localnet", 102)

    assert ovn_api.client.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    wait_until(lambda: switch(ovn_dbs, net["id"]) is None, "the switch's removal")
    assert port(ovn_dbs, first["id"]) is None


def test_tunnel_network_is_a_switch_without_localnet_port(ovn_api, ovn_dbs):
    r = ovn_api.client.post("/v2.0/networks", json={"network": {"name": "overlay"}})
    assert r.status_code == 201, r.text
    net = r.json()["network"]
    ls = wait_until(lambda: switch(ovn_dbs, net["id"]), "the overlay switch")
    assert ls["external_ids"]["neutron:provnet-network-type"] == "geneve"
    assert "neutron:provnet-physical-network" not in ls["external_ids"]
    assert "fdb_age_threshold" not in ls["other_config"]
    assert ls["ports"] == []


def test_rows_without_the_owner_marker_are_never_touched(ovn_api, ovn_dbs):
    net, seg = create_vlan_network(ovn_api, vlan=103)
    wait_until(lambda: port(ovn_dbs, seg["id"]), "the port")
    # Another system takes the switch over (its marker replaced): segmentd must leave it be.
    ovn_dbs.nbctl("set", "Logical_Switch", f"neutron-{net['id']}",
                  "external_ids:segmentd\\:owner=someone-else")
    ovn_dbs.nbctl("set", "Logical_Switch_Port", f"provnet-{seg['id']}",
                  "external_ids:segmentd\\:owner=someone-else")
    foreign = switch(ovn_dbs, net["id"]), port(ovn_dbs, seg["id"])
    assert foreign[0]["external_ids"]["neutron:network_name"] == "rack1"
    assert ovn_api.client.put(f"/v2.0/networks/{net['id']}",
                              json={"network": {"name": "changed"}}).status_code == 200
    assert ovn_api.client.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    # Both events are delivered (nothing left pending), and the foreign rows are unchanged.
    wait_until(lambda: not pending_ovn_deliveries(ovn_api), "the events' delivery")
    assert (switch(ovn_dbs, net["id"]), port(ovn_dbs, seg["id"])) == foreign


def pending_ovn_deliveries(api) -> int:
    from sqlalchemy import text

    async def count(conn):
        q = text("SELECT count(*) FROM event_deliveries WHERE target = 'ovn' AND delivered_at IS NULL")
        return (await conn.execute(q)).scalar()

    return api._run(count)


def test_writes_wait_while_the_northbound_db_is_down_and_converge_when_it_returns(
        db_url, tmp_path):
    later = OvnDatabases(tmp_path)  # not started yet: nothing listens on its socket
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": later.remote, "owner": OWNER, "timeout_seconds": 2},
                    event_dispatch_interval_seconds=0.2, event_retry_max_seconds=1)
    with api.client:
        # 100 changes: 50 networks, each with its VLAN segment.
        nets = [create_vlan_network(api, name=f"n{i}", vlan=200 + i) for i in range(50)]
        wait_until(lambda: pending_ovn_deliveries(api) == 100, "the events waiting for OVN")
        later.start()
        try:
            for net, seg in nets:
                wait_until(lambda: switch(later, net["id"]), "a switch after the NB came up")
                wait_until(lambda: port(later, seg["id"]), "a port after the NB came up")
            wait_until(lambda: not pending_ovn_deliveries(api), "every delivery settled")
        finally:
            later.stop()
