"""Southbound chassis become hosts: ovn-sbctl changes are what the host queries answer."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from sqlalchemy import text

from tests.conftest import _truncate, build_api, wait_until
from tests.factories import bridges, error_of, make_network, make_segment, send_report
from tests.hosts import age_host, sweep
from tests.ovn.test_realize import OWNER

ADMIN = {"X-Roles": "admin"}


def chassis_api(db_url, ovn_dbs, **overrides):
    ovn = {"nb_connection": ovn_dbs.remote, "sb_connection": ovn_dbs.remote, "owner": OWNER,
           "timeout_seconds": 5, "chassis_lease_seconds": 2, **overrides.pop("ovn", {})}
    return build_api(db_url, backend="ovn", ovn=ovn, event_dispatch_interval_seconds=0.2,
                     **overrides)


@pytest.fixture
def sb(ovn_dbs):
    """The test's chassis are deleted afterwards (the server is shared by the module)."""
    yield ovn_dbs
    for name in ovn_dbs.sbctl("--bare", "--columns=name", "list", "Chassis").split():
        ovn_dbs.sbctl("--if-exists", "chassis-del", name)


@pytest.fixture
def api(db_url, sb):
    api = chassis_api(db_url, sb)
    with api.client:
        yield api


_ips = itertools.count(1)


def add_chassis(sb, name, hostname, mappings, encap="geneve"):
    """In one transaction, as ovn-controller registers a chassis (each its own encap IP)."""
    n = next(_ips)
    sb.sbctl("chassis-add", name, encap, f"10.0.{n // 250}.{n % 250 + 1}", "--", "set", "Chassis", name,
             f'hostname="{hostname}"', f'other_config:ovn-bridge-mappings="{mappings}"')


def set_mappings(sb, name, mappings):
    sb.sbctl("set", "Chassis", name, f'other_config:ovn-bridge-mappings="{mappings}"')


def world(api):
    """Two VLAN segments on physnet1, one on physnet2, a geneve network; their ids."""
    def vlan(physnet, vid):
        return make_network(api, name=f"{physnet}-{vid}", **{
            "provider:network_type": "vlan", "provider:physical_network": physnet,
            "provider:segmentation_id": vid})

    nets = {"p1a": vlan("physnet1", 110), "p1b": vlan("physnet1", 111),
            "p2": vlan("physnet2", 120), "overlay": make_network(api, name="overlay")}
    return {k: segments_of(api, n["id"])[0] for k, n in nets.items()}


def segments_of(api, network_id):
    return [s["id"] for s in api.get(f"/v2.0/segments?network_id={network_id}").json()["segments"]]


def reached(api, host) -> set[str] | None:
    resp = api.get(f"/v2.0/hosts/{host}/segments")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return {s["id"] for s in resp.json()["segments"]}


def host_events(api, host):
    return [e.resource for e in api.events
            if e.type == "host.segments_changed" and e.resource_id == host]


