"""POST /v2.0/host-reports: what a report records, what it refuses, and who may send it."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, text

from segmentd import constants as c
from segmentd.config import Settings
from segmentd.context import RequestContext
from segmentd.db.engine import make_engine
from segmentd.services import hosts as hosts_service
from segmentd.services.clock import HostClock
from segmentd.services.uow import unit_of_work
from tests.factories import (
    OVS,
    SERVICE,
    bridges,
    error_of,
    issue_token,
    report_body,
    send_report,
)
from tests.hosts import (
    ADMIN,
    HOST_TABLES,
    MEMBER,
    READER,
    SRIOV,
    add_segment,
    age_host,
    agent_row,
    audit_outcomes,
    base_network,
    changes,
    host_entry,
    reach_keys,
    segments_of,
    sweep,
    table_rows,
)
from tests.security.support import auth, segmentd, token_api

AGENT_KEYS = {
    "id", "host", "agent_type", "binary", "alive", "admin_state_up", "description",
    "configurations", "heartbeat_timestamp", "started_at", "created_at", "availability_zone",
    "topic",
}
HEARTBEAT_COLUMNS = ("heartbeat_at", "reported_at")


def assert_refused_writing_nothing(api, resp, before, status: int, error_type: str):
    """A refused report: a NeutronError, and no row anywhere but its own audit row."""
    assert resp.status_code == status, resp.text
    assert error_of(resp)["type"] == error_type, resp.text
    after = table_rows(api)
    for table in HOST_TABLES:
        if table != "audit_events":
            assert after[table] == before[table], table
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1
    assert audit_outcomes(api)[-1] == ("rejected" if status == 400 else "denied", status)


class TestReportRecorded:
    def test_first_report_creates_the_agent_and_one_reach_event(self, api):
        net = base_network(api)
        vlan = add_segment(api, net["id"], "vlan", "physnet1")
        vxlan = add_segment(api, net["id"], "vxlan")
        add_segment(api, net["id"], "vlan", "physnet2")
        api.clear_events()

        agent = send_report(api, "compute-1", bridge_mappings={"physnet1": "br-ex"},
                            tunnel_types=["vxlan"])

        assert set(agent) == AGENT_KEYS
        assert (agent["host"], agent["agent_type"], agent["binary"]) == (
            "compute-1", OVS, "neutron-openvswitch-agent")
        assert agent["alive"] is True and agent["admin_state_up"] is True
        assert agent["description"] == ""
        assert agent["configurations"] == {
            "bridge_mappings": {"physnet1": "br-ex"}, "interface_mappings": {},
            "device_mappings": {}, "tunnel_types": ["vxlan"],
        }
        assert agent["heartbeat_timestamp"] == agent["started_at"] == agent["created_at"]
        events = api.events
        assert [e.type for e in events] == ["agent.created", "host.segments_changed"]
        assert events[0].resource == agent and events[0].resource_id == agent["id"]
        assert events[1].resource_id == "compute-1"
        assert events[1].resource == {
            "host": "compute-1", "reason": "report", "physnets": ["physnet1"],
            "tunnel_types": ["vxlan"], "gained": sorted([vlan, vxlan]), "lost": [],
        }
        assert reach_keys(api, "compute-1") == {
            ("flat", "physnet1"), ("vlan", "physnet1"), ("vxlan", "")}

    def test_a_changed_report_updates_the_same_agent(self, api):
        first = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        api.clear_events()
        second = send_report(api, "compute-1", bridge_mappings=bridges("physnet2"))
        assert second["id"] == first["id"] and second["created_at"] == first["created_at"]
        assert second["configurations"]["bridge_mappings"] == bridges("physnet2")
        assert [e.type for e in api.events] == ["agent.updated", "host.segments_changed"]
        (listed,) = api.get("/v2.0/agents").json()["agents"]
        assert listed["configurations"] == second["configurations"]

    def test_an_identical_report_writes_only_the_heartbeat(self, api):
        net = base_network(api)
        add_segment(api, net["id"], "vlan", "physnet1")
        agent = send_report(api, "compute-1", bridge_mappings={"physnet1": "br-ex"},
                            device_mappings={"physnet2": ["eth1", "eth2"]},
                            tunnel_types=["vxlan", "geneve"])
        age_host(api, "compute-1", 3)  # so a new heartbeat is visibly newer
        before = table_rows(api, without=HEARTBEAT_COLUMNS)
        old = agent_row(api, agent["id"])["heartbeat_at"]
        api.clear_events()

        # The same meaning, spelled differently: key order, tunnel order, empty kinds given.
        again = send_report(api, "compute-1", tunnel_types=["geneve", "vxlan"],
                            interface_mappings={}, device_mappings={"physnet2": ["eth1", "eth2"]},
                            bridge_mappings={"physnet1": "br-ex"})

        assert table_rows(api, without=HEARTBEAT_COLUMNS) == before  # no reach, event, audit row
        assert api.events == []
        new = agent_row(api, agent["id"])["heartbeat_at"]
        assert new > old
        assert again["heartbeat_timestamp"] == new.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert host_entry(api, "compute-1")["reported_at"] == again["heartbeat_timestamp"]

    def test_a_new_binary_is_a_change_of_the_agent_but_not_of_the_reach(self, api):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        api.clear_events()
        resp = api.post("/v2.0/host-reports", headers=SERVICE, json=report_body(
            "compute-1", binary="neutron-openvswitch-agent-2", bridge_mappings=bridges("physnet1")))
        assert resp.status_code == 201
        assert [e.type for e in api.events] == ["agent.updated"]

    def test_adding_gre_changes_the_agent_but_reaches_nothing_new(self, api):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        keys = reach_keys(api, "compute-1")
        api.clear_events()
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"), tunnel_types=["gre"])
        assert [e.type for e in api.events] == ["agent.updated"]
        assert reach_keys(api, "compute-1") == keys
        assert host_entry(api, "compute-1")["tunnel_types"] == []

    def test_the_limits_themselves_are_accepted(self, api):
        """256 mappings, 64-character physnets, 64 devices, a 255-character host."""
        host = "h" * 255
        many = {f"p{i:03d}" + "x" * 60: f"br{i}" for i in range(256)}
        assert all(len(p) == 64 for p in many)
        agent = send_report(api, host, bridge_mappings=many,
                            device_mappings={"sriov": [f"eth{i}" for i in range(64)]},
                            tunnel_types=["vxlan", "geneve", "gre"])
        assert agent["host"] == host
        entry = host_entry(api, host)
        assert len(entry["physnets"]) == 257 and entry["tunnel_types"] == ["geneve", "vxlan"]
        assert len(reach_keys(api, host)) == 2 * 257 + 2


# -- what one host's reports may store -----------------------------------------------------

class TestWhatAHostMayStore:
    """A host's credential can only store a bounded amount: at most HOST_MAX_AGENTS agents,
    each with configurations of at most REPORT_MAX_CONFIGURATION_BYTES."""

    def test_a_host_has_at_most_the_limit_of_agents(self, api):
        agents = [send_report(api, "compute-1", agent_type=f"agent type {i}",
                              bridge_mappings=bridges("p"))
                  for i in range(c.HOST_MAX_AGENTS)]
        before = table_rows(api)
        resp = _post_raw(api, report_body("compute-1", agent_type="one agent too many",
                                          bridge_mappings=bridges("p")))
        assert resp.status_code == 409, resp.text
        assert error_of(resp) == {
            "type": "TooManyAgents", "detail": "",
            "message": f"Host compute-1 has {c.HOST_MAX_AGENTS} agents, as many as a host "
                       "may have; delete one first."}
        after = table_rows(api)
        for table in ("hosts", "agents", "host_reach", "outbox_events"):
            assert after[table] == before[table], table
        assert audit_outcomes(api)[-1] == ("rejected", 409)
        # Agents already there still report, and another host is not affected.
        send_report(api, "compute-1", agent_type="agent type 0", bridge_mappings=bridges("p", "q"))
        send_report(api, "compute-2", agent_type="one agent too many", bridge_mappings=bridges("p"))
        # Deleting one makes room.
        assert api.delete(f"/v2.0/agents/{agents[-1]['id']}", headers=ADMIN).status_code == 204
        send_report(api, "compute-1", agent_type="one agent too many", bridge_mappings=bridges("p"))

    def test_changing_reports_are_limited_per_host_heartbeats_never(self, api):
        """At the defaults a host may change what it reports 20 times at once, then 2 a
        minute: a credential flipping between two configurations stops being stored (429,
        nothing written); its heartbeats and other hosts are served all the while."""
        burst = Settings.model_fields["host_report_changes_burst"].default
        per_second = Settings.model_fields["host_report_changes_per_minute"].default / 60
        started, accepted = time.monotonic(), 0
        for _ in range(3 * burst):
            before = table_rows(api, without=("heartbeat_at", "reported_at"))
            resp = _post_raw(api, report_body("compute-1",
                                              bridge_mappings=bridges(f"p{accepted % 2}")))
            if resp.status_code != 201:
                break
            accepted += 1
        # The budget refills while the reports are sent: at most `per_second` more a second.
        assert burst <= accepted <= burst + int((time.monotonic() - started) * per_second) + 1
        assert resp.status_code == 429, resp.text
        assert error_of(resp)["type"] == "OverLimit"
        assert resp.headers["retry-after"].isdigit()
        after = table_rows(api, without=("heartbeat_at", "reported_at"))
        for table in HOST_TABLES:
            assert after[table] == before[table], table
        send_report(api, "compute-1", bridge_mappings=bridges(f"p{(accepted - 1) % 2}"))
        send_report(api, "compute-2", bridge_mappings=bridges("p0"))  # another host

    @pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
    def test_configurations_over_the_limit_are_400_and_write_nothing(self, api):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet2"))
        before = table_rows(api)
        devices = {f"p{i:03d}": [f"{i:03d}" + "d" * 60 for _ in range(12)] for i in range(100)}
        resp = _post_raw(api, report_body("compute-1", device_mappings=devices))
        assert_refused_writing_nothing(api, resp, before, 400, "InvalidInput")
        assert re.fullmatch(
            r"Invalid input for operation: configurations of \d+ bytes exceed the limit of "
            f"{c.REPORT_MAX_CONFIGURATION_BYTES}.", error_of(resp)["message"])

    def test_a_host_at_its_limits_gains_and_loses_its_whole_reach(self, api):
        """HOST_MAX_AGENTS agents of 768 physnets each (about 24,000 reach keys, far more
        bound parameters than one statement may carry): all written, then lost by a report
        that drops an agent's mappings and by the sweeper once the host goes silent."""
        net = base_network(api)
        seg = add_segment(api, net["id"], "vlan", "physnet1")

        def mappings(n: int) -> dict:
            return {"bridge_mappings": {f"b{n}x{i}": "br" for i in range(255)},
                    "interface_mappings": {f"i{n}x{i}": "eth0" for i in range(256)},
                    "device_mappings": {f"d{n}x{i}": ["eth1"] for i in range(256)}}

        for n in range(c.HOST_MAX_AGENTS):
            conf = mappings(n)
            if n == 0:
                conf["bridge_mappings"]["physnet1"] = "br-ex"
            send_report(api, "compute-1", agent_type=f"agent type {n}", **conf)
        assert len(reach_keys(api, "compute-1")) > 20_000
        assert seg in segments_of(api, "compute-1")
        send_report(api, "compute-1", agent_type="agent type 0", bridge_mappings={})
        assert seg not in segments_of(api, "compute-1")
        assert not any(p.startswith(("b0x", "i0x", "d0x")) for _, p in reach_keys(api, "compute-1"))
        age_host(api, "compute-1", 10 * 86_400)
        assert sweep(api) == 1
        assert reach_keys(api, "compute-1") == set()


