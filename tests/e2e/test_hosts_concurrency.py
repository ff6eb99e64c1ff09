"""Two `segmentd serve` processes on one PostgreSQL database taking host reports at once.

Agents of the same hosts report different physnets to both servers while segments are
created on both; then agents are deleted (one of them twice at once) while the others keep
reporting. Afterwards every host reaches exactly the union of its agents' last reports,
every mapping query agrees, and replaying the host.segments_changed events in order
rebuilds that state: no reach lost, none gained twice, no event that changed nothing.
Last, some hosts fall silent and both servers' sweepers race to expire them: each is
expired once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import orjson
import pytest

from tests.e2e.server import E2E_CONFIG, two_servers_on_postgresql

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

HOSTS = [f"cmp-{i}" for i in range(6)]
AGENTS = {  # agent_type: the mapping kind it reports
    "Open vSwitch agent": "bridge_mappings",
    "NIC Switch agent": "device_mappings",
    "Linux bridge agent": "interface_mappings",
}
PHYSNETS = ["physnet1", "physnet2", "pA", "pB", "pC", "pD"]
TUNNELS = ["vxlan", "geneve", "gre"]
REPORTS_PHASE_1 = 6  # per agent, in order, alternating servers
REPORTS_PHASE_2 = 3
ADMIN = {"X-Roles": "admin", "X-Project-Id": "ops"}
SERVICE = {"X-Roles": "service", "X-Project-Id": "agents"}
# Both sweepers run often, so they race for the silent hosts of the last phase.
CONFIG = {**E2E_CONFIG, "host_sweep_interval_seconds": 0.3}
SILENT = HOSTS[:3]


@pytest.fixture
def two_servers(request, tmp_path):
    """(db_url, [server_a, server_b]): one migrated PostgreSQL database, two processes on it."""
    with two_servers_on_postgresql(request, tmp_path, CONFIG) as both:
        yield both


# -- what the rules say ----------------------------------------------------------------------

def keys_of(physnets, tunnels) -> set[tuple[str, str]]:
    """Reach keys: a physnet reaches flat and vlan on it, vxlan/geneve their type, gre nothing."""
    keys = {(t, p) for p in physnets for t in ("flat", "vlan")}
    return keys | {(t, "") for t in tunnels if t in ("vxlan", "geneve")}


def keys_of_configuration(conf: dict) -> set[tuple[str, str]]:
    physnets = set().union(*(conf.get(k, {}) for k in AGENTS.values()))
    return keys_of(physnets, conf.get("tunnel_types", []))


def segment_key(seg: dict) -> tuple[str, str]:
    return seg["network_type"], seg["physical_network"] or ""


def configuration(rng: random.Random, kind: str) -> dict:
    physnets = rng.sample(PHYSNETS, rng.randint(1, 3))
    value = (lambda p: [f"eth-{p}"]) if kind == "device_mappings" else (lambda p: f"if-{p}")
    return {kind: {p: value(p) for p in physnets},
            "tunnel_types": rng.sample(TUNNELS, rng.randint(0, 2))}


def plan_reports(rng: random.Random, kind: str, count: int) -> list[dict]:
    """`count` configurations, one of them repeating its predecessor (a plain heartbeat)."""
    confs = [configuration(rng, kind) for _ in range(count - 1)]
    at = rng.randrange(len(confs))
    return confs[: at + 1] + [confs[at]] + confs[at + 1:]


# -- driving both servers --------------------------------------------------------------------

def run_together(jobs) -> list:
    """Run every job in its own thread, released at once by a barrier."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            return job(client)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def reporter(urls, host, agent_type, confs, first_server):
    def job(client):
        statuses = []
        for i, conf in enumerate(confs):
            body = {"report": {"host": host, "agent_type": agent_type, "binary": "agent",
                               "configurations": conf}}
            url = urls[(first_server + i) % 2]
            resp = client.post(f"{url}/v2.0/host-reports", json=body, headers=SERVICE)
            statuses.append((resp.status_code, resp.text if resp.status_code != 201 else ""))
        return statuses
    return job


def segment_maker(urls, network_id, specs, first_server):
    def job(client):
        made = []
        for i, (network_type, physnet) in enumerate(specs):
            body = {"segment": {"network_id": network_id, "network_type": network_type}}
            if physnet:
                body["segment"]["physical_network"] = physnet
            resp = client.post(f"{urls[(first_server + i) % 2]}/v2.0/segments", json=body,
                               headers=ADMIN)
            made.append((resp.status_code, resp.json()))
        return made
    return job


def deleter(url, agent_id):
    def job(client):
        return client.delete(f"{url}/v2.0/agents/{agent_id}", headers=ADMIN).status_code
    return job


def get_all(url: str, path: str, key: str) -> list[dict]:
    """Every item of a list, following next links with small pages."""
    items, href = [], f"{url}{path}{'&' if '?' in path else '?'}limit=7"
    while href:
        body = httpx.get(href, headers=ADMIN, timeout=30).json()
        items += body[key]
        href = next((link["href"] for link in body.get(f"{key}_links", [])
                     if link["rel"] == "next"), None)
    return items


