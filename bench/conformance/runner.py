"""Run Neutron's API conformance suites (tempest, neutron-tempest-plugin) against segmentd.

Started by bench/conformance/run with the conformance virtualenv's Python. It serves segmentd
from the shipped example config (only the database and port changed, token auth), makes a
token per test account with `segmentd token create`, starts identity_stub.py to hand those
tokens out, writes tempest.conf and accounts.yaml (static credentials), runs the selected
tests with `tempest run`, and prints run/passed/failed/skipped per module and in total.

With --keystone it uses a real Keystone instead (tests/keystone.py's KeystoneServer, from
.venv-keystone): segmentd runs with auth_mode = "keystone", is registered in Keystone's
catalog as the network service, and tempest makes a project and users per test class
(dynamic credentials) as the Keystone admin.

The tests that run are the ones whose required extensions segmentd lists: tempest.conf's
[network-feature-enabled] api_extensions is exactly segmentd's GET /v2.0/extensions.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_REGEX = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)\."
# subunit2csv's status words
STATUS_COLUMN = {"success": "passed", "xfail": "passed", "failure": "failed", "fail": "failed",
                 "error": "failed", "uxsuccess": "failed", "skip": "skipped"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"conformance: {what} exited with {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"conformance: {what} did not answer {url} within {seconds:.0f} s")


def example_config(db_path: Path, port: int) -> str:
    """The shipped example config with only database_url and port changed."""
    text = (ROOT / "etc" / "segmentd.example.toml").read_text()
    text, n_db = re.subn(r'(?m)^database_url = .*$', f'database_url = "sqlite:///{db_path}"', text)
    text, n_port = re.subn(r"(?m)^port = .*$", f"port = {port}", text)
    if (n_db, n_port) != (1, 1):
        raise SystemExit("conformance: etc/segmentd.example.toml no longer has one "
                         "database_url and one port line to change")
    return text


def keystone_config(db_path: Path, port: int, keystone: dict) -> str:
    """The example config as for the stub mode, with auth_mode = "keystone" and a [keystone]
    table (segmentd's own user); everything else, rate limits included, as shipped."""
    text, n_mode = re.subn(r'(?m)^auth_mode = .*$', 'auth_mode = "keystone"',
                           example_config(db_path, port))
    if n_mode != 1:
        raise SystemExit("conformance: etc/segmentd.example.toml no longer has one auth_mode "
                         "line to change")
    table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in keystone.items())
    return f"{text.rstrip()}\n\n[keystone]\n{table}\n"