# -- validation ------------------------------------------------------------------------------

OK_CONF = {"bridge_mappings": {"physnet1": "br-ex"}}


def _report(**overrides):
    """A valid report of compute-1 with `overrides` (a key set to _MISSING left out)."""
    report = report_body("compute-1", **OK_CONF)["report"]
    for key, value in overrides.items():
        if value is _MISSING:
            report.pop(key)
        else:
            report[key] = value
    return {"report": report}


def _conf(**kinds):
    return _report(configurations={key: value for key, value in kinds.items()})


_MISSING = object()
BAD_REPORTS = {
    # host names
    "host_empty": _report(host=""),
    "host_with_space": _report(host="compute 1"),
    "host_leading_dash": _report(host="-compute"),
    "host_trailing_dot": _report(host="compute."),
    "host_with_slash": _report(host="compute/1"),
    "host_with_colon": _report(host="compute:1"),
    "host_sql": _report(host="x' OR '1'='1"),
    "host_nul": _report(host="compute\x001"),
    "host_newline": _report(host="compute-1\n"),
    "host_non_ascii": _report(host="compüte"),
    "host_256_chars": _report(host="h" * 256),
    "host_number": _report(host=7),
    "host_null": _report(host=None),
    # physnets
    "physnet_colon": _conf(bridge_mappings={"phys:net": "br"}),
    "physnet_comma": _conf(interface_mappings={"phys,net": "eth1"}),
    "physnet_spaces": _conf(bridge_mappings={" physnet1": "br"}),
    "physnet_empty": _conf(bridge_mappings={"": "br"}),
    "physnet_65_chars": _conf(bridge_mappings={"p" * 65: "br"}),
    "physnet_control": _conf(device_mappings={"phys\tnet": ["eth1"]}),
    # sizes and counts
    "257_bridge_mappings": _conf(bridge_mappings={f"p{i}": "br" for i in range(257)}),
    "257_interface_mappings": _conf(interface_mappings={f"p{i}": "eth" for i in range(257)}),
    "257_device_mappings": _conf(device_mappings={f"p{i}": ["eth"] for i in range(257)}),
    "65_devices": _conf(device_mappings={"p": [f"eth{i}" for i in range(65)]}),
    "bridge_256_chars": _conf(bridge_mappings={"p": "b" * 256}),
    "bridge_empty": _conf(bridge_mappings={"p": ""}),
    # tunnel types
    "tunnel_unknown": _conf(tunnel_types=["ipip"]),
    "tunnel_upper_case": _conf(tunnel_types=["VXLAN"]),
    "tunnel_duplicate": _conf(tunnel_types=["vxlan", "vxlan"]),
    "tunnel_as_string": _conf(tunnel_types="vxlan"),
    "tunnel_four": _conf(tunnel_types=["vxlan", "geneve", "gre", "vxlan"]),
    "tunnel_number": _conf(tunnel_types=[4789]),
    # extra keys
    "extra_report_key": _report(topic="N/A"),
    "extra_configurations_key": _conf(bridge_mappings={}, l2_population=True),
    # wrong types
    "configurations_list": _report(configurations=[]),
    "configurations_null": _report(configurations=None),
    "bridge_mappings_list": _conf(bridge_mappings=[["physnet1", "br"]]),
    "bridge_value_number": _conf(bridge_mappings={"p": 1}),
    "device_value_string": _conf(device_mappings={"p": "eth1"}),
    "agent_type_number": _report(agent_type=1),
    "agent_type_empty": _report(agent_type=""),
    "agent_type_256_chars": _report(agent_type="a" * 256),
    "binary_empty": _report(binary=""),
    "binary_bool": _report(binary=True),
    # missing fields
    "no_host": _report(host=_MISSING),
    "no_agent_type": _report(agent_type=_MISSING),
    "no_binary": _report(binary=_MISSING),
    "no_configurations": _report(configurations=_MISSING),
    # the envelope
    "no_envelope": _report()["report"],
    "two_envelope_keys": {**_report(), "agent": {}},
    "report_is_a_list": {"report": [_report()["report"]]},
}


