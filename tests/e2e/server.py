"""Run `segmentd serve` as a real subprocess: config file, free port, readiness, shutdown, log."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import httpx

from segmentd import commands
from segmentd.cli import build_parser
from segmentd.config import load_settings
from tests.conftest import PG_HOST, PG_PORT, PG_USER, create_pg_database, drop_pg_database

VENV_BIN = Path(sys.executable).parent
# What README's start command (scripts/serve) serves with; the client scenarios use it as is.
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "etc" / "segmentd.example.toml"
BOOTSTRAP_PROJECT = "admin"  # the project of the admin token `serve` prints on an empty database
SEGMENTD = str(VENV_BIN / "segmentd")
READY_TIMEOUT = 60.0  # seconds for migrate + start-up (a loaded 2-core machine took over 30)
STOP_TIMEOUT = 10.0
NEUTRON_PORT = 9696  # never used by tests: a developer's server may be on it

E2E_CONFIG = {
    "auth_mode": "development",
    "vlan_ranges": ["physnet1:100:2999", "physnet2", "tiny:10:17"],
    "flat_networks": ["*"],
    "tenant_network_types": ["geneve"],
    "global_physnet_mtu": 1500,
    "vni_ranges": {"vxlan": ["1:1000"], "geneve": ["1:16777215"]},
}
# The same, validating X-Auth-Token against segmentd's own tokens (the product's default).
TOKEN_CONFIG = {**E2E_CONFIG, "auth_mode": "token"}
# The tests' own plain requests to servers, one at a time: one client, not one per request
# (`httpx.get` builds a client, and with it an SSL context loading the CA bundle, each time).
HTTP = httpx.Client(timeout=30.0)
BOOTSTRAP_LINE = re.compile(r"bootstrap admin token \(shown once, store it now\): (\S+)")


def toml_value(value) -> str:
    """Strings, numbers, bools and lists of them: JSON spells them as TOML does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_config(path: Path, config: dict) -> Path:
    """Top-level keys first, then one [table] per dict value."""
    lines = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for table, values in config.items():
        if isinstance(values, dict):
            lines.append(f"\n[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    """A loopback port nobody listens on right now (never Neutron's 9696)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != NEUTRON_PORT:
            return port


def is_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Server:
    """A running `segmentd serve`: its URL, process and log file."""

    base_url: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    db_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


def start_server(
    workdir: Path, db_url: str, *, name: str = "server", config: dict | Path | None = None,
    migrate: bool = True, workers: int = 1, env: dict[str, str] | None = None,
) -> Server:
    """Start `segmentd serve` and wait (with a deadline) until GET / answers 200.

    `config` is a dict written to a TOML file, or a file used as it is (EXAMPLE_CONFIG: the
    server README's start command starts, but for its database URL and port). The server
    sees none of the caller's SEGMENTD_* variables, only those in `env`.
    """
    if isinstance(config, Path):
        cfg = config
    else:
        cfg = write_config(workdir / f"{name}.toml", config or E2E_CONFIG)
    for attempt in range(3):  # a port taken between free_port() and bind: try another
        port = free_port()
        log_path = workdir / f"{name}.log"
        argv = [SEGMENTD, "serve", "--config", str(cfg), "--database-url", db_url,
                "--port", str(port)]  # host: 127.0.0.1, the default and the example's
        if workers != 1:
            argv += ["--workers", str(workers)]
        if not migrate:
            argv.append("--no-migrate")
        log = open(log_path, "ab")  # noqa: SIM115 (the child owns it)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
        child_env.update(env or {})
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=child_env)
        log.close()
        server = Server(f"http://127.0.0.1:{port}", port, proc, log_path, db_url)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if is_ready(server.base_url):
                return server
            time.sleep(0.1)
        server.stop()
        text = server.log()
        if "address already in use" in text.lower() and attempt < 2:
            continue
        raise RuntimeError(
            f"segmentd did not become ready on {server.base_url} (exit code {proc.returncode})"
            f"\n--- {log_path} ---\n{text}"
        )
    raise AssertionError("unreachable")


def stop_servers(request, servers: list[Server]) -> None:
    """Stop every server; if the test failed, print their logs (pytest shows them)."""
    for server in servers:
        server.stop()
    if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
           for w in ("setup", "call")):
        for server in servers:
            print(f"--- {server.log_path} ---\n{server.log()}")