def test_chassis_mappings_move_reach_by_the_difference_and_deletion_takes_it_away(api, sb):
    segs = world(api)
    api.clear_events()
    add_chassis(sb, "ch-1", "compute-1", "physnet1:br-ex")
    want = {segs["p1a"], segs["p1b"], segs["overlay"]}
    wait_until(lambda: reached(api, "compute-1") == want, "physnet1 and geneve reached")
    (agent,) = api.get("/v2.0/agents").json()["agents"]
    assert (agent["agent_type"], agent["binary"], agent["host"], agent["alive"]) == (
        "OVN Controller agent", "ovn-controller", "compute-1", True)
    assert agent["configurations"]["bridge_mappings"] == {"physnet1": "br-ex"}
    (entry,) = api.get("/v2.0/hosts").json()["hosts"]
    assert entry["chassis"] == "ch-1" and entry["alive"] is True
    (first,) = host_events(api, "compute-1")
    assert first["reason"] == "chassis" and set(first["gained"]) == want

    # A changed mapping: the event names only what moved.
    api.clear_events()
    set_mappings(sb, "ch-1", "physnet2:br-eth1")
    want = {segs["p2"], segs["overlay"]}
    wait_until(lambda: reached(api, "compute-1") == want, "physnet2 instead of physnet1")
    (moved,) = wait_until(lambda: host_events(api, "compute-1"), "the change event")
    assert set(moved["gained"]) == {segs["p2"]}
    assert set(moved["lost"]) == {segs["p1a"], segs["p1b"]}

    # Identical updates (the same mappings written again, an unrelated column) write nothing.
    api.clear_events()
    counts = api.counts()
    set_mappings(sb, "ch-1", "physnet2:br-eth1")
    sb.sbctl("set", "Chassis", "ch-1", "external_ids:unrelated=1")
    sb.sbctl("set", "Chassis", "ch-1", "nb_cfg=7")
    watcher_settles(api)
    assert api.events == [] and api.counts() == counts

    # Deleted: the host reaches nothing (and, with no other agent, is gone).
    sb.sbctl("chassis-del", "ch-1")
    wait_until(lambda: reached(api, "compute-1") is None, "the host gone with its chassis")
    assert api.get("/v2.0/agents").json()["agents"] == []
    (gone,) = [e for e in host_events(api, "compute-1") if e["reason"] == "chassis_deleted"]
    assert set(gone["lost"]) == want and gone["gained"] == []

    # Back again: it reaches what its mappings say.
    add_chassis(sb, "ch-1", "compute-1", "physnet2:br-eth1")
    wait_until(lambda: reached(api, "compute-1") == want, "the reach back")


def watcher_settles(api):
    """Wait until the watcher has looked at the replica's latest change."""
    watcher = api.client.app.state.chassis_watcher
    wait_until(lambda: watcher.caught_up, "the watcher to catch up")


def add_fleet(sb, fleet: dict[str, tuple[str, str]]) -> None:
    """Many chassis {name: (hostname, mappings)} in one Southbound transaction."""
    args: list[str] = []
    for name, (hostname, mappings) in fleet.items():
        n = next(_ips)
        args += ["--", "chassis-add", name, "geneve", f"10.1.{n // 250}.{n % 250 + 1}",
                 "--", "set", "Chassis", name, f'hostname="{hostname}"',
                 f'other_config:ovn-bridge-mappings="{mappings}"']
    sb.sbctl(*args[1:])


def audit_count(api, action: str) -> int:
    async def count(conn):
        return (await conn.execute(text("SELECT count(*) FROM audit_events WHERE action = :a"),
                                   {"a": action})).scalar()
    return api._run(count)


def test_a_fleet_in_one_transaction_is_recorded_like_chassis_one_by_one(api, sb):
    segs = world(api)
    send_report(api, "compute-rest", bridge_mappings=bridges("physnet2"))
    api.clear_events()
    fleet = {f"ch-f{i}": (f"fleet-{i}", "physnet1:br-ex" if i % 2 else "physnet2:br-eth1")
             for i in range(40)}
    fleet["ch-rest"] = ("compute-rest", "physnet1:br-ex")  # a host a REST report made
    add_fleet(sb, fleet)
    p1 = {segs["p1a"], segs["p1b"], segs["overlay"]}
    p2 = {segs["p2"], segs["overlay"]}
    for i in range(40):
        wait_until(lambda: reached(api, f"fleet-{i}") == (p1 if i % 2 else p2), f"fleet-{i}")
    # The REST host keeps its own agent and gains the chassis' physnet.
    wait_until(lambda: reached(api, "compute-rest") == p1 | p2, "the REST host's union")
    agents = api.get("/v2.0/agents?host=compute-rest").json()["agents"]
    assert sorted(a["agent_type"] for a in agents) == ["OVN Controller agent", "Open vSwitch agent"]
    hosts = {h["host"]: h for h in api.get("/v2.0/hosts?limit=100").json()["hosts"]}
    assert {h: hosts[h]["chassis"] for h in hosts} == {
        hostname: name for name, (hostname, _) in fleet.items()}
    # Per host, the events and audit row one chassis' own transaction writes.
    for i in range(40):
        (change,) = host_events(api, f"fleet-{i}")
        assert change["reason"] == "chassis" and set(change["gained"]) == reached(api, f"fleet-{i}")
        assert change["lost"] == [] and change["tunnel_types"] == ["geneve"]
    created = [e.resource["host"] for e in api.events if e.type == "agent.created"]
    assert sorted(created) == sorted(h for h, _ in fleet.values())
    assert audit_count(api, "chassis_update") == 41