def _post_raw(api, body):
    return api.post("/v2.0/host-reports", json=body, headers=SERVICE)


class TestReportValidation:
    @pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
    @pytest.mark.parametrize("name", sorted(BAD_REPORTS))
    def test_bad_report_is_400_and_writes_nothing(self, api, name):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet2"))  # a prior state
        before = table_rows(api)
        resp = _post_raw(api, BAD_REPORTS[name])
        assert_refused_writing_nothing(api, resp, before, 400, "HTTPBadRequest")

    def test_every_bad_report_is_refused_whole_on_every_database(self, api):
        """The same table on each database: a refused report moves not even the heartbeat."""
        agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet2"))
        age_host(api, "compute-1", 3)
        before = table_rows(api)
        for name, body in BAD_REPORTS.items():
            resp = _post_raw(api, body)
            assert resp.status_code == 400, (name, resp.text)
            assert error_of(resp)["type"] == "HTTPBadRequest", (name, resp.text)
        after = table_rows(api)
        for table in ("hosts", "agents", "host_reach", "outbox_events"):
            assert after[table] == before[table], table
        assert audit_outcomes(api)[-len(BAD_REPORTS):] == (
            [("rejected", 400)] * len(BAD_REPORTS))
        (listed,) = api.get("/v2.0/agents").json()["agents"]
        assert listed["id"] == agent["id"]
        assert listed["configurations"]["bridge_mappings"] == bridges("physnet2")

    @pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
    @pytest.mark.parametrize("raw", [b"", b"{", b'{"report": {"host": "a"', b"[]", b"null"])
    def test_a_body_that_is_not_a_report_object_is_400(self, api, raw):
        before = table_rows(api)
        resp = api.post("/v2.0/host-reports", content=raw,
                        headers={**SERVICE, "Content-Type": "application/json"})
        # No JSON at all is malformed; JSON that is no report object lacks its envelope.
        error_type = "HTTPBadRequest" if raw in (b"[]", b"null") else "MalformedRequestBody"
        assert_refused_writing_nothing(api, resp, before, 400, error_type)


