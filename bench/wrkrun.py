"""Run one fixed-count wrk phase (bench/lua/*.lua) and parse what its Lua writes back."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua")
POLL_S = 0.005


@dataclass
class PhaseResult:
    """Figures for one phase, as read from the Lua result file."""
    phase: str
    requested: int
    ops: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    walks: int = 0
    pages_per_walk: int = 0
    statuses: dict = field(default_factory=dict)
    wrk_errors: dict = field(default_factory=dict)
    error_samples: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    complete: bool = True

    @property
    def ops_per_s(self):
        """Completed requests per second of phase wall time."""
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self):
        """JSON-friendly figures (ids left out)."""
        d = {k: v for k, v in self.__dict__.items() if k != "ids"}
        d["ops_per_s"] = round(self.ops_per_s, 2)
        d["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return d


def split_round_robin(items, threads):
    """Deal items to threads like cards: item j goes to thread j % threads."""
    return [items[t::threads] for t in range(threads)]


def run_phase(name, script, url, items, expect, *, token="", connections=8,
              threads=2, timeout_s=30, phase_timeout_s=900):
    """Send exactly len(items) requests with wrk; return a PhaseResult."""
    if not items:
        return PhaseResult(name, 0, seconds=0.0)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found in PATH (apt-get install -y wrk)")
    threads = max(1, min(threads, len(items)))
    connections = max(connections, threads)
    workdir = tempfile.mkdtemp(prefix="bench-" + re.sub(r"\W+", "_", name) + "-")
    try:
        for tid, chunk in enumerate(split_round_robin(items, threads), start=1):
            with open(os.path.join(workdir, f"items-{tid}.txt"), "w") as f:
                f.writelines(f"{item}\n" for item in chunk)
        env = dict(os.environ, BENCH_WORKDIR=workdir, BENCH_TOKEN=token or "",
                   BENCH_EXPECT=str(expect))
        cmd = ["wrk", "-t", str(threads), "-c", str(connections),
               "-d", f"{int(phase_timeout_s)}s", "--timeout", f"{int(timeout_s)}s",
               "-s", os.path.join(LUA_DIR, script), url]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        markers = [os.path.join(workdir, f"done-{t}") for t in range(1, threads + 1)]
        deadline = start + phase_timeout_s
        complete = False
        while time.monotonic() < deadline and proc.poll() is None:
            if all(os.path.exists(m) for m in markers):
                complete = True
                break
            time.sleep(POLL_S)
        wall = time.monotonic() - start
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)   # wakes wrk's main thread, which then runs done()
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        result_file = os.path.join(workdir, "result.txt")
        if not os.path.exists(result_file):
            raise RuntimeError(f"wrk wrote no result for {name}:\n{out}")
        res = parse_result(name, len(items), result_file, wall)
        res.complete = complete and res.ops == len(items)
        return res
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_result(name, requested, path, wall):
    """Read the line-oriented result.txt written by common.lua's done()."""
    res = PhaseResult(name, requested)
    t0s, t1s, unfinished = [], [], False
    with open(path) as f:
        for line in f:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "latency":
                p50, p95, p99, mx, _mean = rest.split()
                res.p50_ms, res.p95_ms = int(p50) / 1000, int(p95) / 1000
                res.p99_ms, res.max_ms = int(p99) / 1000, int(float(mx)) / 1000
            elif kind == "summary":
                vals = [int(v) for v in rest.split()]
                keys = ("requests", "status", "connect", "read", "write", "timeout")
                res.wrk_errors = dict(zip(keys, vals))
            elif kind == "thread":
                _tid, quota, completed, ok, nerr, t0, t1, walks = rest.split()
                res.ops += int(completed)
                res.ok += int(ok)
                res.errors += int(nerr)
                res.walks += int(walks)
                if float(t0) > 0:
                    t0s.append(float(t0))
                if float(t1) > 0:
                    t1s.append(float(t1))
                unfinished |= int(completed) < int(quota)
            elif kind == "status":
                code, n = rest.split()
                res.statuses[int(code)] = res.statuses.get(int(code), 0) + int(n)
            elif kind == "id":
                res.ids.append(rest)
            elif kind == "err":
                res.error_samples.append(rest)
    if t0s and t1s and not unfinished:
        res.seconds = max(t1s) - min(t0s)
    else:
        res.seconds = wall   # some thread never finished: fall back to harness wall time
    return res
