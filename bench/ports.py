"""Ports on a routed network, Neutron against segmentd in one run.

It starts its own `segmentd serve` (PostgreSQL, 2 workers, token auth, rate limits and the
access log off, port 9797 by default) and uses the Neutron peer already running at --neutron
(`../shared/peers/neutron`, started with NETWORK_VLAN_RANGES covering physnet1..4). On each:

1. a network of four VLAN segments (physnet1..4), a /21 subnet on each, and four hosts
   each reaching one physnet: on segmentd through host reports, on Neutron through rows in
   its segmenthostmappings table (the plain ML2 peer has no agents to report them);
2. create_ports: N ports, each with binding:host_id (the four hosts in turn), by wrk;
   every port must get an address from its host's segment's subnet (checked on a sample);
3. list_pages: the ports walked page by page (limit 100), several walks;
4. delete_ports: every port deleted;
5. /8 against /24: on a plain network with one subnet, M port creates (--prefix-ports) on
   a /24 and on a /8 (then deleted); --prefix-pairs such pairs per round, the order
   alternating. Reported: the median run of each, and the /8 : /24 ratio of each pair
   (median, quartiles, range). --prefix-only runs this part alone, on segmentd.

Rounds alternate between the servers; each phase reports its median round.

    python3 bench/ports.py --neutron http://127.0.0.1:9696 --ports 2000 --rounds 3 \
        --json bench/results/ports.json
"""
import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrkrun
from benchserver import http, segmentd_server

PHYSNETS = ("physnet1", "physnet2", "physnet3", "physnet4")
CONFIG = """
access_log = false
rate_limit_per_second = 0
log_level = "warning"
auth_mode = "token"
vlan_ranges = ["physnet1:100:3000", "physnet2:100:3000", "physnet3:100:3000", "physnet4:100:3000"]
tenant_network_types = ["vxlan"]
[vni_ranges]
vxlan = ["1:10000"]
geneve = ["1:1000"]
"""
PEER_DB = ["mysql", "-h127.0.0.1", "-P53306", "-uneutron", "-pneutron", "neutron"]


def call(method, url, token="", body=None, expect=None):
    status, doc = http(method, url, token, body)
    if expect is not None and status != expect:
        raise SystemExit(f"{method} {url} -> {status}, expected {expect}: {doc}")
    return doc


def routed_network(base, token, tag):
    """The four-segment network, a /21 on each segment; returns (net id, {physnet: (seg, cidr)})."""
    net = call("POST", f"{base}/v2.0/networks", token, {"network": {
        "name": f"bench-ports-{tag}", "provider:network_type": "vlan",
        "provider:physical_network": PHYSNETS[0]}}, 201)["network"]
    for physnet in PHYSNETS[1:]:
        call("POST", f"{base}/v2.0/segments", token, {"segment": {
            "network_id": net["id"], "network_type": "vlan", "physical_network": physnet}}, 201)
    segments = call("GET", f"{base}/v2.0/segments?network_id={net['id']}", token)["segments"]
    layout = {}
    for i, seg in enumerate(sorted(segments, key=lambda s: s["physical_network"])):
        cidr = f"10.{40 + i}.0.0/21"
        subnet = call("POST", f"{base}/v2.0/subnets", token, {"subnet": {
            "network_id": net["id"], "cidr": cidr, "ip_version": 4,
            "segment_id": seg["id"]}}, 201)["subnet"]
        layout[seg["physical_network"]] = (seg["id"], subnet["id"], cidr)
    return net["id"], layout


def hosts_for(tag):
    return {p: f"bench-{tag}-host-{i + 1}" for i, p in enumerate(PHYSNETS)}


def map_hosts_segmentd(base, service_token, hosts):
    for physnet, host in hosts.items():
        call("POST", f"{base}/v2.0/host-reports", service_token, {"report": {
            "host": host, "agent_type": "Open vSwitch agent",
            "binary": "neutron-openvswitch-agent",
            "configurations": {"bridge_mappings": {physnet: "br-ex"}}}}, 201)


def map_hosts_neutron(layout, hosts):
    rows = ",".join(f"('{layout[p][0]}','{h}')" for p, h in hosts.items())
    subprocess.run([*PEER_DB, "-e", f"INSERT INTO segmenthostmappings (segment_id, host) "
                    f"VALUES {rows}"], check=True, capture_output=True)


def port_items(net_id, hosts, count):
    order = list(hosts.values())
    return ["/v2.0/ports " + json.dumps({"port": {
        "network_id": net_id, "binding:host_id": order[i % len(order)]}},
        separators=(",", ":")) for i in range(count)]


