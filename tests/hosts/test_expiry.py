"""Silent hosts: down after agent_down_time, reaching nothing after host_grace, until they report.

Heartbeats are moved into the past in the database rather than waited for, and the sweeper
is called directly (its own timer is set to an hour so it never runs on its own here).
"""

from __future__ import annotations

import time

import pytest

from segmentd.workers.hosts import sweep_expired
from tests.conftest import build_api
from tests.factories import OVS, bridges, send_report
from tests.hosts import (
    SRIOV,
    add_segment,
    age_agent,
    age_host,
    agent_row,
    audit_outcomes,
    base_network,
    changes,
    host_entry,
    hosts_of,
    reach_keys,
    segments_of,
    sweep,
)

DOWN, GRACE = 5, 10  # the smallest the configuration allows
DOWN_BUT_IN_GRACE = 7
PAST_GRACE = 30


@pytest.fixture
def api(db_url):
    api = build_api(db_url, agent_down_time_seconds=DOWN, host_grace_seconds=GRACE,
                    host_sweep_interval_seconds=3600)
    with api.client:
        yield api


@pytest.fixture
def segs(api) -> dict[str, str]:
    net = base_network(api)
    out = {
        "flat1": add_segment(api, net["id"], "flat", "physnet1"),
        "vlan1": add_segment(api, net["id"], "vlan", "physnet1"),
        "vlan2": add_segment(api, net["id"], "vlan", "physnet2"),
        "vxlan": add_segment(api, net["id"], "vxlan"),
    }
    api.clear_events()
    return out


def ids(segs, *names) -> list[str]:
    return sorted(segs[n] for n in names)


def test_a_down_agent_is_not_alive_but_its_host_still_reaches(api, segs):
    agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
    age_host(api, "compute-1", DOWN_BUT_IN_GRACE)
    assert api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]["alive"] is False
    entry = host_entry(api, "compute-1")
    assert entry["alive"] is False and entry["physnets"] == ["physnet1"]
    assert segments_of(api, "compute-1") == set(ids(segs, "flat1", "vlan1"))
    assert api.get(f"/v2.0/segments/{segs['flat1']}/hosts").json()["hosts"][0]["alive"] is False
    api.clear_events()
    assert sweep(api) == 0 and api.events == []


def test_a_host_past_its_grace_is_hidden_at_once_and_swept_with_one_event(api, segs):
    agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"),
                        tunnel_types=["vxlan"])
    send_report(api, "compute-2", bridge_mappings=bridges("physnet1"))
    api.clear_events()
    age_host(api, "compute-1", PAST_GRACE)

    # Before any sweep the queries already leave the host out ...
    assert hosts_of(api, segs["flat1"]) == {"compute-2"}
    assert hosts_of(api, segs["vxlan"]) == set()
    assert segments_of(api, "compute-1") == set()
    shown = api.get("/v2.0/hosts/compute-1/segments")
    assert shown.status_code == 200 and shown.json() == {"segments": []}
    entry = host_entry(api, "compute-1")
    assert (entry["physnets"], entry["tunnel_types"], entry["segment_count"], entry["alive"]) == (
        [], [], 0, False)
    assert reach_keys(api, "compute-1") != set()  # ... though nothing was written yet

    audited = len(audit_outcomes(api))
    assert sweep(api) == 1
    assert [e.type for e in api.events] == ["host.segments_changed"]
    assert changes(api) == [{
        "host": "compute-1", "reason": "expired", "physnets": [], "tunnel_types": [],
        "gained": [], "lost": ids(segs, "flat1", "vlan1", "vxlan"),
    }]
    assert reach_keys(api, "compute-1") == set()
    assert bool(agent_row(api, agent["id"])["expired"]) is True
    assert api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]["alive"] is False
    assert len(audit_outcomes(api)) == audited  # background work, not a request
    assert hosts_of(api, segs["flat1"]) == {"compute-2"}  # the live host is untouched

    api.clear_events()
    assert sweep(api) == 0 and api.events == []


def test_the_next_report_revives_an_expired_host(api, segs):
    agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
    age_host(api, "compute-1", PAST_GRACE)
    assert sweep(api) == 1
    api.clear_events()
    aged_start = agent_row(api, agent["id"])["started_at"]

    again = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))  # identical

    assert again["id"] == agent["id"] and again["alive"] is True
    assert again["started_at"] == again["heartbeat_timestamp"]  # a restart, as Neutron shows it
    assert agent_row(api, agent["id"])["started_at"] > aged_start
    assert again["created_at"] == agent["created_at"]
    assert [e.type for e in api.events] == ["agent.updated", "host.segments_changed"]
    (change,) = changes(api)
    assert (change["reason"], change["gained"], change["lost"]) == (
        "report", ids(segs, "flat1", "vlan1"), [])
    assert hosts_of(api, segs["vlan1"]) == {"compute-1"}
    assert bool(agent_row(api, agent["id"])["expired"]) is False


