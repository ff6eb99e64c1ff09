"""Fixed networks/segments workload, driven by wrk, against any Neutron-compatible /v2.0 API."""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import wrkrun

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "bench-net-"


def http(method, url, token="", timeout=30):
    """One stdlib HTTP request; returns (status, parsed JSON body or None)."""
    req = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
            return resp.status, (json.loads(data) if data else None)
    except urllib.error.HTTPError as exc:
        return exc.code, None


def walk(base, collection, token="", limit=500, max_pages=10000):
    """GET /v2.0/<collection>?limit=N following <collection>_links rel=next: (items, pages)."""
    url, items = f"{base}/v2.0/{collection}?limit={limit}", []
    for page in range(1, max_pages + 1):
        status, body = http("GET", url, token)
        if status != 200 or body is None:
            raise RuntimeError(f"GET {url} -> {status}")
        items.extend(body.get(collection, []))
        nxt = [link["href"] for link in body.get(f"{collection}_links", [])
               if link.get("rel") == "next"]
        if not nxt:
            return items, page
        url = base + nxt[0][nxt[0].find("/v2.0/"):]
    raise RuntimeError(f"{collection}: more than {max_pages} pages")


def cleanup(base, token=""):
    """Delete every network whose name starts with bench-net- (left over by an aborted run)."""
    nets = [n for n in walk(base, "networks", token)[0] if (n.get("name") or "").startswith(PREFIX)]
    for net in nets:
        http("DELETE", f"{base}/v2.0/networks/{net['id']}", token)
    return len(nets)


def round_robin(ids, count):
    """count items cycling over ids (empty if ids is empty)."""
    return [ids[i % len(ids)] for i in range(count)] if ids else []


def run_workload(base, args, token=""):
    """Run the seven phases in order against base; return the PhaseResults."""
    runid = uuid.uuid4().hex[:8]
    opts = dict(token=token, connections=args.connections, threads=args.threads,
                timeout_s=args.timeout, phase_timeout_s=args.phase_timeout)

    def phase(name, script, items, expect):
        print(f"  {name}: {len(items)} requests ...", file=sys.stderr, flush=True)
        res = wrkrun.run_phase(name, script, base, items, expect, **opts)
        if res.statuses.get(expect, 0) != len(res.ids) and name.startswith("create"):
            print(f"  warning: {name}: {res.statuses.get(expect, 0)} x {expect} "
                  f"but {len(res.ids)} ids parsed", file=sys.stderr)
        return res

    results = []
    names = [f"{PREFIX}{runid}-{i}" for i in range(args.networks)]
    results.append(phase("create_networks", "create_networks.lua", names, 201))
    net_ids = results[-1].ids
    results.append(phase("create_segments", "create_segments.lua",
                         round_robin(net_ids, args.segments), 201))
    seg_ids = results[-1].ids
    segs, per_walk = walk(base, "segments", token, args.page_limit)
    print(f"  (one walk at limit={args.page_limit}: {per_walk} pages, {len(segs)} segments)",
          file=sys.stderr)
    results.append(phase("list_pages", "list_pages.lua", [str(args.page_limit)] * args.pages, 200))
    results[-1].pages_per_walk = per_walk
    results.append(phase("show", "show_segments.lua", round_robin(seg_ids, args.shows), 200))
    renames = [f"{sid} renamed-{i}" for i, sid in enumerate(round_robin(seg_ids, args.renames))]
    results.append(phase("rename", "rename_segments.lua", renames, 200))
    results.append(phase("delete_segments", "delete.lua",
                         [f"/v2.0/segments/{s}" for s in seg_ids], 204))
    results.append(phase("delete_networks", "delete.lua",
                         [f"/v2.0/networks/{n}" for n in net_ids], 204))
    left = cleanup(base, token)
    if left:
        print(f"  cleanup: deleted {left} leftover {PREFIX}* networks", file=sys.stderr)
    return results