def run_phase(name, script, base, items, expect, token, args):
    res = wrkrun.run_phase(name, script, base, items, expect, token=token,
                           connections=args.connections, threads=args.threads)
    if res.ok != len(items):
        print(f"  warning: {name}: {res.ok}/{len(items)} answered {expect}: {res.statuses} "
              f"{res.error_samples[:3]}", file=sys.stderr)
    return res


def check_sample(base, token, port_ids, hosts, layout):
    """Every sampled port has one address, from its host's segment's subnet."""
    host_physnet = {h: p for p, h in hosts.items()}
    for pid in port_ids[:: max(1, len(port_ids) // 50)]:
        port = call("GET", f"{base}/v2.0/ports/{pid}", token)["port"]
        physnet = host_physnet[port["binding:host_id"]]
        _seg, subnet_id, cidr = layout[physnet]
        (fixed,) = port["fixed_ips"]
        if fixed["subnet_id"] != subnet_id or ipaddress.ip_address(
                fixed["ip_address"]) not in ipaddress.ip_network(cidr):
            raise SystemExit(f"port {pid} on {port['binding:host_id']}: {port['fixed_ips']}")


def page_paths(base, token, net_id, limit):
    """The paths of one marker-paged walk over the network's ports."""
    paths, url = [], f"/v2.0/ports?network_id={net_id}&limit={limit}"
    while url:
        paths.append(url)
        doc = call("GET", base + url, token)
        nxt = [link["href"] for link in doc.get("ports_links", []) if link["rel"] == "next"]
        url = nxt[0][nxt[0].find("/v2.0/"):] if nxt else None
    return paths


def routed_round(label, base, token, service, args, tag):
    net_id, layout = routed_network(base, token, tag)
    hosts = hosts_for(tag)
    if service is None:
        map_hosts_neutron(layout, hosts)
    else:
        map_hosts_segmentd(base, service, hosts)
    print(f"  {label}: create_ports {args.ports}", file=sys.stderr, flush=True)
    created = run_phase("create_ports", "post_json.lua", base,
                        port_items(net_id, hosts, args.ports), 201, token, args)
    check_sample(base, token, created.ids, hosts, layout)
    paths = page_paths(base, token, net_id, 100)
    listed = run_phase("list_pages", "get_path.lua", base, paths * args.walks, 200, token, args)
    listed.pages_per_walk = len(paths)
    deleted = run_phase("delete_ports", "delete.lua", base,
                        [f"/v2.0/ports/{p}" for p in created.ids], 204, token, args)
    call("DELETE", f"{base}/v2.0/networks/{net_id}", token, expect=204)
    return [created, listed, deleted]


PREFIXES = ("10.99.0.0/24", "11.0.0.0/8")


def prefix_run(base, token, args, tag, cidr):
    """M port creates on a plain network with one subnet of `cidr`; then all deleted."""
    net = call("POST", f"{base}/v2.0/networks", token, {"network": {
        "name": f"bench-prefix-{tag}"}}, 201)["network"]
    call("POST", f"{base}/v2.0/subnets", token, {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4}}, 201)
    items = ["/v2.0/ports " + json.dumps({"port": {"network_id": net["id"]}},
                                         separators=(",", ":"))] * args.prefix_ports
    res = run_phase(f"create_ports {cidr}", "post_json.lua", base, items, 201, token, args)
    for pid in res.ids:
        call("DELETE", f"{base}/v2.0/ports/{pid}", token)
    call("DELETE", f"{base}/v2.0/networks/{net['id']}", token, expect=204)
    return res


def prefix_round(base, token, args, tag):
    """--prefix-pairs pairs of runs, a /24 and a /8 each, the order alternating from pair to
    pair (so neither always runs on a warmer server); {cidr: [result per pair]}."""
    out = {cidr: [] for cidr in PREFIXES}
    for pair in range(args.prefix_pairs):
        for cidr in (PREFIXES if pair % 2 == 0 else PREFIXES[::-1]):
            out[cidr].append(prefix_run(base, token, args, f"{tag}-{pair}", cidr))
    return out


def pair_ratios(prefix_rounds):
    """/8 over /24 creates/s of each pair of runs, over all rounds."""
    return [p8.ops_per_s / p24.ops_per_s for rnd in prefix_rounds
            for p24, p8 in zip(rnd[PREFIXES[0]], rnd[PREFIXES[1]])]


def median(results):
    ordered = sorted(results, key=lambda r: r.ops_per_s)
    return ordered[len(ordered) // 2]


def table(title, rows):
    print(f"\n== {title}")
    print(f"{'phase':<24}{'ops':>7}{'seconds':>9}{'ops/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}")
    for r in rows:
        print(f"{r.phase:<24}{r.ops:>7}{r.seconds:>9.2f}{r.ops_per_s:>10.1f}{r.p50_ms:>9.1f}"
              f"{r.p95_ms:>9.1f}{r.errors:>8}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--neutron", default="http://127.0.0.1:9696")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--port", type=int, default=9797)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ports", type=int, default=2000)
    ap.add_argument("--walks", type=int, default=5, help="full list walks per round")
    ap.add_argument("--prefix-ports", type=int, default=200, help="ports per /24 and /8 run")
    ap.add_argument("--prefix-pairs", type=int, default=5,
                    help="pairs of /24 and /8 runs per round")
    ap.add_argument("--prefix-only", action="store_true",
                    help="only the /8 against /24 comparison (on segmentd alone)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-neutron", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    tokens = {"admin": ("admin", "admin"), "service": ("service", "service")}
    report = {"params": vars(args), "rounds": []}
    with tempfile.TemporaryDirectory() as tmp, segmentd_server(
            Path(tmp), CONFIG, args.pg, args.port, args.workers, tokens, "ports") as (
            base, _db, made, _server):
        targets = [("segmentd", base, made["admin"], made["service"])]
        if not (args.skip_neutron or args.prefix_only):
            targets.insert(0, ("neutron", args.neutron.rstrip("/"), "", None))
        routed = {label: [] for label, *_ in targets}
        prefix = {label: [] for label, *_ in targets}
        for rnd in range(1, args.rounds + 1):
            for label, url, token, service in targets:
                tag = uuid.uuid4().hex[:6]
                print(f"round {rnd}: {label}", file=sys.stderr, flush=True)
                res = ([] if args.prefix_only
                       else routed_round(label, url, token, service, args, tag))
                routed[label].append(res)
                pre = prefix_round(url, token, args, tag)
                prefix[label].append(pre)
                report["rounds"].append({
                    "label": label, "round": rnd,
                    "phases": [r.as_dict() for r in res],
                    "prefix": {k: [r.as_dict() for r in v] for k, v in pre.items()}})
        picked = {}
        for label, *_ in targets:
            phases = [median(list(p)) for p in zip(*routed[label])]
            p24 = median([r for p in prefix[label] for r in p[PREFIXES[0]]])
            p8 = median([r for p in prefix[label] for r in p[PREFIXES[1]]])
            picked[label] = (phases, p24, p8)
            table(f"{label} (median round of {args.rounds}; rate limits off on segmentd)",
                  [*phases, p24, p8])
            if phases:
                walks = phases[1]
                print(f"list_pages: {walks.ops_per_s / walks.pages_per_walk:.2f} full walks/s "
                      f"({walks.pages_per_walk} pages of 100)")
            ratios = sorted(pair_ratios(prefix[label]))
            report.setdefault("prefix_ratios", {})[label] = ratios
            print(f"/8 vs /24 port creates ({args.prefix_ports} ports a run, {len(ratios)} "
                  f"pairs): median runs {p8.ops_per_s:.1f} / {p24.ops_per_s:.1f} = "
                  f"{p8.ops_per_s / p24.ops_per_s:.3f}; per pair median "
                  f"{ratios[len(ratios) // 2]:.3f}, quartiles {ratios[len(ratios) // 4]:.3f}"
                  f"..{ratios[(3 * len(ratios)) // 4]:.3f}, range {ratios[0]:.3f}..{ratios[-1]:.3f}")
        if "neutron" in picked:
            print("\n== ratio segmentd / neutron (ops/s)")
            n, s = picked["neutron"], picked["segmentd"]
            for rn, rs in zip([*n[0], n[1], n[2]], [*s[0], s[1], s[2]]):
                print(f"{rn.phase:<24}{rn.ops_per_s:>12.1f}{rs.ops_per_s:>12.1f}"
                      f"{rs.ops_per_s / rn.ops_per_s:>8.1f}x")
            per_round = [s_r[0].ops_per_s / n_r[0].ops_per_s
                         for n_r, s_r in zip(routed["neutron"], routed["segmentd"])]
            print("create_ports ratio per round: " + ", ".join(f"{x:.1f}x" for x in per_round))
            report["ratios"] = {rn.phase: rs.ops_per_s / rn.ops_per_s
                                for rn, rs in zip([*n[0], n[1], n[2]], [*s[0], s[1], s[2]])}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