def test_a_report_before_the_sweep_revives_without_a_reach_event(api, segs):
    """The stored reach never changed, so there is nothing to announce; the queries show
    the host again at once."""
    agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
    age_host(api, "compute-1", PAST_GRACE)
    assert segments_of(api, "compute-1") == set()
    aged_start = agent_row(api, agent["id"])["started_at"]
    api.clear_events()
    again = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
    assert [e.type for e in api.events] == ["agent.updated"]  # not the quiet heartbeat path
    assert again["started_at"] == again["heartbeat_timestamp"]
    assert agent_row(api, agent["id"])["started_at"] > aged_start
    assert segments_of(api, "compute-1") == set(ids(segs, "flat1", "vlan1"))
    assert sweep(api) == 0


def test_one_silent_agent_expires_alone(api, segs):
    silent = send_report(api, "compute-1", agent_type=OVS,
                         bridge_mappings=bridges("physnet1", "physnet2"))
    send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]},
                tunnel_types=["vxlan"])
    age_agent(api, silent["id"], PAST_GRACE)  # the host itself still hears from SR-IOV
    api.clear_events()

    assert sweep(api) == 1
    assert changes(api) == [{
        "host": "compute-1", "reason": "expired", "physnets": ["physnet2"],
        "tunnel_types": ["vxlan"], "gained": [], "lost": ids(segs, "flat1", "vlan1"),
    }]
    assert segments_of(api, "compute-1") == set(ids(segs, "vlan2", "vxlan"))
    agents = {a["agent_type"]: a for a in api.get("/v2.0/agents").json()["agents"]}
    assert (agents[OVS]["alive"], agents[SRIOV]["alive"]) == (False, True)


def test_a_report_drops_what_only_a_silent_agent_gave(api, segs):
    """Reach is the union over live agents: a report settles it even before the sweep."""
    silent = send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"))
    age_agent(api, silent["id"], PAST_GRACE)
    api.clear_events()
    send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]})
    (change,) = changes(api)
    assert change == {"host": "compute-1", "reason": "report", "physnets": ["physnet2"],
                      "tunnel_types": [], "gained": ids(segs, "vlan2"),
                      "lost": ids(segs, "flat1", "vlan1")}
    api.clear_events()
    assert sweep(api) == 1  # marks the silent agent expired ...
    assert changes(api) == []  # ... but the reach had already been settled


def test_deleting_an_agent_keeps_nothing_from_a_silent_one(api, segs):
    live = send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"))
    silent = send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]})
    age_agent(api, silent["id"], PAST_GRACE)
    api.clear_events()
    assert api.delete(f"/v2.0/agents/{live['id']}").status_code == 204
    (change,) = changes(api)
    assert (change["reason"], change["physnets"], change["lost"]) == (
        "agent_deleted", [], ids(segs, "flat1", "vlan1", "vlan2"))


def test_concurrent_sweeps_expire_a_host_once(api, segs):
    for host in ("compute-1", "compute-2", "compute-3"):
        send_report(api, host, bridge_mappings=bridges("physnet1"))
        age_host(api, host, PAST_GRACE)
    api.clear_events()
    rt = api.client.app.state.runtime

    async def two_sweeps():
        import asyncio

        return await asyncio.gather(
            sweep_expired(rt.engine, rt.clock, rt.dispatcher.wake),
            sweep_expired(rt.engine, rt.clock, rt.dispatcher.wake),
        )

    assert sum(api.client.portal.call(two_sweeps)) == 3
    found = changes(api)
    assert sorted(c["host"] for c in found) == ["compute-1", "compute-2", "compute-3"]
    assert all(c["reason"] == "expired" for c in found)


def test_the_running_sweeper_expires_a_silent_host(db_url):
    """The sweeper create_app starts, on its own timer."""
    api = build_api(db_url, agent_down_time_seconds=DOWN, host_grace_seconds=GRACE,
                    host_sweep_interval_seconds=0.2)
    with api.client:
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        age_host(api, "compute-1", PAST_GRACE)
        api.clear_events()
        deadline = time.monotonic() + 10
        while not changes(api):
            assert time.monotonic() < deadline, "the sweeper never expired the host"
            time.sleep(0.1)
        assert changes(api)[0]["reason"] == "expired"
        assert reach_keys(api, "compute-1") == set()
