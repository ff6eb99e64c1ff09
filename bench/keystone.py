"""Keystone tokens against segmentd's own, on one server in one run.

Starts a real Keystone (tests/keystone.py: Keystone 30 under gunicorn, one worker, SQLite,
fernet tokens) and `segmentd serve` in Keystone mode on a fresh PostgreSQL database (2
workers, access log off, otherwise defaults), then, in alternating rounds with wrk:

- after an unmeasured warm-up of each, shows (GET /v2.0/networks/ID) and creates (POST /v2.0/networks) with a Keystone token of
  a member, against the same with a segmentd token of the same project and roles: the
  Keystone token is validated once per server process, then served from the cache;
- the uncached validation rate: a second server with token_cache_time = 0, so every request
  asks Keystone, driven by distinct tokens per connection (Python's asyncio client, which
  this benchmark also shows is not the limit at that rate).

Run: .venv/bin/python bench/keystone.py [--shows 4000 --creates 1000 --rounds 4]
(needs wrk, .venv-keystone from scripts/test or scripts/_keystone_venv.sh, PostgreSQL.)
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import wrkrun  # noqa: E402
from benchserver import http, segmentd_server  # noqa: E402

from tests.keystone import SERVICE_PROJECT, KeystoneServer  # noqa: E402

PASSWORD = "bench-" + uuid.uuid4().hex[:8]


def config(keystone: KeystoneServer, cache_time: float | None) -> str:
    cache = f"token_cache_time = {cache_time}\n" if cache_time is not None else ""
    return (
        'access_log = false\nauth_mode = "keystone"\ntenant_network_types = ["geneve"]\n'
        '[vni_ranges]\ngeneve = ["1:16777215"]\n'
        f'[keystone]\nauth_url = "{keystone.url}"\nusername = "segmentd-bench"\n'
        f'password = "{PASSWORD}"\nproject_name = "{SERVICE_PROJECT}"\n{cache}')


def phase(label, script, base, items, expect, token, args):
    return wrkrun.run_phase(label, script, base, items, expect, token=token,
                            connections=args.connections, threads=args.threads)


def show_and_create(args, base, tokens):
    """Alternating rounds: each token kind's shows, then its creates; medians per kind."""
    net = {}
    for kind, token in tokens.items():
        status, body = http("POST", base + "/v2.0/networks", token,
                            {"network": {"name": f"shown-{kind}"}})
        assert status == 201, body
        net[kind] = body["network"]["id"]
    for kind, token in tokens.items():  # unmeasured: fresh processes and database warm up
        phase(f"warm-up {kind}", "get_path.lua", base,
              [f"/v2.0/networks/{net[kind]}"] * (args.shows // 2), 200, token, args)
        phase(f"warm-up {kind}", "create_networks.lua", base,
              [f"w-{kind}-{i}" for i in range(args.creates // 2)], 201, token, args)
    results = {kind: {"show": [], "create": []} for kind in tokens}
    for rnd in range(args.rounds):
        order = list(tokens) if rnd % 2 == 0 else list(reversed(tokens))
        for kind in order:
            show = phase(f"{kind} show", "get_path.lua", base,
                         [f"/v2.0/networks/{net[kind]}"] * args.shows, 200, tokens[kind], args)
            create = phase(f"{kind} create", "create_networks.lua", base,
                           [f"b{rnd}-{kind}-{i}" for i in range(args.creates)], 201,
                           tokens[kind], args)
            for name, res in (("show", show), ("create", create)):
                if res.errors or not res.complete:
                    raise SystemExit(f"{res.phase}: {res.errors} errors {res.statuses} "
                                     f"{res.error_samples[:3]}")
                results[kind][name].append(res)
                print(f"round {rnd + 1} {res.phase:<16} {res.ops_per_s:9.1f} ops/s  "
                      f"p50 {res.p50_ms:6.2f} ms  p95 {res.p95_ms:6.2f} ms", flush=True)
    return results


async def drive(base: str, tokens: list[str], path: str, total: int) -> tuple[float, list[float]]:
    """`total` GETs of `path` over len(tokens) connections, each sending its own token."""
    latencies: list[float] = []
    per = total // len(tokens)

    async def one(token: str):
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for _ in range(per):
                t = time.perf_counter()
                resp = await client.get(path, headers={"X-Auth-Token": token})
                latencies.append(time.perf_counter() - t)
                if resp.status_code != 200:
                    raise SystemExit(f"uncached: {resp.status_code} {resp.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(one(t) for t in tokens))
    return per * len(tokens) / (time.perf_counter() - start), latencies


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shows", type=int, default=4000)
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=4,
                    help="even: each kind goes first as often (the table grows each round)")
    ap.add_argument("--uncached", type=int, default=1200, help="requests of the uncached phase")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--port", type=int, default=9797)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-keystone-"))
    for sub in ("cached", "uncached"):
        (work / sub).mkdir()
    keystone = KeystoneServer(work / "keystone")
    keystone.start()
    try:
        (service,) = keystone.get("/projects", params={"name": SERVICE_PROJECT})["projects"]
        keystone.create_user("segmentd-bench", PASSWORD, project=service["id"], roles=("service",))
        project = keystone.create_project("bench")
        keystone.create_user("bench-member", PASSWORD, project=project)
        issue = lambda: keystone.issue_token("bench-member", PASSWORD, project="bench")[0]  # noqa: E731

        print(f"Keystone 30 on {keystone.url}; segmentd: PostgreSQL, {args.workers} workers, "
              f"{args.connections} connections, {args.rounds} rounds\n", flush=True)
        with segmentd_server(work / "cached", config(keystone, None), args.pg, args.port,
                             args.workers, {"local": (project, "member")}, "ks") as (
                base, _db, made, _proc):
            results = show_and_create(args, base, {"segmentd": made["local"],
                                                   "keystone": issue()})
            ceiling = phase("wrk ceiling: GET /", "get_path.lua", base, ["/"] * args.shows,
                            200, "", args)
        with segmentd_server(work / "uncached", config(keystone, 0), args.pg, args.port + 1,
                             args.workers, {"local": (project, "member")}, "ksu") as (
                base, _db, made, _proc):
            tokens = [issue() for _ in range(args.connections)]
            status, body = http("POST", base + "/v2.0/networks", made["local"],
                                {"network": {"name": "uncached"}})
            path = f"/v2.0/networks/{body['network']['id']}"
            asyncio.run(drive(base, tokens, path, args.connections * 5))  # warm
            rate, lat = asyncio.run(drive(base, tokens, path, args.uncached))
            own_rate, _ = asyncio.run(drive(base, [made["local"]] * args.connections, path,
                                            args.uncached))
    finally:
        keystone.close()

    print("\nmedian of rounds          ops/s   p50 ms   p95 ms")
    med = {}
    for kind, phases in results.items():
        for name, runs in phases.items():
            ops = statistics.median(r.ops_per_s for r in runs)
            med[(kind, name)] = ops
            print(f"{kind:>9} {name:<8} {ops:13.1f} {statistics.median(r.p50_ms for r in runs):8.2f}"
                  f" {statistics.median(r.p95_ms for r in runs):8.2f}")
    for name in ("show", "create"):
        ratio = med[("keystone", name)] / med[("segmentd", name)]
        print(f"{name}: Keystone token / segmentd token = {ratio:.3f} "
              f"({(1 - ratio) * 100:+.1f}% throughput cost)")
    print(f"\nload generator ceiling (wrk, GET / of the same server): {ceiling.ops_per_s:.0f}/s")
    print(f"uncached validation (token_cache_time = 0, every request asks Keystone): "
          f"{rate:.1f} requests/s, p50 {pct(lat, 0.5):.1f} ms, p95 {pct(lat, 0.95):.1f} ms")
    print(f"the same Python client with segmentd tokens on that server: {own_rate:.1f} requests/s "
          f"({own_rate / rate:.1f}x the uncached rate: the client is not the limit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
