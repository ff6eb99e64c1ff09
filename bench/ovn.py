"""OVN realization benchmark: VLAN networks into the Northbound DB, and chassis into hosts.

Part 1, side by side with Neutron ML2/OVN (started by ../shared/peers/neutron/start.sh ovn,
NB on tcp:127.0.0.1:6641): create N networks, each with a server-allocated VLAN segment on
physnet1, with wrk (8 connections); print the API rate and the seconds from the first
request until the NB holds all N switches and N localnet ports; then delete them all the
same way and time the NB until none is left. segmentd runs with the OVN backend against
an OVN of its own, started the way the peer starts its own (one ovsdb-server per
database, ovn-northd), on other ports.

Part 2, segmentd only (--chassis K): K chassis appear in the Southbound DB (150 per
transaction), each mapping one or two of four physnets, with 500 segments present; print the
seconds until every host's segments are right, the rows written, the server's CPU while
idle, and the rows written and CPU used by a round of identical chassis updates.

    python3 bench/ovn.py --networks 1000 --chassis 5000 --json bench/results/ovn.json

segmentd: PostgreSQL, 2 workers, token auth, rate limits and access log off, port 9812.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrkrun
from benchserver import http, run, segmentd_server

PHYSNETS = ("physnet1", "physnet2", "physnet3", "physnet4")
TABLES = ("hosts", "agents", "host_reach", "outbox_events", "audit_events")
CONFIG = """
access_log = false
rate_limit_per_second = 0
log_level = "warning"
auth_mode = "token"
backend = "ovn"
vlan_ranges = ["physnet1:1:4094", "physnet2:1:4094", "physnet3:1:4094", "physnet4:1:4094"]
tenant_network_types = ["geneve"]
[vni_ranges]
vxlan = ["1:1000"]
geneve = ["1:100000"]
[ovn]
nb_connection = "{nb}"
sb_connection = "{sb}"
"""
NB_COUNT = json.dumps(["OVN_Northbound",
                       {"op": "select", "table": "Logical_Switch_Port",
                        "where": [["type", "==", "localnet"]], "columns": ["_uuid"]},
                       {"op": "select", "table": "Logical_Switch", "where": [],
                        "columns": ["name"]}])


def transact(remote, ops, per_call=300):
    """OVSDB operations, `per_call` to a transaction: one argument of ovsdb-client may not
    exceed 128 KiB (150 chassis at a time)."""
    for i in range(1, len(ops), per_call):
        done = subprocess.run(["ovsdb-client", "--timeout=600", "transact", remote,
                               json.dumps([ops[0], *ops[i:i + per_call]])],
                              capture_output=True, text=True)
        if done.returncode or '"error"' in done.stdout:
            raise SystemExit(f"ovsdb-client transact failed: {(done.stderr + done.stdout)[:2000]}")


def nb_counts(remote):
    """(localnet ports, neutron-* switches) in the NB, filtered by the server."""
    out = json.loads(run(["ovsdb-client", "query", remote, NB_COUNT]))
    return len(out[0]["rows"]), sum(r["name"].startswith("neutron-") for r in out[1]["rows"])


class NbWatch:
    """Polls the NB every 0.25 s from the start; `reached_at` is when (ports, switches)
    first equalled `want`, in seconds since the start."""

    def __init__(self, remote, want):
        self.remote, self.want, self.reached_at = remote, want, None
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            if nb_counts(self.remote) == self.want:
                self.reached_at = time.monotonic() - self.t0
                return
            time.sleep(0.25)

    def wait(self, timeout):
        self._thread.join(timeout)
        self._stop.set()
        return self.reached_at


def realize(label, base, token, nb_remote, n, args):
    """Create n VLAN networks then delete them; the figures of both directions."""
    body = json.dumps({"network": {"name": "bench", "provider:network_type": "vlan",
                                   "provider:physical_network": "physnet1"}})
    before = nb_counts(nb_remote)
    watch = NbWatch(nb_remote, (before[0] + n, before[1] + n))
    created = wrkrun.run_phase(f"{label} create", "post_json.lua", base,
                               [f"/v2.0/networks {body}"] * n, 201, token=token,
                               connections=args.connections, threads=args.threads)
    answered = time.monotonic() - watch.t0
    complete = watch.wait(args.nb_timeout)
    watch = NbWatch(nb_remote, before)
    deleted = wrkrun.run_phase(f"{label} delete", "delete.lua", base,
                               [f"/v2.0/networks/{i}" for i in created.ids], 204, token=token,
                               connections=args.connections, threads=args.threads)
    d_answered = time.monotonic() - watch.t0
    d_complete = watch.wait(args.nb_timeout)
    return {
        "create_ops_per_s": round(created.ops_per_s, 2), "create_errors": created.errors,
        "create_p95_ms": created.p95_ms, "create_answered_s": round(answered, 2),
        "create_nb_complete_s": complete and round(complete, 2),
        "delete_ops_per_s": round(deleted.ops_per_s, 2), "delete_errors": deleted.errors,
        "delete_answered_s": round(d_answered, 2),
        "delete_nb_complete_s": d_complete and round(d_complete, 2),
    }


class OwnOvn:
    """NB and SB ovsdb-servers on TCP ports and ovn-northd, as the Neutron peer runs them."""

    def __init__(self, work, nb_port, sb_port):
        self.work, self.procs = work, []
        self.nb, self.sb = f"tcp:127.0.0.1:{nb_port}", f"tcp:127.0.0.1:{sb_port}"
        for name, port, schema in (("nb", nb_port, "ovn-nb"), ("sb", sb_port, "ovn-sb")):
            db = work / f"{name}.db"
            run(["ovsdb-tool", "create", str(db), f"/usr/share/ovn/{schema}.ovsschema"])
            self.procs.append(subprocess.Popen(
                ["ovsdb-server", str(db), f"--remote=ptcp:{port}:127.0.0.1",
                 f"--unixctl={work / name}.ctl", "--no-chdir", "-vconsole:off",
                 f"--log-file={work / name}.log"]))
        for remote in (self.nb, self.sb):
            for _ in range(100):
                if subprocess.run(["ovsdb-client", "list-dbs", remote], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
        run(["ovn-nbctl", f"--db={self.nb}", "init"])
        run(["ovn-sbctl", f"--db={self.sb}", "init"])
        self.procs.append(subprocess.Popen(
            ["ovn-northd", f"--ovnnb-db={self.nb}", f"--ovnsb-db={self.sb}", "--no-chdir",
             "-vconsole:off", f"--log-file={work / 'northd.log'}",
             f"--unixctl={work / 'northd.ctl'}"]))

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait(10)


async def row_counts(db_url):
    conn = await asyncpg.connect(db_url)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await conn.close()


def cpu_seconds(pids):
    """User+system CPU of the processes and their children, from /proc."""
    total = 0
    for pid in pids:
        for p in [pid, *children(pid)]:
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def chassis_phase(base, token, db_url, sb_remote, server_pid, k, args):
    """K chassis in one SB transaction; convergence, rows, idle CPU, identical updates."""
    rng = random.Random(7)
    segs = {p: set() for p in PHYSNETS}
    for i in range(args.segments):
        p = PHYSNETS[i % len(PHYSNETS)]
        _, net = http("POST", f"{base}/v2.0/networks", token, {"network": {
            "provider:network_type": "vlan", "provider:physical_network": p}})
        segs[p].add(net["network"]["id"])
    _, found = http("GET", f"{base}/v2.0/segments?limit=1000", token)
    segs = {p: {s["id"] for s in found["segments"] if s["physical_network"] == p}
            for p in PHYSNETS}
    fleet = {f"host-{i:05d}": sorted(rng.sample(PHYSNETS, rng.choice((1, 2)))) for i in range(k)}
    time.sleep(2)
    before = asyncio.run(row_counts(db_url))
    ops = ["OVN_Southbound"]
    for i, (host, physnets) in enumerate(fleet.items()):
        mappings = ",".join(f"{p}:br-{p}" for p in physnets)
        ops += [{"op": "insert", "table": "Encap", "uuid-name": f"e{i}",
                 "row": {"type": "geneve", "chassis_name": f"ch-{i}",
                         "ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}},
                {"op": "insert", "table": "Chassis",
                 "row": {"name": f"ch-{i}", "hostname": host, "encaps": ["named-uuid", f"e{i}"],
                         "other_config": ["map", [["ovn-bridge-mappings", mappings]]]}}]
    t0 = time.monotonic()
    transact(sb_remote, ops)  # 150 chassis (an Encap and a Chassis each) per transaction
    added = time.monotonic() - t0
    want = {h: set().union(*(segs[p] for p in ps)) for h, ps in fleet.items()}
    sample = rng.sample(sorted(fleet), 50)
    last_wrong = None
    all_agents = None  # when the database first held an agent per chassis
    while time.monotonic() - t0 < args.nb_timeout:
        rows = asyncio.run(row_counts(db_url))
        if rows["agents"] - before["agents"] == k:
            all_agents = all_agents or time.monotonic() - t0
            wrong = [h for h in sample if {s["id"] for s in http(
                "GET", f"{base}/v2.0/hosts/{h}/segments?limit=1000", token)[1]["segments"]}
                != want[h]]
            if not wrong:
                break
            last_wrong = wrong
        time.sleep(0.2)
    converged = time.monotonic() - t0
    written = {t: rows[t] - before[t] for t in TABLES}
    # Every host, not just the sample, once converged (measured after the clock stopped).
    wrong_all = [h for h in fleet if {s["id"] for s in http(
        "GET", f"{base}/v2.0/hosts/{h}/segments?limit=1000", token)[1]["segments"]} != want[h]]
    time.sleep(5)
    idle0 = cpu_seconds([server_pid])
    time.sleep(args.idle_seconds)
    idle_cpu = (cpu_seconds([server_pid]) - idle0) / args.idle_seconds
    # Identical updates: a column the watcher does not read, and the mappings rewritten.
    before = asyncio.run(row_counts(db_url))
    cpu0, t1 = cpu_seconds([server_pid]), time.monotonic()
    ops = ["OVN_Southbound"]
    for i, physnets in enumerate(fleet.values()):
        mappings = ",".join(f"{p}:br-{p}" for p in physnets)
        ops.append({"op": "update", "table": "Chassis", "where": [["name", "==", f"ch-{i}"]],
                    "row": {"nb_cfg": 1,
                            "other_config": ["map", [["ovn-bridge-mappings", mappings]]]}})
    transact(sb_remote, ops)
    time.sleep(5)
    again_cpu = cpu_seconds([server_pid]) - cpu0
    again_rows = {t: v - before[t] for t, v in asyncio.run(row_counts(db_url)).items()}
    if args.profile_idle:  # after the figures: py-spy's sampling costs CPU of its own
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        run([pyspy, "record", "--subprocesses", "--pid", str(server_pid), "--rate", "200",
             "--duration", str(int(args.idle_seconds)), "--format", "raw",
             "--output", args.profile_idle])
        print(f"idle profile (active samples only) in {args.profile_idle}", file=sys.stderr)
    return {"chassis": k, "segments": args.segments, "sb_writes_s": round(added, 2),
            "all_agents_s": all_agents and round(all_agents, 2),
            "converged_s": round(converged, 2), "sample_wrong_at_end": last_wrong if converged
            >= args.nb_timeout else [], "hosts_wrong_after": len(wrong_all),
            "rows_written": written, "idle_cpu_share_of_core": round(idle_cpu, 4),
            "identical_round_rows": again_rows,
            "identical_round_cpu_s": round(again_cpu, 2),
            "identical_round_window_s": round(time.monotonic() - t1, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--chassis", type=int, default=0, help="run part 2 with this many chassis")
    ap.add_argument("--segments", type=int, default=500)
    ap.add_argument("--neutron", default="http://127.0.0.1:9696", help="'' to skip Neutron")
    ap.add_argument("--neutron-nb", default="tcp:127.0.0.1:6641")
    ap.add_argument("--port", type=int, default=9812)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nb-timeout", type=float, default=900)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--profile-idle", metavar="FILE",
                    help="after the chassis figures, py-spy the idle server into FILE")
    args = ap.parse_args(argv)
    results = {}
    if args.neutron and args.networks:
        print(f"Neutron ML2/OVN at {args.neutron}: {args.networks} VLAN networks", file=sys.stderr)
        results["neutron"] = realize("neutron", args.neutron, "", args.neutron_nb,
                                     args.networks, args)
        print("neutron:", json.dumps(results["neutron"]), file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="bench-ovn-"))
    ovn = OwnOvn(work, 16641, 16642)
    try:
        with segmentd_server(work, CONFIG.format(nb=ovn.nb, sb=ovn.sb), args.pg, args.port,
                             args.workers, {"admin": ("admin", "admin")},
                             "ovn") as (base, db_url, made, server):
            token = made["admin"]
            for _ in range(300):
                if http("GET", base + "/readyz")[1].get("ovn_connection") == "connected":
                    break
                time.sleep(0.1)
            print(f"segmentd: PostgreSQL, {args.workers} workers, token auth, rate limits off, "
                  f"port {args.port}, its own OVN (NB {ovn.nb}, SB {ovn.sb}, northd); "
                  f"wrk {args.connections} connections", file=sys.stderr)
            if args.networks:
                results["segmentd"] = realize("segmentd", base, token, ovn.nb, args.networks,
                                              args)
                print("segmentd:", json.dumps(results["segmentd"]), file=sys.stderr)
            if args.chassis:
                results["chassis"] = chassis_phase(base, token, db_url, ovn.sb, server.pid,
                                                   args.chassis, args)
    finally:
        ovn.stop()

    for side in ("neutron", "segmentd"):
        if side in results:
            r = results[side]
            print(f"{side:9s} create {r['create_ops_per_s']:8.1f}/s (p95 {r['create_p95_ms']:.0f} ms), "
                  f"answered {r['create_answered_s']} s, NB complete {r['create_nb_complete_s']} s; "
                  f"delete {r['delete_ops_per_s']:8.1f}/s, answered {r['delete_answered_s']} s, "
                  f"NB empty {r['delete_nb_complete_s']} s")
    if "neutron" in results and "segmentd" in results:
        n, s = results["neutron"], results["segmentd"]
        print(f"ratio segmentd/neutron: creates {s['create_ops_per_s'] / n['create_ops_per_s']:.1f}x, "
              f"deletes {s['delete_ops_per_s'] / n['delete_ops_per_s']:.1f}x")
    for side in ("segmentd",):
        if side in results:
            r = results[side]
            print(f"segmentd NB complete {r['create_nb_complete_s'] - r['create_answered_s']:.2f} s "
                  f"after the last create answer; empty "
                  f"{r['delete_nb_complete_s'] - r['delete_answered_s']:.2f} s after the last delete")
    if "chassis" in results:
        print("chassis:", json.dumps(results["chassis"], indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