def test_a_host_made_during_a_fleet_batch_sends_the_batch_one_by_one(api, sb, monkeypatch,
                                                                     caplog):
    """The batch checks which hosts exist, then inserts the rest; a host created between
    the two (here: one the check is made to miss) fails the insert, and nothing of the
    batch is lost: its chassis are applied one by one."""
    from segmentd.db import chassis as chassis_rows

    caplog.set_level(logging.INFO, logger="segmentd.workers.chassis")
    segs = world(api)
    send_report(api, "compute-late", bridge_mappings=bridges("physnet2"))
    missed = chassis_rows.existing_hosts

    async def blind(conn, names):
        return await missed(conn, [n for n in names if n != "compute-late"])

    monkeypatch.setattr(chassis_rows, "existing_hosts", blind)
    add_fleet(sb, {"ch-l1": ("compute-late", "physnet1:br-ex"),
                   "ch-l2": ("compute-new", "physnet1:br-ex")})
    p1 = {segs["p1a"], segs["p1b"], segs["overlay"]}
    wait_until(lambda: reached(api, "compute-new") == p1, "the new host")
    wait_until(lambda: reached(api, "compute-late") == p1 | {segs["p2"]}, "the late host")
    assert "applying them one by one" in caplog.text
    assert len(api.get("/v2.0/agents?host=compute-new").json()["agents"]) == 1


def test_a_new_segment_reaches_chassis_hosts_and_rest_cannot_pose_as_a_chassis(api, sb):
    add_chassis(sb, "ch-2", "compute-2", "physnet1:br-ex")
    wait_until(lambda: reached(api, "compute-2") == set(), "the chassis host")
    net = make_network(api, name="later")
    seg = make_segment(api, net["id"], network_type="vlan", physical_network="physnet1")
    want = set(segments_of(api, net["id"]))  # the new vlan one and the network's geneve one
    assert seg["id"] in want and reached(api, "compute-2") == want
    body = {"report": {"host": "compute-2", "agent_type": "OVN Controller agent",
                       "binary": "ovn-controller", "configurations": {}}}
    before = api.counts()
    resp = api.post("/v2.0/host-reports", json=body, headers={"X-Roles": "service"})
    assert resp.status_code == 400 and "learned from OVN" in error_of(resp)["message"]
    assert api.counts() == before and reached(api, "compute-2") == want


def test_a_second_chassis_with_the_same_hostname_is_refused_and_reported(api, sb):
    segs = world(api)
    add_chassis(sb, "ch-a", "compute-3", "physnet1:br-ex")
    wait_until(lambda: reached(api, "compute-3"), "the first chassis")
    add_chassis(sb, "ch-b", "compute-3", "physnet2:br-eth1")
    conflicts = wait_until(
        lambda: api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"]["chassis_conflicts"],
        "the conflict reported")
    assert conflicts == [{"chassis": "ch-b", "hostname": "compute-3",
                          "reason": "hostname held by chassis ch-a"}]
    assert segs["p2"] not in reached(api, "compute-3")  # no pull of the other's segments
    (entry,) = api.get("/v2.0/hosts").json()["hosts"]
    assert entry["chassis"] == "ch-a"

    # The holder goes: the second chassis gets the hostname, and the conflict clears.
    sb.sbctl("chassis-del", "ch-a")
    wait_until(lambda: reached(api, "compute-3") == {segs["p2"], segs["overlay"]},
               "the second chassis' reach")
    wait_until(lambda: api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"][
        "chassis_conflicts"] == [], "the conflict cleared")