def bootstrap_tokens(server: Server) -> list[str]:
    """Every bootstrap admin token the server printed (token mode on an empty database)."""
    return BOOTSTRAP_LINE.findall(server.log())


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anyone's SEGMENTD_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTD_")}
    env.update(extra)
    return env


def segmentd(*args: str, db_url: str) -> subprocess.CompletedProcess:
    """`segmentd <args> --database-url <db_url>` with only the defaults (token mode)."""
    return subprocess.run(
        [SEGMENTD, *args, "--database-url", db_url],
        capture_output=True, text=True, timeout=60, env=clean_env(), check=False,
    )


@dataclass
class Live:
    """A server on the shipped example config and the tokens its clients use."""

    server: Server
    admin: str  # the bootstrap admin token (project BOOTSTRAP_PROJECT)
    service: str  # an unbound service-role token (project "agents"): host reports

    @property
    def url(self) -> str:
        return self.server.base_url


def start_example_server(workdir: Path, db_url: str, name: str,
                         backend: dict | None = None) -> Live:
    """`segmentd serve --config etc/segmentd.example.toml` (README's start command) on
    `db_url`, with its bootstrap admin token and a service token issued by the CLI.

    `backend`: settings added to the example's to use a backend (`backend`, `[ovn]`), and
    nothing else changed.
    """
    config = EXAMPLE_CONFIG
    if backend is not None:
        config = {**tomllib.loads(EXAMPLE_CONFIG.read_text()), **backend}
    server = start_server(workdir, db_url, name=name, config=config)
    try:
        (admin,) = bootstrap_tokens(server)
        service = create_token(db_url, "--project", "agents", "--roles", "service",
                               "--name", "agents")
    except BaseException:
        server.stop()
        print(f"--- {server.log_path} ---\n{server.log()}")
        raise
    return Live(server, admin, service)


def create_token(db_url: str, *args: str) -> str:
    """`segmentd token create <args> --database-url <db_url>`: what the command runs, in this
    process (a process of its own cost 0.7 s of CPU per server; tests/security runs the
    command itself), with only the defaults and `db_url`; the token it prints."""
    parsed = build_parser().parse_args(["token", "create", *args, "--database-url", db_url])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = commands.token_create(
            load_settings(None, database_url=db_url), parsed.project, parsed.roles,
            parsed.host, parsed.expires, parsed.name)
    assert code == 0, err.getvalue()
    return out.getvalue().strip()


def db_upgrade(workdir: Path, db_url: str) -> None:
    """`segmentd db upgrade`: migrate once before starting servers with --no-migrate."""
    cfg = write_config(workdir / "upgrade.toml", E2E_CONFIG)
    out = subprocess.run(
        [SEGMENTD, "db", "upgrade", "--config", str(cfg), "--database-url", db_url],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def pg_admin_url(dbname: str) -> str:
    """The plain libpq URL of a database (what asyncpg and `--database-url` take)."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A new empty database of `kind` (sqlite or postgresql), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'segmentd.db'}"
        return
    name = f"segmentd_e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    create_pg_database(name)
    try:
        yield pg_admin_url(name)
    finally:
        drop_pg_database(name)


@contextmanager
def two_servers_on_postgresql(request, workdir: Path, config: dict | None = None
                              ) -> Iterator[tuple[str, list[Server]]]:
    """(db_url, [server_a, server_b]): one migrated PostgreSQL database, two processes on
    it, stopped (their logs printed if the test failed) and dropped afterwards."""
    with database("postgresql", workdir) as db_url:
        db_upgrade(workdir, db_url)
        servers = []
        try:
            for name in ("a", "b"):
                servers.append(start_server(workdir, db_url, name=name, migrate=False,
                                            config=config))
            yield db_url, servers
        finally:
            stop_servers(request, servers)


@contextmanager
def serving(workdir: Path, *, kind: str = "sqlite", name: str = "server",
            config: dict | None = None) -> Iterator[Server]:
    """A `segmentd serve` on a new database of `kind`, stopped and dropped afterwards."""
    with database(kind, workdir) as db_url:
        server = start_server(workdir, db_url, name=name, config=config)
        try:
            yield server
        finally:
            server.stop()