def ceiling(args, bases_tokens):
    """wrk against the stdlib hello app (and GET / of each server): the load generator's ceiling."""
    port = args.trivial_port
    app = subprocess.Popen([sys.executable, os.path.join(HERE, "trivial_app.py"),
                            "--port", str(port)])
    try:
        for _ in range(100):
            try:
                if http("GET", f"http://127.0.0.1:{port}/", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("trivial_app did not come up")
        opts = dict(connections=args.connections, threads=args.threads,
                    timeout_s=args.timeout, phase_timeout_s=args.phase_timeout)
        out = [wrkrun.run_phase("trivial_app GET /", "get_path.lua", f"http://127.0.0.1:{port}",
                                ["/"] * args.trivial_requests, 200, **opts)]
    finally:
        app.terminate()
        app.wait(timeout=10)
    for label, base, token in bases_tokens:
        res = wrkrun.run_phase(f"{label} GET /", "get_path.lua", base,
                               ["/"] * args.root_requests, 200, token=token, **opts)
        out.append(res)
    return out


HEADER = f"{'phase':<22}{'ops':>7}{'seconds':>9}{'ops/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"


def print_table(title, results):
    """Print phase, ops, seconds, ops/s, p50, p95, errors; then error samples and list walks."""
    print(f"\n== {title}")
    print(HEADER)
    for r in results:
        flag = "" if r.complete else "  (INCOMPLETE)"
        print(f"{r.phase:<22}{r.ops:>7}{r.seconds:>9.2f}{r.ops_per_s:>10.1f}"
              f"{r.p50_ms:>9.1f}{r.p95_ms:>9.1f}{r.errors:>8}{flag}")
    for r in results:
        if r.phase == "list_pages" and r.seconds > 0:
            per = r.pages_per_walk or 1
            print(f"list_pages: {r.ops_per_s:.1f} pages/s = {r.ops_per_s / per:.2f} full-list walks/s"
                  f" ({per} pages/walk); {r.walks} walks finished inside wrk")
    for r in results:
        if r.errors:
            codes = ", ".join(f"{k}x{v}" for k, v in sorted(r.statuses.items()))
            print(f"errors in {r.phase}: statuses {codes}")
            for sample in r.error_samples[:5]:
                print(f"    {sample}")


def print_ratio(label_a, a, label_b, b):
    """Per-phase ops/s ratio b/a."""
    print(f"\n== ratio {label_b} / {label_a} (ops/s; >1 means {label_b} is faster)")
    print(f"{'phase':<22}{label_a + ' ops/s':>16}{label_b + ' ops/s':>16}{'b/a':>8}")
    for ra, rb in zip(a, b):
        ratio = rb.ops_per_s / ra.ops_per_s if ra.ops_per_s else float("nan")
        print(f"{ra.phase:<22}{ra.ops_per_s:>16.1f}{rb.ops_per_s:>16.1f}{ratio:>8.2f}")


def vacuum(db_url):
    """VACUUM ANALYZE a PostgreSQL database with psql: what autovacuum does on its own in a
    default PostgreSQL, and not on a server configured with autovacuum = off."""
    scheme, sep, rest = db_url.partition("://")
    plain = scheme.split("+")[0] + sep + rest  # psql knows postgresql://, not +asyncpg
    subprocess.run(["psql", "-q", "-d", plain, "-c", "VACUUM ANALYZE"], check=True)


def print_round_ratios(label_a, rounds_a, label_b, rounds_b):
    """Per phase, the ratio b/a within each round (same round of both servers), and its lowest."""
    print(f"\n== ratio {label_b} / {label_a} per round (ops/s)")
    names = [r.phase for r in rounds_a[0]]
    print(f"{'phase':<22}" + "".join(f"{'round ' + str(i + 1):>10}" for i in range(len(rounds_a)))
          + f"{'lowest':>10}")
    for p, name in enumerate(names):
        ratios = [(rb[p].ops_per_s / ra[p].ops_per_s) if ra[p].ops_per_s else float("nan")
                  for ra, rb in zip(rounds_a, rounds_b)]
        print(f"{name:<22}" + "".join(f"{x:>10.2f}" for x in ratios) + f"{min(ratios):>10.2f}")


def check_up(base, token):
    """Exit with a message unless GET /v2.0/segments?limit=1 answers 200."""
    try:
        status = http("GET", f"{base}/v2.0/segments?limit=1", token, timeout=10)[0]
    except OSError as exc:
        sys.exit(f"{base}: not reachable ({exc})")
    if status != 200:
        sys.exit(f"{base}: GET /v2.0/segments?limit=1 -> {status}")


def parse_args(argv=None):
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:9696", help="server A base URL")
    ap.add_argument("--token", default="", help="X-Auth-Token for --url")
    ap.add_argument("--compare", metavar="URL2", help="also run against URL2 and print b/a ratios")
    ap.add_argument("--compare-token", default="", help="X-Auth-Token for --compare")
    ap.add_argument("--vacuum", metavar="DB_URL",
                    help="PostgreSQL URL of --url's database: VACUUM ANALYZE it before each round")
    ap.add_argument("--compare-vacuum", metavar="DB_URL",
                    help="PostgreSQL URL of --compare's database: VACUUM ANALYZE it before each round")
    ap.add_argument("--label", default="A", help="name of --url in the tables")
    ap.add_argument("--compare-label", default="B", help="name of --compare in the tables")
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--segments", type=int, default=1000)
    ap.add_argument("--pages", type=int, default=200, help="page fetches in list_pages")
    ap.add_argument("--page-limit", type=int, default=100)
    ap.add_argument("--shows", type=int, default=2000)
    ap.add_argument("--renames", type=int, default=None, help="default: --segments")
    ap.add_argument("--warmup", type=int, default=50,
                    help="networks/segments in an unmeasured warm-up run before each measured one")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measured runs per server, alternating servers; each phase reports "
                         "the run with its median ops/s")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=30, help="wrk --timeout (s), latency cap")
    ap.add_argument("--phase-timeout", type=int, default=900, help="give up on a phase after (s)")
    ap.add_argument("--ceiling", action="store_true",
                    help="also measure wrk vs a trivial hello app and GET / of each server")
    ap.add_argument("--ceiling-only", action="store_true", help="only the ceiling check")
    ap.add_argument("--trivial-port", type=int, default=9798)
    ap.add_argument("--trivial-requests", type=int, default=50000)
    ap.add_argument("--root-requests", type=int, default=1000)
    ap.add_argument("--cleanup", action="store_true", help="delete bench-net-* networks and exit")
    ap.add_argument("--json", metavar="FILE", help="write all figures as JSON")
    args = ap.parse_args(argv)
    if args.renames is None:
        args.renames = args.segments
    return args


