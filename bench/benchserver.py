"""A `segmentd serve` of a benchmark's own: a fresh PostgreSQL database, migrated, tokens
made with `segmentd token create`, the server started on a port, all dropped afterwards."""
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

SEGMENTD = str(Path(sys.executable).parent / "segmentd")


def run(cmd, **kw):
    """A command's stdout; its stderr in the exit message if it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{out.stdout[:2000]}{out.stderr[:2000]}")
    return out.stdout.strip()


def http(method, url, token="", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)


@contextmanager
def segmentd_server(work: Path, config: str, pg: str, port: int, workers: int, tokens,
                    prefix: str):
    """Yield (base URL, database URL, {name: token}, server process).

    `tokens` is {name: (project, roles)}. The server sees none of the caller's SEGMENTD_*
    variables; it is answering GET / when this yields.
    """
    dbname = f"segmentd_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    run(["psql", f"{pg}/postgres", "-qc", f'CREATE DATABASE "{dbname}"'])
    db_url = f"{pg}/{dbname}"
    cfg = work / "bench.toml"
    cfg.write_text(config)
    common = ["--config", str(cfg), "--database-url", db_url]
    server = None
    try:
        run([SEGMENTD, "db", "upgrade", *common])
        made = {name: run([SEGMENTD, "token", "create", *common, "--project", project,
                           "--roles", roles])
                for name, (project, roles) in tokens.items()}
        with open(work / "server.log", "wb") as log:
            server = subprocess.Popen(
                [SEGMENTD, "serve", *common, "--port", str(port), "--workers", str(workers),
                 "--no-migrate"], stdout=log, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")})
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                http("GET", base + "/")
                break
            except OSError:
                time.sleep(0.1)
        yield base, db_url, made, server
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        run(["psql", f"{pg}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'])
