"""Fleet benchmark: 5,000 hosts report over HTTP while 500 segments exist.

It starts its own `segmentd serve` (PostgreSQL, 2 workers, token auth, rate limits and
access log off) on a fresh database, then:

1. creates 500 segments: 100 VLAN segments on each of physnet1..4 and 100 geneve ones;
2. creates 200 VLAN segments with no host known (5 rounds, the median; each round's segments are
   deleted again), the fleet-free create rate;
3. sends one report per host with wrk: every host reaches one or two of the four
   physnets, every other host also reports geneve; prints the time until the last report
   is answered and until a sample of hosts' segment lists is checked right, and the
   rows written per table;
4. sends the identical reports again: 0 reach and event rows must be written;
5. creates 200 VLAN segments again, now with 5,000 hosts present (5 rounds), and prints
   the ratio to step 2 (the issue asks for less than 10% difference).

    python3 bench/hosts.py --hosts 5000 --segments 500 --json bench/results/hosts.json
"""
import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrkrun
from benchserver import http, segmentd_server

ROOT = Path(__file__).resolve().parent.parent
PHYSNETS = ("physnet1", "physnet2", "physnet3", "physnet4")
TABLES = ("hosts", "agents", "host_reach", "outbox_events", "audit_events", "segments")
CONFIG = """
access_log = false
rate_limit_per_second = 0
log_level = "warning"
auth_mode = "token"
vlan_ranges = ["physnet1:100:3000", "physnet2:100:3000", "physnet3:100:3000", "physnet4:100:3000"]
tenant_network_types = ["geneve"]
[vni_ranges]
vxlan = ["1:1000"]
geneve = ["1:100000"]
"""