# -- authorization ---------------------------------------------------------------------------

class TestReportAuthorization:
    @pytest.mark.parametrize("headers", [MEMBER, READER, ADMIN, {"X-Roles": "", "X-Project-Id": "p"}],
                             ids=["member", "reader", "admin_without_service", "no_role"])
    def test_only_the_service_role_may_report(self, api, headers):
        before = table_rows(api)
        resp = api.post("/v2.0/host-reports", json=report_body("compute-1", **OK_CONF),
                        headers=headers)
        assert_refused_writing_nothing(api, resp, before, 403, "PolicyNotAuthorized")

    def test_a_host_bound_caller_may_not_report_for_another_host(self, api):
        send_report(api, "compute-2", bridge_mappings=bridges("physnet2"))
        before = table_rows(api)
        resp = api.post("/v2.0/host-reports", json=report_body("compute-2", **OK_CONF),
                        headers={**SERVICE, "X-Host": "compute-1"})
        assert_refused_writing_nothing(api, resp, before, 403, "HostReportNotAllowed")
        assert "compute-1" in error_of(resp)["message"] and "compute-2" in error_of(resp)["message"]
        assert reach_keys(api, "compute-2") == {("flat", "physnet2"), ("vlan", "physnet2")}

    def test_a_host_bound_caller_reports_for_its_own_host(self, api):
        agent = send_report(api, "compute-1", headers={**SERVICE, "X-Host": "compute-1"},
                            **OK_CONF)
        assert agent["host"] == "compute-1"

    def test_an_unbound_service_caller_reports_for_any_host(self, api):
        for host in ("compute-1", "compute-2", "network-1"):
            send_report(api, host, **OK_CONF)
        listed = api.get("/v2.0/agents?fields=host").json()["agents"]
        assert sorted(a["host"] for a in listed) == ["compute-1", "compute-2", "network-1"]

    def test_admin_with_the_service_role_may_report(self, api):
        send_report(api, "compute-1", headers={"X-Roles": "admin,service", "X-Project-Id": "o"},
                    **OK_CONF)


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"], indirect=True)
def test_token_mode_a_host_bound_token_is_refused_for_another_host(db_url):
    """Real tokens: `segmentd token create --host` binds the token, whatever headers say."""
    out = segmentd("token", "create", "--project", "agents", "--roles", "service",
                   "--host", "compute-1", "--name", "agent-compute-1", db_url=db_url)
    assert out.returncode == 0, out.stderr
    bound = out.stdout.strip()
    api = token_api(db_url)
    with api.client:
        unbound, _ = issue_token(api, "agents", ["service"], name="agents-any")
        admin, _ = issue_token(api, "ops", ["admin"], name="ops-admin")
        member, _ = issue_token(api, "p1", ["member", "reader"], name="p1-member")
        body = report_body("compute-1", **OK_CONF)

        assert api.post("/v2.0/host-reports", json=body, headers=auth(bound)).status_code == 201
        before = table_rows(api)
        # The X-Host header means nothing in token mode: the binding comes from the token.
        other = api.post("/v2.0/host-reports", json=report_body("compute-2", **OK_CONF),
                         headers={**auth(bound), "X-Host": "compute-2"})
        assert_refused_writing_nothing(api, other, before, 403, "HostReportNotAllowed")
        for secret in (admin, member):
            refused = api.post("/v2.0/host-reports", json=body, headers=auth(secret))
            assert refused.status_code == 403, refused.text
            assert error_of(refused)["type"] == "PolicyNotAuthorized"
        assert api.post("/v2.0/host-reports", json=body).status_code == 401

        made = api.post("/v2.0/host-reports",
                        json=report_body("compute-2", agent_type=SRIOV, **OK_CONF),
                        headers=auth(unbound))
        assert made.status_code == 201, made.text
        agents = api.get("/v2.0/agents", headers=auth(admin)).json()["agents"]
        assert sorted(a["host"] for a in agents) == ["compute-1", "compute-2"]