def warmup_args(args):
    """The same workload, small: it opens connections and warms caches on the server."""
    warm = argparse.Namespace(**vars(args))
    warm.networks = warm.segments = warm.renames = args.warmup
    warm.pages, warm.shows = max(1, args.warmup // 5), args.warmup * 5
    return warm


def median_phases(rounds):
    """Per phase, the result of the round with the median ops/s (all figures from that round)."""
    if len(rounds) == 1:
        return rounds[0]
    picked = []
    for phase_results in zip(*rounds):
        ordered = sorted(phase_results, key=lambda r: r.ops_per_s)
        picked.append(ordered[len(ordered) // 2])
    return picked


def main(argv=None):
    """Run the workload (and optional comparison / ceiling check) and print the tables."""
    args = parse_args(argv)
    targets = [(args.label, args.url.rstrip("/"), args.token)]
    vacuums = {args.label: args.vacuum}
    if args.compare:
        targets.append((args.compare_label, args.compare.rstrip("/"), args.compare_token))
        vacuums[args.compare_label] = args.compare_vacuum
    if args.cleanup:
        for label, base, token in targets:
            print(f"{label}: deleted {cleanup(base, token)} {PREFIX}* networks")
        return
    for _label, base, token in targets:
        check_up(base, token)
    secret = ("token", "vacuum")  # tokens, and database URLs that may hold a password
    report = {"params": {k: v for k, v in vars(args).items()
                         if not any(word in k for word in secret)}, "runs": []}
    runs = []
    if not args.ceiling_only:
        per_target = {label: [] for label, _b, _t in targets}
        for round_no in range(1, args.rounds + 1):
            for label, base, token in targets:
                if vacuums.get(label):
                    print(f"VACUUM ANALYZE of {label}'s database (unmeasured)", file=sys.stderr)
                    vacuum(vacuums[label])
                if args.warmup:
                    print(f"warming up {label} ({args.warmup} networks/segments, unmeasured)",
                          file=sys.stderr)
                    run_workload(base, warmup_args(args), token)
                print(f"round {round_no}: workload against {label} = {base}", file=sys.stderr)
                started = time.monotonic()
                results = run_workload(base, args, token)
                total = time.monotonic() - started
                per_target[label].append(results)
                report["runs"].append({"label": label, "url": base, "round": round_no,
                                       "total_seconds": round(total, 1),
                                       "phases": [r.as_dict() for r in results]})
        runs = [(label, median_phases(per_target[label])) for label, _b, _t in targets]
        for (label, results), (_l, base, _t) in zip(runs, targets):
            print_table(f"{label} ({base})", results)
        if len(runs) == 2:
            print_ratio(runs[0][0], runs[0][1], runs[1][0], runs[1][1])
            if args.rounds > 1:
                print_round_ratios(runs[0][0], per_target[runs[0][0]],
                                   runs[1][0], per_target[runs[1][0]])
            report["ratios_b_over_a"] = {
                ra.phase: (rb.ops_per_s / ra.ops_per_s if ra.ops_per_s else None)
                for ra, rb in zip(runs[0][1], runs[1][1])}
    if args.ceiling or args.ceiling_only:
        print("running load-generator ceiling check", file=sys.stderr)
        ceil = ceiling(args, targets)
        print_table("load-generator ceiling (same wrk set-up, trivial endpoints)", ceil)
        report["ceiling"] = [r.as_dict() for r in ceil]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