async def counts(db_url):
    conn = await asyncpg.connect(db_url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await conn.close()


async def settle(db_url):
    """VACUUM ANALYZE, so autovacuum catching up after a burst does not skew what follows."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def delta(after, before):
    return {t: after[t] - before[t] for t in TABLES}


def fleet(n_hosts, rng):
    """host -> (physnets, geneve?) : one or two physnets each, every other host geneve."""
    hosts = {}
    for i in range(n_hosts):
        physnets = sorted(rng.sample(PHYSNETS, rng.choice((1, 2))))
        hosts[f"compute-{i:05d}"] = (physnets, i % 2 == 0)
    return hosts


def report_item(host, physnets, geneve):
    body = {"report": {
        "host": host, "agent_type": "Open vSwitch agent", "binary": "neutron-openvswitch-agent",
        "configurations": {"bridge_mappings": {p: f"br-{p}" for p in physnets},
                           "tunnel_types": ["geneve"] if geneve else []}}}
    return "/v2.0/host-reports " + json.dumps(body, separators=(",", ":"))


def phase(name, items, expect, base, token, args):
    res = wrkrun.run_phase(name, "post_json.lua", base, items, expect, token=token,
                           connections=args.connections, threads=args.threads)
    if res.ok != len(items):
        raise SystemExit(f"{name}: {res.ok}/{len(items)} answered {expect}: "
                         f"{res.statuses} {res.error_samples[:3]}")
    return res


def segment_creates(base, admin, nets, args):
    """Median rate of 200-ish VLAN segment creates, each round's segments deleted after."""
    rates = []
    for r in range(args.rounds):
        items = []
        for i in range(args.creates):
            net, physnet = nets[(r * args.creates + i) % len(nets)]
            body = {"segment": {"network_id": net, "network_type": "vlan",
                                "physical_network": physnet}}
            items.append("/v2.0/segments " + json.dumps(body, separators=(",", ":")))
        res = phase("create_segments", items, 201, base, admin, args)
        rates.append(res.ops_per_s)
        for sid in res.ids:
            http("DELETE", f"{base}/v2.0/segments/{sid}", admin)
    return statistics.median(rates), rates


def expected_segments(physnets, geneve, by_physnet, geneve_segments):
    out = set(geneve_segments) if geneve else set()
    for p in physnets:
        out |= by_physnet[p]
    return out


def host_segments(base, token, host):
    found, url = set(), f"{base}/v2.0/hosts/{host}/segments?limit=1000&fields=id"
    while url:
        _, body = http("GET", url, token)
        found |= {s["id"] for s in body["segments"]}
        nxt = [link["href"] for link in body.get("segments_links", []) if link["rel"] == "next"]
        url = nxt[0] if nxt else None
    return found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=5000)
    ap.add_argument("--segments", type=int, default=500)
    ap.add_argument("--creates", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5, help="create rounds each way (median)")
    ap.add_argument("--sample", type=int, default=200, help="hosts whose segments are checked")
    ap.add_argument("--port", type=int, default=9811)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    rng = random.Random(42)
    work = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    tokens = {"admin": ("admin", "admin"), "agent": ("service", "service")}
    with segmentd_server(work, CONFIG, args.pg, args.port, args.workers, tokens,
                         "hosts") as (base, db_url, made, _):
        admin, agent = made["admin"], made["agent"]
        print(f"segmentd: PostgreSQL, {args.workers} workers, token auth, rate limits off, "
              f"port {args.port}; wrk {args.connections} connections", file=sys.stderr)

        # 1. the segments that exist while hosts report
        by_physnet = {p: set() for p in PHYSNETS}
        geneve_segments, nets = set(), []
        per_kind = args.segments // (len(PHYSNETS) + 1)
        for p in PHYSNETS:
            for _ in range(per_kind):
                _, body = http("POST", f"{base}/v2.0/networks", admin, {"network": {
                    "provider:network_type": "vlan", "provider:physical_network": p}})
                nets.append((body["network"]["id"], p))
        _, segs = http("GET", f"{base}/v2.0/segments?limit=1000", admin)
        for s in segs["segments"]:
            by_physnet[s["physical_network"]].add(s["id"])
        for _ in range(args.segments - per_kind * len(PHYSNETS)):
            _, body = http("POST", f"{base}/v2.0/networks", admin,
                           {"network": {"provider:network_type": "geneve"}})
        _, segs = http("GET", f"{base}/v2.0/segments?network_type=geneve&limit=1000", admin)
        geneve_segments = {s["id"] for s in segs["segments"]}

        # 2. segment creates with no host known, after one unmeasured round: the first
        # creates of a fresh server (statement caches, prepared statements) are slower,
        # and the fleet round below never meets a cold server.
        segment_creates(base, admin, nets, argparse.Namespace(**{**vars(args), "rounds": 1}))
        asyncio.run(settle(db_url))
        no_fleet_rate, no_fleet_rates = segment_creates(base, admin, nets, args)

        # 3. every host reports
        hosts = fleet(args.hosts, rng)
        items = [report_item(h, p, g) for h, (p, g) in hosts.items()]
        before = asyncio.run(counts(db_url))
        t0 = time.monotonic()
        first = phase("host_reports", items, 201, base, agent, args)
        answered = time.monotonic() - t0
        sample = rng.sample(sorted(hosts), min(args.sample, len(hosts)))
        # The check is measurement, not convergence: 8 clients, like the reports.
        with ThreadPoolExecutor(args.connections) as pool:
            found = dict(zip(sample, pool.map(lambda h: host_segments(base, admin, h), sample)))
        wrong = [h for h in sample
                 if found[h] != expected_segments(*hosts[h], by_physnet, geneve_segments)]
        converged = time.monotonic() - t0
        first_rows = delta(asyncio.run(counts(db_url)), before)

        # 4. the identical reports again
        before = asyncio.run(counts(db_url))
        second = phase("host_reports_again", items, 201, base, agent, args)
        second_rows = delta(asyncio.run(counts(db_url)), before)

        # 5. segment creates with the fleet present
        asyncio.run(settle(db_url))
        fleet_rate, fleet_rates = segment_creates(base, admin, nets, args)

    pairs = args.hosts and sum(len(expected_segments(*v, by_physnet, geneve_segments))
                               for v in hosts.values())
    print(f"\nfleet: {args.hosts} hosts, {args.segments} segments "
          f"({per_kind} VLAN on each of {len(PHYSNETS)} physnets, "
          f"{len(geneve_segments)} geneve); {pairs} segment-host pairs implied")
    print(f"first reports:  {first.ops_per_s:8.0f} reports/s, p95 {first.p95_ms:.1f} ms; "
          f"all answered in {answered:.2f} s; sample of {len(sample)} hosts checked right "
          f"({len(wrong)} wrong) at {converged:.2f} s")
    print(f"  rows written: {first_rows}")
    print(f"identical reports: {second.ops_per_s:8.0f} reports/s, p95 {second.p95_ms:.1f} ms")
    print(f"  rows written: {second_rows}")
    print(f"segment creates, no hosts:   {no_fleet_rate:7.0f}/s (rounds {[round(r) for r in no_fleet_rates]})")
    print(f"segment creates, {args.hosts} hosts: {fleet_rate:7.0f}/s (rounds {[round(r) for r in fleet_rates]})")
    print(f"ratio with/without fleet: {fleet_rate / no_fleet_rate:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "hosts": args.hosts, "segments": args.segments, "pairs": pairs,
            "first": first.as_dict(), "answered_s": answered, "converged_s": converged,
            "wrong": wrong, "first_rows": first_rows, "second": second.as_dict(),
            "second_rows": second_rows, "creates_no_fleet": no_fleet_rates,
            "creates_fleet": fleet_rates,
        }, indent=2))
    return 1 if wrong or second_rows["host_reach"] or second_rows["outbox_events"] else 0


if __name__ == "__main__":
    sys.exit(main())