def silence(db_url: str, hosts: list[str], seconds: int) -> None:
    """Move the hosts' heartbeats `seconds` into the past, as if their agents had died."""

    async def work():
        conn = await asyncpg.connect(db_url)
        try:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE agents SET heartbeat_at = heartbeat_at - make_interval(secs => $2)"
                    " WHERE host = ANY($1)", hosts, seconds)
                await conn.execute(
                    "UPDATE hosts SET reported_at = reported_at - make_interval(secs => $2)"
                    " WHERE name = ANY($1)", hosts, seconds)
        finally:
            await conn.close()

    asyncio.run(work())


def outbox(db_url: str) -> list[tuple[int, dict]]:
    async def fetch():
        conn = await asyncpg.connect(db_url)
        try:
            rows = await conn.fetch("SELECT seq, body FROM outbox_events ORDER BY seq")
            return [(r["seq"], orjson.loads(r["body"])) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(fetch())


# -- the test --------------------------------------------------------------------------------

def test_concurrent_reports_deletes_creates_and_sweeps_across_two_servers(two_servers):
    db_url, servers = two_servers
    urls = [s.base_url for s in servers]
    rng = random.Random(20261122)

    net = httpx.post(f"{urls[0]}/v2.0/networks", headers=ADMIN, json={"network": {
        "name": "hosts", "mtu": 1400, "provider:network_type": "flat",
        "provider:physical_network": "nobody"}}).json()["network"]
    with httpx.Client(timeout=60) as client:
        made = segment_maker(urls, net["id"], [
            ("flat", "pA"), ("flat", "pB"), ("vlan", "physnet1"), ("vlan", "physnet1"),
            ("vlan", "physnet2"), ("vxlan", None), ("vxlan", None), ("geneve", None),
        ], 0)(client)
    assert all(status == 201 for status, _ in made), made
    before = {s["id"] for s in get_all(urls[0], "/v2.0/segments", "segments")}

    # Phase 1: 18 agents on 6 hosts report to both servers; segments are created on both.
    plans = {(h, t): plan_reports(rng, kind, REPORTS_PHASE_1)
             for h in HOSTS for t, kind in AGENTS.items()}
    new_segments = [[("vlan", "physnet1"), ("flat", "pC")], [("vlan", "physnet2"), ("vxlan", None)],
                    [("geneve", None), ("flat", "pD")], [("vlan", "physnet1"), ("geneve", None)]]
    jobs = [reporter(urls, h, t, confs, i % 2) for i, ((h, t), confs) in enumerate(plans.items())]
    jobs += [segment_maker(urls, net["id"], specs, i % 2) for i, specs in enumerate(new_segments)]
    results = run_together(jobs)
    for statuses in results[: len(plans)]:
        assert [s for s, _ in statuses] == [201] * REPORTS_PHASE_1, statuses
    for created in results[len(plans):]:
        assert [s for s, _ in created] == [201, 201], created
    boundary = outbox(db_url)[-1][0]  # every segment exists from here on

    # Phase 2: one agent per host is deleted (one of them by both servers at once) while
    # the host's other agents keep reporting.
    agents = {(a["host"], a["agent_type"]): a for a in get_all(urls[1], "/v2.0/agents", "agents")}
    assert set(agents) == set(plans)
    types = list(AGENTS)
    doomed = {h: types[i % 3] for i, h in enumerate(HOSTS)}
    last = {key: confs[-1] for key, confs in plans.items()}
    jobs = [deleter(urls[i % 2], agents[(h, t)]["id"]) for i, (h, t) in enumerate(doomed.items())]
    twice = agents[(HOSTS[0], doomed[HOSTS[0]])]["id"]
    jobs.append(deleter(urls[1], twice))
    for i, h in enumerate(HOSTS):
        for t, kind in AGENTS.items():
            if t != doomed[h]:
                confs = plan_reports(rng, kind, REPORTS_PHASE_2)
                last[(h, t)] = confs[-1]
                jobs.append(reporter(urls, h, t, confs, i % 2))
    results = run_together(jobs)
    deletes = results[: len(HOSTS) + 1]
    assert sorted(deletes[1:len(HOSTS)]) == [204] * (len(HOSTS) - 1), deletes
    assert sorted([deletes[0], deletes[-1]]) == [204, 404], deletes  # the one deleted twice
    for statuses in results[len(HOSTS) + 1:]:
        assert [s for s, _ in statuses] == [201] * REPORTS_PHASE_2, statuses
    for h, t in doomed.items():
        del last[(h, t)]

    # The stored agents are the last reports of the agents left.
    agents = {(a["host"], a["agent_type"]): a for a in get_all(urls[0], "/v2.0/agents", "agents")}
    assert set(agents) == set(last)
    for key, conf in last.items():
        stored = agents[key]["configurations"]
        assert keys_of_configuration(stored) == keys_of_configuration(conf), key

    # Each host reaches the union of its agents' last reports, by every query, on both servers.
    expected = {h: set().union(*(keys_of_configuration(c) for (host, _), c in last.items()
                                 if host == h)) for h in HOSTS}
    segments = get_all(urls[0], "/v2.0/segments", "segments")
    assert len(segments) == len(before) + 2 * len(new_segments)
    reached = {h: {s["id"] for s in segments if segment_key(s) in expected[h]} for h in HOSTS}
    for url in urls:
        listed = {e["host"]: e for e in get_all(url, "/v2.0/hosts", "hosts")}
        assert set(listed) == set(HOSTS)
        for h in HOSTS:
            physnets = sorted({p for _, p in expected[h] if p})
            tunnels = sorted({t for t, p in expected[h] if not p})
            assert (listed[h]["physnets"], listed[h]["tunnel_types"]) == (physnets, tunnels), h
            assert listed[h]["segment_count"] == len(reached[h]), h
    for i, h in enumerate(HOSTS):
        by_filter = get_all(urls[i % 2], f"/v2.0/segments?host={h}", "segments")
        by_host = get_all(urls[(i + 1) % 2], f"/v2.0/hosts/{h}/segments", "segments")
        assert {s["id"] for s in by_filter} == {s["id"] for s in by_host} == reached[h], h
    for i, seg in enumerate(segments):
        hosts = get_all(urls[i % 2], f"/v2.0/segments/{seg['id']}/hosts", "hosts")
        assert {e["host"] for e in hosts} == {h for h in HOSTS if seg["id"] in reached[h]}, seg

    # Replaying the events per host, in commit order, rebuilds exactly that state.
    events = outbox(db_url)
    by_key = {}
    for s in segments:
        by_key.setdefault(segment_key(s), set()).add(s["id"])
    key_of = {s["id"]: segment_key(s) for s in segments}
    state = {h: (set(), set()) for h in HOSTS}  # (keys, pre-existing segments reached)
    for seq, doc in events:
        if doc["type"] != "host.segments_changed":
            continue
        change = doc["resource"]
        h = change["host"]
        old_keys, old_segs = state[h]
        new_keys = keys_of(change["physnets"], change["tunnel_types"])
        assert new_keys != old_keys, ("an event that changed nothing", seq, change)
        assert change["reason"] in ("report", "agent_deleted"), change
        gained_keys, lost_keys = new_keys - old_keys, old_keys - new_keys
        gained, lost = set(change["gained"]), set(change["lost"])
        assert len(gained) == len(change["gained"]) and len(lost) == len(change["lost"])
        assert all(key_of[s] in gained_keys for s in gained), (seq, change)
        assert all(key_of[s] in lost_keys for s in lost), (seq, change)
        # Segments that existed before any of this are named exactly; after phase 1 all are.
        scope = set(key_of) if seq > boundary else before
        for keys, named in ((gained_keys, gained), (lost_keys, lost)):
            assert set().union(*(by_key.get(k, set()) for k in keys)) & scope == named & scope, (
                seq, change)
        assert not (gained & before & old_segs), ("gained twice", seq, change)
        assert lost & before <= old_segs, ("lost without having it", seq, change)
        state[h] = (new_keys, (old_segs | (gained & before)) - lost)
    for h in HOSTS:
        keys, segs = state[h]
        assert keys == expected[h], h
        assert segs == reached[h] & before, h

    agent_events = [doc["type"] for _, doc in events if doc["type"].startswith("agent.")]
    assert agent_events.count("agent.created") == len(plans)
    assert agent_events.count("agent.deleted") == len(HOSTS)  # not 7: one delete was a 404

    # Phase 3: three hosts fall silent; both sweepers find them, each is expired once.
    after = events[-1][0]
    silence(db_url, SILENT, 3600)

    def expiries():
        return [doc["resource"] for seq, doc in outbox(db_url)
                if seq > after and doc["type"] == "host.segments_changed"]

    deadline = time.monotonic() + 15
    while len(expiries()) < len(SILENT):
        assert time.monotonic() < deadline, expiries()
        time.sleep(0.2)
    time.sleep(1.0)  # a few more rounds of both sweepers: still one event per host
    found = expiries()
    assert sorted(c["host"] for c in found) == SILENT, found
    for change in found:
        assert change == {"host": change["host"], "reason": "expired", "physnets": [],
                          "tunnel_types": [], "gained": [],
                          "lost": sorted(reached[change["host"]])}, change
    for url in urls:
        listed = {e["host"]: e for e in get_all(url, "/v2.0/hosts", "hosts")}
        for h in HOSTS:
            assert listed[h]["segment_count"] == (0 if h in SILENT else len(reached[h])), h
    for server in servers:
        assert "Traceback" not in server.log(), server.log()