def test_malformed_chassis_data_is_refused_and_reported(api, sb):
    add_chassis(sb, "ch-bad", "not a hostname!", "physnet1:br-ex")
    add_chassis(sb, "ch-odd", "compute-4", "physnet1")  # no bridge
    conflicts = wait_until(
        lambda: (c := api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"][
            "chassis_conflicts"]) and len(c) == 2 and c, "both refused")
    assert [c["chassis"] for c in conflicts] == ["ch-bad", "ch-odd"]
    assert all(c["reason"].startswith("invalid: ") for c in conflicts)
    assert api.get("/v2.0/hosts").json()["hosts"] == []


def test_a_chassis_host_outlives_the_heartbeat_grace_period(db_url, sb):
    api = chassis_api(db_url, sb, agent_down_time_seconds=5, host_grace_seconds=10,
                      host_sweep_interval_seconds=3600)
    with api.client:
        segs = world(api)
        add_chassis(sb, "ch-5", "compute-5", "physnet1:br-ex")
        want = {segs["p1a"], segs["p1b"], segs["overlay"]}
        wait_until(lambda: reached(api, "compute-5") == want, "the chassis host")
        api.clear_events()
        age_host(api, "compute-5", 3600)  # an hour without any write to the chassis
        assert sweep(api) == 0
        assert reached(api, "compute-5") == want
        assert api.get("/v2.0/hosts").json()["hosts"][0]["alive"] is True
        assert api.get("/v2.0/agents").json()["agents"][0]["alive"] is True
        assert host_events(api, "compute-5") == []


def test_a_southbound_db_restarted_empty_takes_the_reach_away(db_url, tmp_path):
    from tests.ovn.conftest import OvnDatabases

    own = OvnDatabases(tmp_path)
    own.start()
    try:
        api = chassis_api(db_url, own)
        with api.client:
            segs = world(api)
            add_chassis(own, "ch-6", "compute-6", "physnet1:br-ex")
            wait_until(lambda: reached(api, "compute-6") == {segs["p1a"], segs["p1b"],
                                                            segs["overlay"]}, "the reach")
            own.stop()
            own.start(fresh=True)  # no Chassis rows, and so no delete notifications
            wait_until(lambda: reached(api, "compute-6") is None, "the host gone")
            add_chassis(own, "ch-6", "compute-6", "physnet2:br-eth1")
            wait_until(lambda: reached(api, "compute-6") == {segs["p2"], segs["overlay"]},
                       "the reach after the chassis returned")
    finally:
        own.stop()


@pytest.fixture
def pg_url(pg_template):
    yield pg_template
    asyncio.run(_truncate(pg_template))


def test_two_servers_on_one_database_apply_each_chassis_once_and_fail_over(pg_url, sb):
    """Two apps (own engines and event loops, as two processes) on one PostgreSQL and one
    Southbound DB: one watches; every host is written once; when it stops, the other
    takes over within the lease."""
    servers = [chassis_api(pg_url, sb), chassis_api(pg_url, sb)]
    running = []
    try:
        for server in servers:
            server.client.__enter__()
            running.append(server)
        first = servers[0]
        segs = world(first)
        first.clear_events()
        mapping = {i: "physnet1:br-ex" if i % 2 else "physnet2:br-eth1" for i in range(20)}
        for i, mappings in mapping.items():
            add_chassis(sb, f"ch-{i}", f"compute-{i}", mappings)

        def expected(i):
            return ({segs["p1a"], segs["p1b"]} if i % 2 else {segs["p2"]}) | {segs["overlay"]}

        for server in servers:
            for i in mapping:
                wait_until(lambda: reached(server, f"compute-{i}") == expected(i),
                           f"compute-{i} right on both servers")
        changes = [e for e in first.events if e.type == "host.segments_changed"]
        assert sorted(e.resource_id for e in changes) == sorted(f"compute-{i}" for i in mapping)
        assert len(first.get("/v2.0/agents?limit=50").json()["agents"]) == 20

        watching = [s for s in servers if s.client.app.state.chassis_watcher._applied is not None]
        assert len(watching) == 1
        (leader,) = watching
        (other,) = [s for s in servers if s is not leader]
        running.remove(leader)
        leader.client.__exit__(None, None, None)  # the watching server stops

        add_chassis(sb, "ch-late", "compute-late", "physnet1:br-ex")
        sb.sbctl("chassis-del", "ch-0")
        wait_until(lambda: reached(other, "compute-late") == expected(1), "the late chassis",
                   timeout=20)
        wait_until(lambda: reached(other, "compute-0") is None, "ch-0's host gone")
        changes = [e for e in other.events if e.type == "host.segments_changed"]
        assert sorted(e.resource_id for e in changes[20:]) == ["compute-0", "compute-late"]
    finally:
        for server in running:
            server.client.__exit__(None, None, None)


