"""/v2.0/agents: Neutron's agents API over what host reports recorded."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event
from sqlalchemy.util import await_only

from tests.conftest import build_api
from tests.factories import OVS, SERVICE, bridges, error_of, send_report
from tests.hosts import (
    MEMBER,
    READER,
    SRIOV,
    add_segment,
    agent_row,
    base_network,
    changes,
    host_entry,
    hosts_of,
    reach_keys,
    table_rows,
)

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
AGENT_KEYS = {
    "id", "host", "agent_type", "binary", "alive", "admin_state_up", "description",
    "configurations", "heartbeat_timestamp", "started_at", "created_at", "availability_zone",
    "topic",
}


@pytest.fixture
def two(api):
    """Two agents on compute-1 and one on compute-2."""
    ovs = send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"),
                      tunnel_types=["vxlan"])
    sriov = send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]})
    other = send_report(api, "compute-2", agent_type=OVS, bridge_mappings=bridges("physnet1"))
    api.clear_events()
    return ovs, sriov, other


def unaudited(rows: dict) -> dict:
    """The host tables without the audit trail (refused requests are audited too)."""
    return {table: found for table, found in rows.items() if table != "audit_events"}


class TestShowAndList:
    def test_list_and_show_give_every_agent_with_neutron_attributes(self, api, two):
        ovs, sriov, other = two
        listed = api.get("/v2.0/agents").json()["agents"]
        assert {a["id"] for a in listed} == {ovs["id"], sriov["id"], other["id"]}
        assert all(set(a) == AGENT_KEYS for a in listed)
        shown = api.get(f"/v2.0/agents/{sriov['id']}").json()["agent"]
        assert shown == sriov
        assert shown["configurations"]["device_mappings"] == {"physnet2": ["eth1"]}
        assert (shown["availability_zone"], shown["topic"]) == (None, None)

    def test_filters_fields_and_paging(self, api, two):
        ovs, sriov, other = two
        on_one = api.get("/v2.0/agents?host=compute-1&fields=id&fields=agent_type").json()
        assert sorted(on_one["agents"], key=lambda a: a["agent_type"]) == [
            {"id": sriov["id"], "agent_type": SRIOV}, {"id": ovs["id"], "agent_type": OVS}]
        by_type = api.get(f"/v2.0/agents?agent_type={OVS}").json()["agents"]
        assert {a["host"] for a in by_type} == {"compute-1", "compute-2"}
        first = api.get("/v2.0/agents?limit=2").json()
        link = next(link for link in first["agents_links"] if link["rel"] == "next")
        rest = api.get(link["href"].replace("http://testserver", "")).json()["agents"]
        assert len(first["agents"]) == 2 and len(rest) == 1
        assert {a["id"] for a in first["agents"] + rest} == {ovs["id"], sriov["id"], other["id"]}
        for query, message in (
                ("fields=secret", "['secret'] is invalid attribute for fields"),
                ("configurations=x", "['configurations'] is invalid attribute for filtering")):
            resp = api.get(f"/v2.0/agents?{query}")
            assert resp.status_code == 400
            assert error_of(resp) == {"type": "HTTPBadRequest", "detail": "", "message": message}

    def test_an_unknown_agent_is_404(self, api, two):
        before = unaudited(table_rows(api))
        for agent_id in (ZERO_UUID, "not-a-uuid", "' OR 1=1 --", "x" * 300):
            for method, body in (("GET", None), ("PUT", {"agent": {"description": "x"}}),
                                 ("DELETE", None)):
                resp = api.request(method, f"/v2.0/agents/{agent_id}", json=body)
                assert resp.status_code == 404, (agent_id, method, resp.text)
                assert error_of(resp)["type"] == "AgentNotFound"
        assert unaudited(table_rows(api)) == before


class TestUpdate:
    def test_admin_state_and_description_change_nothing_a_host_reaches(self, api, two):
        ovs, _, _ = two
        reach = reach_keys(api, "compute-1")
        resp = api.put(f"/v2.0/agents/{ovs['id']}",
                       json={"agent": {"admin_state_up": False, "description": "rack 7"}})
        assert resp.status_code == 200, resp.text
        updated = resp.json()["agent"]
        assert (updated["admin_state_up"], updated["description"]) == (False, "rack 7")
        assert api.get(f"/v2.0/agents/{ovs['id']}").json()["agent"] == updated
        events = api.events
        assert [e.type for e in events] == ["agent.updated"]
        assert events[0].resource == updated
        assert reach_keys(api, "compute-1") == reach

        # A later report keeps what the operator set.
        send_report(api, "compute-1", agent_type=OVS,
                    bridge_mappings=bridges("physnet1", "physnet2"))
        shown = api.get(f"/v2.0/agents/{ovs['id']}").json()["agent"]
        assert (shown["admin_state_up"], shown["description"]) == (False, "rack 7")

    def test_null_description_resets_it(self, api, two):
        ovs, _, _ = two
        api.put(f"/v2.0/agents/{ovs['id']}", json={"agent": {"description": "d"}})
        resp = api.put(f"/v2.0/agents/{ovs['id']}", json={"agent": {"description": None}})
        assert resp.status_code == 200 and resp.json()["agent"]["description"] == ""

    def test_an_empty_update_changes_nothing(self, api, two):
        ovs, _, _ = two
        before = unaudited(table_rows(api))
        resp = api.put(f"/v2.0/agents/{ovs['id']}", json={"agent": {}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["agent"] == api.get(f"/v2.0/agents/{ovs['id']}").json()["agent"]
        assert unaudited(table_rows(api)) == before

    def test_read_only_unknown_or_bad_attributes_are_400(self, api, two):
        ovs, _, _ = two
        before = unaudited(table_rows(api))
        for body in ({"host": "compute-9"}, {"configurations": {}}, {"alive": False},
                     {"agent_type": "x"}, {"heartbeat_timestamp": "2020-01-01T00:00:00Z"},
                     {"admin_state_up": "false"}, {"admin_state_up": None},
                     {"description": "d" * 256}, {"description": "a\x00b"}, {"unknown": 1}):
            resp = api.put(f"/v2.0/agents/{ovs['id']}", json={"agent": body})
            assert resp.status_code == 400, (body, resp.text)
            assert error_of(resp)["type"] == "HTTPBadRequest"
        assert unaudited(table_rows(api)) == before


class TestDelete:
    def test_delete_is_204_then_404_with_one_event_each(self, api, two):
        _, sriov, _ = two
        assert api.delete(f"/v2.0/agents/{sriov['id']}").status_code == 204
        assert [e.type for e in api.events] == ["host.segments_changed", "agent.deleted"]
        assert api.get(f"/v2.0/agents/{sriov['id']}").status_code == 404
        again = api.delete(f"/v2.0/agents/{sriov['id']}")
        assert again.status_code == 404 and error_of(again)["type"] == "AgentNotFound"
        assert [e.type for e in api.events] == ["host.segments_changed", "agent.deleted"]
        assert host_entry(api, "compute-1")["physnets"] == ["physnet1"]

    def test_deleting_an_agent_whose_physnets_others_keep_emits_no_reach_event(self, api, two):
        ovs, _, _ = two
        send_report(api, "compute-1", agent_type="Linux bridge agent",
                    interface_mappings={"physnet1": "e"}, tunnel_types=["vxlan"])
        api.clear_events()
        assert api.delete(f"/v2.0/agents/{ovs['id']}").status_code == 204
        assert [e.type for e in api.events] == ["agent.deleted"]


class TestAuthorization:
    """Neutron's agent rules are admin-only and, like every Neutron collection, a caller who
    may not read a resource lists none of it and gets 404 for any one of it."""

    def test_a_non_admin_lists_no_agents_and_finds_none(self, api, two):
        ovs, _, _ = two
        before = unaudited(table_rows(api))
        for headers in (MEMBER, READER, SERVICE):
            listed = api.get("/v2.0/agents", headers=headers)
            assert listed.status_code == 200 and listed.json() == {"agents": []}
            for method, body in (("GET", None), ("PUT", {"agent": {"admin_state_up": False}}),
                                 ("DELETE", None)):
                resp = api.request(method, f"/v2.0/agents/{ovs['id']}", json=body,
                                   headers=headers)
                assert resp.status_code == 404, (headers, method, resp.text)
                assert error_of(resp)["type"] == "AgentNotFound"
        assert unaudited(table_rows(api)) == before
        assert api.get(f"/v2.0/agents/{ovs['id']}").json()["agent"]["admin_state_up"] is True

    @pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
    def test_a_caller_who_may_read_but_not_change_agents_gets_403(self, db_url, tmp_path):
        policy = tmp_path / "policy.yaml"
        policy.write_text('"get_agent": "role:admin or role:reader"\n')
        api = build_api(db_url, policy_file=str(policy))
        with api.client:
            agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
            listed = api.get("/v2.0/agents", headers=READER).json()["agents"]
            assert [a["id"] for a in listed] == [agent["id"]]
            assert api.get(f"/v2.0/agents/{agent['id']}", headers=READER).status_code == 200
            for method, body in (("PUT", {"agent": {"description": "x"}}), ("DELETE", None)):
                resp = api.request(method, f"/v2.0/agents/{agent['id']}", json=body,
                                   headers=READER)
                assert resp.status_code == 403, (method, resp.text)
                assert error_of(resp)["type"] == "PolicyNotAuthorized"
            assert agent_row(api, agent["id"])["description"] == ""


# -- a delete racing another server process on the same host -------------------------------

AGENT_LOOKUP = re.compile(r"\s*SELECT\b.*\bFROM agents\s+WHERE agents\.id\b", re.DOTALL)


def race_delete(api, agent_id, meanwhile) -> int:
    """DELETE the agent through `api`, holding that request right after it looked the agent
    up while `meanwhile(other)` runs to completion on a second app (its own engine and event
    loop, as another server process would be); the DELETE's status."""
    other = build_api(api.db_url)
    engine = api.client.app.state.runtime.engine.sync_engine
    paused, resume = threading.Event(), threading.Event()
    held = False

    async def until_resumed():
        while not resume.is_set():
            await asyncio.sleep(0.005)

    def hold(conn, cursor, statement, params, context, executemany):
        # Waits on the app's event loop, not blocking it: its dispatcher and sweeper go on
        # (frozen mid-transaction, they would hold SQLite's write lock against `other`).
        nonlocal held
        if not held and AGENT_LOOKUP.match(statement):
            held = True
            paused.set()
            await_only(asyncio.wait_for(until_resumed(), 10))

    event.listen(engine, "after_cursor_execute", hold)
    try:
        with other.client, ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(api.delete, f"/v2.0/agents/{agent_id}")
            try:
                assert paused.wait(10), "the DELETE never looked the agent up"
                meanwhile(other)
            finally:
                resume.set()
            return deleting.result(30).status_code
    finally:
        event.remove(engine, "after_cursor_execute", hold)