# -- concurrency inside one process ----------------------------------------------------------

def test_concurrent_first_reports_for_new_hosts_all_succeed(api):
    """Agents of brand-new hosts reporting at once: no deadlock, one host row, the full union."""
    agent_types = ("a0", "a1", "a2")
    for round_ in range(3):
        hosts = [f"new-{round_}-a", f"new-{round_}-b"]
        work = [(h, t) for h in hosts for t in agent_types]
        barrier = threading.Barrier(len(work))

        def post(item, barrier=barrier):
            host, agent_type = item
            body = report_body(host, agent_type=agent_type,
                               bridge_mappings=bridges(f"phys-{agent_type}"))
            barrier.wait()
            return api.post("/v2.0/host-reports", json=body, headers=SERVICE)

        with ThreadPoolExecutor(len(work)) as pool:
            responses = list(pool.map(post, work))
        assert [r.status_code for r in responses] == [201] * len(work), [
            r.text for r in responses if r.status_code != 201]
        for host in hosts:
            assert host_entry(api, host)["physnets"] == [f"phys-{t}" for t in agent_types]
            events = changes(api, host)
            assert len(events) == len(agent_types)  # each report grew the reach once
            assert events[-1]["physnets"] == [f"phys-{t}" for t in agent_types]
        api.clear_events()
    assert len(api.get("/v2.0/hosts").json()["hosts"]) == 6
    assert len(api.get("/v2.0/agents").json()["agents"]) == 18