def test_ports_follow_chassis_bridge_mappings(api, sb):
    """Hosts known only from OVN chassis: a port with --host gets its address from the
    subnet of the segment the chassis' bridge mappings reach, and a chassis that drops the
    physnet takes its port DOWN (binding_failed, a port.updated event), and back."""
    net = make_network(api, name="routed", **{"provider:network_type": "vlan",
                                             "provider:physical_network": "physnet1"})
    seg2 = make_segment(api, net["id"], network_type="vlan", physical_network="physnet2")
    (seg1_id,) = [s for s in segments_of(api, net["id"]) if s != seg2["id"]]
    seg1 = {"id": seg1_id}
    subnets = {}
    for seg, cidr in ((seg1, "10.61.0.0/24"), (seg2, "10.62.0.0/24")):
        resp = api.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4, "segment_id": seg["id"]}})
        assert resp.status_code == 201, resp.text
        subnets[seg["id"]] = resp.json()["subnet"]
    add_chassis(sb, "ch-p1", "compute-p1", "physnet1:br-p1")
    add_chassis(sb, "ch-p2", "compute-p2", "physnet2:br-p2")
    wait_until(lambda: reached(api, "compute-p1") == {seg1["id"]} and
               reached(api, "compute-p2") == {seg2["id"]}, "chassis hosts reach their segment")
    ports = {}
    for host, seg in (("compute-p1", seg1), ("compute-p2", seg2)):
        resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                     "binding:host_id": host}})
        assert resp.status_code == 201, resp.text
        port = resp.json()["port"]
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [subnets[seg["id"]]["id"]]
        assert (port["binding:vif_type"], port["status"]) == ("ovs", "ACTIVE")
        ports[host] = port
    resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                 "binding:host_id": "compute-none"}})
    assert (resp.status_code, error_of(resp)["type"]) == (409, "HostNotConnectedToAnySegment")

    api.clear_events()
    set_mappings(sb, "ch-p1", "physnet2:br-p1")  # the chassis moves to the other physnet

    def lost():
        got = api.get(f"/v2.0/ports/{ports['compute-p1']['id']}").json()["port"]
        return got if got["binding:vif_type"] == "binding_failed" else None

    got = wait_until(lost, "the port's binding fails once its host lost the segment")
    assert got["status"] == "DOWN" and got["fixed_ips"] == ports["compute-p1"]["fixed_ips"]
    updates = [e for e in api.events if e.type == "port.updated"]
    assert [e.resource["binding:vif_type"] for e in updates] == ["binding_failed"]
    set_mappings(sb, "ch-p1", "physnet1:br-p1")
    wait_until(lambda: api.get(f"/v2.0/ports/{ports['compute-p1']['id']}").json()["port"][
        "status"] == "ACTIVE", "the port is bound again once its host reaches the segment")
    for port in ports.values():
        assert api.delete(f"/v2.0/ports/{port['id']}").status_code == 204