def test_a_report_committed_while_the_last_agent_is_deleted_survives(api):
    """A new agent reports for the host after the delete read the agent, before it locked
    the host: the host keeps the new agent and what it reports (on MariaDB, a transaction
    whose snapshot predates the lock deleted the host, and the new agent with it)."""
    net = base_network(api)
    seg1 = add_segment(api, net["id"], "vlan", "physnet1")
    seg2 = add_segment(api, net["id"], "vlan", "physnet2")
    old = send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"))
    api.clear_events()
    new = {}

    def report(other):
        new.update(send_report(other, "compute-1", agent_type=SRIOV,
                               device_mappings={"physnet2": ["e1"]}))

    assert race_delete(api, old["id"], report) == 204
    agents = api.get("/v2.0/agents").json()["agents"]
    assert [a["id"] for a in agents] == [new["id"]]
    assert reach_keys(api, "compute-1") == {("flat", "physnet2"), ("vlan", "physnet2")}
    assert hosts_of(api, seg2) == {"compute-1"} and hosts_of(api, seg1) == set()
    deleted = changes(api)[-1]
    assert (deleted["reason"], deleted["lost"], deleted["physnets"]) == (
        "agent_deleted", [seg1], ["physnet2"])


def test_two_deletes_of_one_agent_delete_it_once(api):
    """The second delete, having read the agent before the first committed, is a 404 and
    emits no second agent.deleted."""
    agent = send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"))
    send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]})
    api.clear_events()

    def delete(other):
        assert other.delete(f"/v2.0/agents/{agent['id']}").status_code == 204

    assert race_delete(api, agent["id"], delete) == 404
    assert [e.type for e in api.events] == ["host.segments_changed", "agent.deleted"]