PAUSE_SECONDS = 1.0  # how long the first report waits for the second at the interleaving point
HOSTS_WRITE = re.compile(r"\s*(UPDATE|INSERT(\s+IGNORE)?\s+INTO)\s+hosts\b", re.IGNORECASE)


def _report_paused_after_the_host_lock(db_url, host, agent_type, barrier, outcome, index):
    """Apply one report on its own engine and loop, pausing after its first statement on
    the hosts table until the other report got there too (or PAUSE_SECONDS passed)."""

    async def run():
        engine = make_engine(db_url)
        paused = False

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def pause(conn, cursor, statement, params, context, executemany):
            nonlocal paused
            if not paused and HOSTS_WRITE.match(statement):
                paused = True
                try:
                    barrier.wait(PAUSE_SECONDS)
                except threading.BrokenBarrierError:
                    pass  # the other report is blocked behind our lock: that is fine

        ctx = RequestContext.build("agents", {"service"}, request_id=f"req-{index}")
        report = {"host": host, "agent_type": agent_type, "binary": "b",
                  "configurations": {"bridge_mappings": bridges(f"phys-{agent_type}")}}
        try:
            async with unit_of_work(engine) as uow:
                await hosts_service.apply_report(ctx, uow, HostClock(75, 300), report)
            outcome[index] = "ok"
        except Exception as exc:  # noqa: BLE001 (the outcome is what the test asserts)
            outcome[index] = f"{type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("db_kind", ["postgresql", "mariadb"], indirect=True)
@pytest.mark.parametrize("hosts", [("fresh-1", "fresh-1"), ("fresh-a", "fresh-b")],
                         ids=["same_new_host", "two_new_hosts"])
def test_first_reports_interleaved_at_the_host_lock_do_not_deadlock(db_url, hosts):
    """Both reports pass their host-lock statement before either goes on: on InnoDB an
    UPDATE that misses takes a gap lock, and two such transactions then deadlock on the
    INSERT that follows. Every report must still succeed."""
    barrier = threading.Barrier(2)
    outcome = [None, None]
    threads = [
        threading.Thread(target=_report_paused_after_the_host_lock,
                         args=(db_url, hosts[i], f"a{i}", barrier, outcome, i))
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcome == ["ok", "ok"], outcome

    async def read():
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                names = [r[0] for r in await conn.execute(text("SELECT name FROM hosts"))]
                agents = (await conn.execute(text("SELECT count(*) FROM agents"))).scalar()
                reach = (await conn.execute(text("SELECT count(*) FROM host_reach"))).scalar()
                return sorted(names), agents, reach
        finally:
            await engine.dispose()

    assert asyncio.run(read()) == (sorted(set(hosts)), 2, 4)
