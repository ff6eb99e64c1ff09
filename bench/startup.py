"""segmentd start-up time and peak RSS: vni_ranges 1:1000 versus 1:16777215 on fresh SQLite."""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

DEFAULT_BIN = "/work/main/.venv/bin/segmentd"
CONFIG = """auth_mode = "development"
database_url = "{db_url}"
vlan_ranges = ["physnet1:100:2999", "physnet2"]
flat_networks = ["*"]
tenant_network_types = ["geneve"]
[vni_ranges]
vxlan = ["{vni}"]
geneve = ["{vni}"]
"""
CASES = (("vni 1:1000", "1:1000"), ("vni 1:16777215", "1:16777215"))


def port_in_use(port):
    """True if something already accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid):
    """pid plus all its descendant pids (from /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid, field):
    """A kB field (VmHWM, VmRSS) from /proc/<pid>/status, 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_hwm_kb(pid):
    """Sum of VmHWM (peak RSS) over the process and its descendants."""
    return sum(status_kb(p, "VmHWM") for p in descendants(pid))


def answers_200(url):
    """True if GET url answers 200 within 1 s."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def stop(proc):
    """SIGTERM the server, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def one_run(binary, vni, port, tmp, run_no, ready_timeout, premigrate):
    """Start segmentd once on a fresh DB; return (seconds to first 200, peak RSS kB)."""
    db = os.path.join(tmp, f"run{run_no}-{vni.replace(':', '_')}.db")
    db_url = f"sqlite+aiosqlite:///{db}"
    cfg = os.path.join(tmp, f"config-{vni.replace(':', '_')}.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(db_url=db_url, vni=vni))
    common = ["--config", cfg, "--database-url", db_url]
    if premigrate:
        subprocess.run([binary, "db", "upgrade", *common], check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = os.path.join(tmp, f"run{run_no}.log")
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        start = time.monotonic()
        proc = subprocess.Popen([binary, "serve", *common, "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            elapsed, peak, polls = None, 0, 0
            while time.monotonic() - start < ready_timeout and proc.poll() is None:
                if polls % 10 == 0:   # a /proc scan costs a few ms; VmHWM is a high-water mark anyway
                    peak = max(peak, tree_hwm_kb(proc.pid))
                polls += 1
                if answers_200(url):
                    elapsed = time.monotonic() - start
                    break
                time.sleep(0.01)
            if elapsed is not None:
                time.sleep(0.2)   # let any post-ready start-up work show in the high-water mark
                peak = max(peak, tree_hwm_kb(proc.pid))
        finally:
            stop(proc)
    if elapsed is None:
        with open(log_path) as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"segmentd ({vni}) not ready after {ready_timeout}s, "
                           f"exit={proc.returncode}; log tail:\n{tail}")
    return elapsed, peak


def main():
    """Run N interleaved start-ups per config and print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", default=DEFAULT_BIN, help="segmentd executable")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--port", type=int, default=9797)
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--premigrate", action="store_true",
                    help="run `segmentd db upgrade` first (untimed) so only serve start-up is timed")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin}: not found or not executable")
    if port_in_use(args.port):
        sys.exit(f"port {args.port} is already in use; refusing to measure someone else's server")
    results = {label: [] for label, _ in CASES}
    with tempfile.TemporaryDirectory(prefix="segmentd-startup-") as tmp:
        for run_no in range(1, args.runs + 1):
            for label, vni in CASES:   # interleaved, so drift hits both configs alike
                secs, kb = one_run(args.bin, vni, args.port, tmp, run_no,
                                   args.ready_timeout, args.premigrate)
                results[label].append((secs, kb))
                print(f"run {run_no} {label:<16} {secs:7.3f} s  {kb / 1024:8.1f} MB",
                      file=sys.stderr, flush=True)
    summary = {}
    print(f"\n{'config':<18}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}"
          f"{'median peak MB':>16}{'max peak MB':>13}")
    for label, _ in CASES:
        secs = [s for s, _ in results[label]]
        mbs = [kb / 1024 for _, kb in results[label]]
        summary[label] = {"runs": len(secs), "median_s": statistics.median(secs),
                          "min_s": min(secs), "max_s": max(secs),
                          "median_peak_mb": statistics.median(mbs), "max_peak_mb": max(mbs),
                          "samples": results[label]}
        print(f"{label:<18}{len(secs):>5}{statistics.median(secs):>10.3f}{min(secs):>8.3f}"
              f"{max(secs):>8.3f}{statistics.median(mbs):>16.1f}{max(mbs):>13.1f}")
    small, big = (summary[label] for label, _ in CASES)
    t_ratio = big["median_s"] / small["median_s"]
    m_ratio = big["median_peak_mb"] / small["median_peak_mb"]
    print(f"ratio 1:16777215 / 1:1000: start-up time x{t_ratio:.2f}, peak RSS x{m_ratio:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"premigrate": args.premigrate, "cases": summary,
                       "ratio_time": t_ratio, "ratio_peak_rss": m_ratio}, f, indent=2)


if __name__ == "__main__":
    main()