def create_token(segmentd: str, config: Path, project: str, roles: str, name: str) -> str:
    out = subprocess.run(
        [segmentd, "token", "create", "--config", str(config), "--project", project,
         "--roles", roles, "--name", name],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def extension_aliases(url: str, token: str) -> list[str]:
    req = urllib.request.Request(f"{url}/v2.0/extensions", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return sorted(e["alias"] for e in json.load(resp)["extensions"])


def make_users(segmentd: str, config: Path, bootstrap: str, concurrency: int) -> list[dict]:
    """The accounts a test class may hold at once, for each worker: a member and a reader
    of one project (tempest's primary and project_reader personas share a project), a user
    of another project (alt), and an admin."""
    users = []

    def add(name, project, project_name, roles, token_roles, token=None, **extra):
        token = token or create_token(segmentd, config, project, token_roles, name)
        users.append({"name": name, "password": secrets.token_hex(8), "project_id": project,
                      "project_name": project_name, "roles": roles, "token": token, **extra})

    for i in range(concurrency):
        # Listed first: tempest hands out the first free account without roles as alt.
        add(f"tempest-alt-{i}", uuid.uuid4().hex, f"tempest-alt-{i}", [], "member,reader")
    for i in range(concurrency):
        project = uuid.uuid4().hex
        add(f"tempest-member-{i}", project, f"tempest-{i}", ["member"], "member,reader")
        add(f"tempest-reader-{i}", project, f"tempest-{i}", ["reader"], "reader")
        # The bootstrap token is project "admin"'s; further admins get tokens of their own.
        add(f"tempest-admin-{i}", "admin", "admin", ["admin"], "admin,member,reader",
            token=bootstrap if i == 0 else None, types=["admin"])
    return users


def accounts_yaml(users: list[dict]) -> str:
    lines = []
    for u in users:
        lines += [f"- username: '{u['name']}'", f"  project_name: '{u['project_name']}'",
                  f"  project_id: '{u['project_id']}'",
                  f"  password: '{u['password']}'"]
        if u["roles"]:
            lines.append(f"  roles: [{', '.join(u['roles'])}]")
        if u.get("types"):
            lines.append(f"  types: [{', '.join(u['types'])}]")
    return "\n".join(lines) + "\n"


def static_auth(accounts: Path, admin: dict) -> str:
    """[auth] of the stub mode: static accounts, made beforehand."""
    return f"""use_dynamic_credentials = false
test_accounts_file = {accounts}
# Classes that force a project of their own (paging and sorting) get one from the stub.
admin_username = {admin["name"]}
admin_password = {admin["password"]}
admin_project_name = {admin["project_name"]}
admin_domain_name = Default"""


def dynamic_auth(admin_password: str) -> str:
    """[auth] of the Keystone mode: tempest, as Keystone's bootstrap admin, makes a project
    and users per test class (primary and alt get the member role, project_reader reader,
    admin admin) and deletes them afterwards. No tempest_roles: those would be added to
    every user, the readers too."""
    return f"""use_dynamic_credentials = true
admin_username = admin
admin_password = {admin_password}
admin_project_name = admin
admin_domain_name = Default"""


def tempest_conf(identity_url: str, auth: str, lock_dir: Path, log_file: Path,
                 extensions: list[str]) -> str:
    return f"""[DEFAULT]
log_file = {log_file}
debug = true

[oslo_concurrency]
lock_path = {lock_dir}

[auth]
{auth}
default_credentials_domain_name = Default
# No network, subnet and router per project: segmentd has no routers.
create_isolated_networks = false

[identity]
auth_version = v3
uri_v3 = {identity_url}
region = RegionOne
v3_endpoint_type = public
admin_role = admin
default_domain_id = default
disable_ssl_certificate_validation = true

[identity-feature-enabled]
api_v2 = false

[service_available]
neutron = true
nova = false
glance = false
cinder = false
swift = false
heat = false

[network]
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
project_networks_reachable = false
public_network_id =
floating_network_name =

[network-feature-enabled]
ipv6 = true
ipv6_subnet_attributes = true
port_admin_state_change = true
api_extensions = {",".join(extensions)}

[validation]
run_validation = false

[neutron_plugin_options]
provider_vlans = physnet1
available_type_drivers = flat,vlan,vxlan,geneve
"""


def summarize(csv_text: str) -> tuple[dict[str, Counter], list[str]]:
    """Counts per module (the test id up to its class) and the failed test ids."""
    per_module: dict[str, Counter] = defaultdict(Counter)
    failed = []
    for row in csv.DictReader(io.StringIO(csv_text)):
        test_id = re.sub(r"\[.*\]$", "", row["test"])
        fixture = re.match(r"^\w+ \((.+)\)$", test_id)  # setUpClass (module.Class)
        parts = (fixture.group(1) if fixture else test_id).split(".")
        module = ".".join(parts[:-1] if fixture else parts[:-2])
        column = STATUS_COLUMN.get(row["status"], row["status"])
        per_module[module][column] += 1
        if column == "failed":
            failed.append(row["test"])
    return per_module, failed


def report(per_module: dict[str, Counter], failed: list[str]) -> str:
    """A table per module: run (tests stestr ran, the skipped ones included, as its "Ran"),
    passed, failed, skipped; the failed test ids; a closing line with the totals."""
    width = max([len(m) for m in per_module] + [5])

    def row(name: str, c: Counter) -> str:
        ran = c["passed"] + c["failed"] + c["skipped"]
        return (f"{name:<{width}}  {ran:>4}  {c['passed']:>6}  {c['failed']:>6}  "
                f"{c['skipped']:>7}")

    lines = [f"{'module':<{width}}   run  passed  failed  skipped"]
    total: Counter = Counter()
    for module in sorted(per_module):
        total.update(per_module[module])
        lines.append(row(module, per_module[module]))
    lines.append(row("total", total))
    if failed:
        lines.append("\nfailed:")
        lines += [f"  {t}" for t in sorted(failed)]
    ran = total["passed"] + total["failed"] + total["skipped"]
    lines.append(f"\n{ran} run: {total['passed']} passed, {total['failed']} failed, "
                 f"{total['skipped']} skipped")
    return "\n".join(lines)


# The launcher's own variables, which segmentd would read as settings (SEGMENTD_ prefix).
LAUNCHER_VARIABLES = ("SEGMENTD_VENV", "SEGMENTD_CONFORMANCE_VENV", "SEGMENTD_KEYSTONE_VENV")


def serve_segmentd(segmentd: str, config: Path, out: Path, env: dict[str, str],
                   procs: list[subprocess.Popen]) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    with open(out / "segmentd.log", "w") as log:
        server = subprocess.Popen(
            [segmentd, "serve", "--config", str(config)], stdout=log, stderr=log,
            env={**environ, **env}, cwd=out / "state")
    procs.append(server)


def stub_setup(args: argparse.Namespace, out: Path, procs: list[subprocess.Popen]
               ) -> tuple[str, list[str], str]:
    """segmentd with token auth and the identity stub; (identity URL, extensions, [auth])."""
    seg_port, id_port = free_port(), free_port()
    seg_url, id_url = f"http://127.0.0.1:{seg_port}", f"http://127.0.0.1:{id_port}/v3"
    config = out / "state" / "segmentd.toml"
    config.write_text(example_config(out / "state" / "segmentd.db", seg_port))
    bootstrap = secrets.token_urlsafe(32)
    serve_segmentd(args.segmentd, config, out, {"SEGMENTD_BOOTSTRAP_TOKEN": bootstrap}, procs)
    wait_for(f"{seg_url}/healthz", procs[-1], "segmentd")
    extensions = extension_aliases(seg_url, bootstrap)
    users = make_users(args.segmentd, config, bootstrap, args.concurrency)
    users_file = out / "state" / "identity-users.json"
    users_file.write_text(json.dumps({
        "users": users, "network_url": seg_url,
        "token_command": [args.segmentd, "token", "create", "--config", str(config)],
    }))
    with open(out / "identity-stub.log", "w") as log:
        stub = subprocess.Popen(
            [sys.executable, str(HERE / "identity_stub.py"), str(users_file), str(id_port)],
            stdout=log, stderr=log)
    procs.append(stub)
    wait_for(id_url, stub, "the identity stub")
    accounts = out / "state" / "accounts.yaml"
    accounts.write_text(accounts_yaml(users))
    print(f"conformance: segmentd {seg_url}, identity stub {id_url}, "
          f"{len(extensions)} extensions; output in {out}", flush=True)
    return id_url, extensions, static_auth(
        accounts, next(u for u in users if "admin" in u["roles"]))


def keystone_module():
    """tests/keystone.py, loaded by path (its name `keystone` is Keystone's own package's)."""
    spec = importlib.util.spec_from_file_location("segmentd_tests_keystone",
                                                  ROOT / "tests" / "keystone.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def keystone_setup(args: argparse.Namespace, out: Path, cleanup: list
                   ) -> tuple[str, list[str], str]:
    """A real Keystone, segmentd in Keystone mode registered in its catalog as the network
    service; (identity URL, extensions, [auth])."""
    ks = keystone_module()
    server = ks.KeystoneServer(out / "keystone")
    cleanup.append(server.close)
    started = time.monotonic()
    server.start()
    print(f"conformance: Keystone {ks.KEYSTONE_VERSION} at {server.url} "
          f"({time.monotonic() - started:.1f} s; log {server.log_path})", flush=True)
    # segmentd's own user: the service role on project service lets it validate tokens.
    password = secrets.token_urlsafe(16)
    (service_project,) = server.get("/projects", params={"name": ks.SERVICE_PROJECT})["projects"]
    server.create_user("segmentd", password, project=service_project["id"], roles=("service",))
    seg_port = free_port()
    seg_url = f"http://127.0.0.1:{seg_port}"
    config = out / "state" / "segmentd.toml"
    config.write_text(keystone_config(out / "state" / "segmentd.db", seg_port, {
        "auth_url": server.url, "username": "segmentd", "password": password,
        "project_name": ks.SERVICE_PROJECT, "user_domain_name": ks.DEFAULT_DOMAIN,
        "project_domain_name": ks.DEFAULT_DOMAIN}))
    server.register_service(seg_url)
    procs: list[subprocess.Popen] = []
    cleanup.append(lambda: stop(procs))
    serve_segmentd(args.segmentd, config, out, {}, procs)
    wait_for(f"{seg_url}/healthz", procs[-1], "segmentd")
    # What tempest will do: the admin's token, segmentd found in its catalog.
    token, body = server.issue_token(ks.ADMIN_USER, server.admin_password,
                                     project=ks.ADMIN_PROJECT)
    (network,) = [s for s in body["catalog"] if s["type"] == "network"]
    if {e["url"].rstrip("/") for e in network["endpoints"]} != {seg_url}:
        raise SystemExit(f"conformance: Keystone's catalog lists {network['endpoints']} as "
                         f"the network service, not {seg_url}")
    extensions = extension_aliases(seg_url, token)
    print(f"conformance: segmentd {seg_url} (auth_mode keystone), {len(extensions)} "
          f"extensions; output in {out}", flush=True)
    return server.url, extensions, dynamic_auth(server.admin_password)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    if out.exists():
        if any(out.iterdir()) and not (out / "tempest.conf").exists():
            raise SystemExit(f"conformance: {out} is not empty and holds no earlier run; "
                             "choose another --out")
        shutil.rmtree(out)
    (out / "state").mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    cleanup: list = []  # in reverse order: segmentd before the identity service
    started = time.monotonic()
    try:
        if args.keystone:
            id_url, extensions, auth = keystone_setup(args, out, cleanup)
        else:
            procs: list[subprocess.Popen] = []
            cleanup.append(lambda: stop(procs))
            id_url, extensions, auth = stub_setup(args, out, procs)
        conf = out / "tempest.conf"
        conf.write_text(tempest_conf(id_url, auth, out / "state" / "locks",
                                     out / "tempest.log", extensions))
        set_up = time.monotonic() - started
        with open(out / "tempest-run.txt", "w") as log:
            subprocess.run(
                [str(bin_dir / "tempest"), "run", "--config-file", str(conf),
                 "--regex", args.regex, "--exclude-list", str(HERE / "exclude.txt"),
                 "--concurrency", str(args.concurrency)],
                cwd=out, stdout=log, stderr=subprocess.STDOUT, check=False)
        tests = time.monotonic() - started - set_up
        stream = subprocess.run([str(bin_dir / "stestr"), "last", "--subunit"], cwd=out,
                                capture_output=True, check=False).stdout
        (out / "results.subunit").write_bytes(stream)
        csv_text = subprocess.run([str(bin_dir / "subunit2csv")], input=stream,
                                  capture_output=True, check=False).stdout.decode()
        (out / "results.csv").write_text(csv_text)
        with open(out / "failing.txt", "w") as log:
            subprocess.run([str(bin_dir / "stestr"), "failing"], cwd=out, stdout=log,
                           stderr=subprocess.STDOUT, check=False)
    finally:
        for close in reversed(cleanup):
            close()
    per_module, failed = summarize(csv_text)
    text = report(per_module, failed)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"conformance: set-up {set_up:.0f} s, tests {tests:.0f} s "
          f"(concurrency {args.concurrency})")
    if not per_module:
        print("conformance: no test ran; see tempest-run.txt", file=sys.stderr)
        return 2
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segmentd", required=True, help="the segmentd command to serve with")
    parser.add_argument("--keystone", action="store_true",
                        help="a real Keystone (tests/keystone.py) and dynamic credentials "
                             "instead of the identity stub")
    parser.add_argument("--out", help="the run's folder (default bench/results/conformance, "
                                      "or conformance-keystone with --keystone)")
    parser.add_argument("--regex", default=DEFAULT_REGEX, help="tests to select (stestr regex)")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if args.out is None:
        args.out = str(ROOT / "bench" / "results"
                       / ("conformance-keystone" if args.keystone else "conformance"))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
