"""Run Neutron's API conformance suites (tempest, neutron-tempest-plugin) against segmentd.

Started by bench/conformance/run with the conformance virtualenv's Python. It serves segmentd
from the shipped example config (only the database and port changed, token auth), makes a
token per test account with `segmentd token create`, starts identity_stub.py to hand those
tokens out, writes tempest.conf and accounts.yaml (static credentials), runs the selected
tests with `tempest run`, and prints passed/failed/skipped per module and in total.

The tests that run are the ones whose required extensions segmentd lists: tempest.conf's
[network-feature-enabled] api_extensions is exactly segmentd's GET /v2.0/extensions.
"""

from __future__ import annotations

import argparse
import csv
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


def tempest_conf(identity_url: str, accounts: Path, lock_dir: Path, log_file: Path,
                 extensions: list[str], admin: dict) -> str:
    return f"""[DEFAULT]
log_file = {log_file}
debug = true

[oslo_concurrency]
lock_path = {lock_dir}

[auth]
use_dynamic_credentials = false
test_accounts_file = {accounts}
default_credentials_domain_name = Default
create_isolated_networks = false
# Classes that force a project of their own (paging and sorting) get one from the stub.
admin_username = {admin["name"]}
admin_password = {admin["password"]}
admin_project_name = {admin["project_name"]}
admin_domain_name = Default

[identity]
auth_version = v3
uri_v3 = {identity_url}
region = RegionOne
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
    width = max([len(m) for m in per_module] + [5])
    lines = [f"{'module':<{width}}  passed  failed  skipped"]
    total: Counter = Counter()
    for module in sorted(per_module):
        c = per_module[module]
        total.update(c)
        lines.append(f"{module:<{width}}  {c['passed']:>6}  {c['failed']:>6}  {c['skipped']:>7}")
    lines.append(f"{'total':<{width}}  {total['passed']:>6}  {total['failed']:>6}  {total['skipped']:>7}")
    if failed:
        lines.append("\nfailed:")
        lines += [f"  {t}" for t in sorted(failed)]
    lines.append(f"\n{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    if out.exists():
        if any(out.iterdir()) and not (out / "tempest.conf").exists():
            raise SystemExit(f"conformance: {out} is not empty and holds no earlier run; "
                             "choose another --out")
        shutil.rmtree(out)
    (out / "state").mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    seg_port, id_port = free_port(), free_port()
    seg_url, id_url = f"http://127.0.0.1:{seg_port}", f"http://127.0.0.1:{id_port}/v3"
    config = out / "state" / "segmentd.toml"
    config.write_text(example_config(out / "state" / "segmentd.db", seg_port))
    bootstrap = secrets.token_urlsafe(32)
    procs: list[subprocess.Popen] = []
    try:
        with open(out / "segmentd.log", "w") as log:
            server = subprocess.Popen(
                [args.segmentd, "serve", "--config", str(config)], stdout=log, stderr=log,
                env={**os.environ, "SEGMENTD_BOOTSTRAP_TOKEN": bootstrap}, cwd=out / "state")
        procs.append(server)
        wait_for(f"{seg_url}/healthz", server, "segmentd")
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
        conf = out / "tempest.conf"
        conf.write_text(tempest_conf(id_url, accounts, out / "state" / "locks",
                                     out / "tempest.log", extensions,
                                     next(u for u in users if "admin" in u["roles"])))
        print(f"conformance: segmentd {seg_url}, identity stub {id_url}, "
              f"{len(extensions)} extensions; output in {out}", flush=True)
        with open(out / "tempest-run.txt", "w") as log:
            subprocess.run(
                [str(bin_dir / "tempest"), "run", "--config-file", str(conf),
                 "--regex", args.regex, "--exclude-list", str(HERE / "exclude.txt"),
                 "--concurrency", str(args.concurrency)],
                cwd=out, stdout=log, stderr=subprocess.STDOUT, check=False)
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
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    per_module, failed = summarize(csv_text)
    text = report(per_module, failed)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    if not per_module:
        print("conformance: no test ran; see tempest-run.txt", file=sys.stderr)
        return 2
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segmentd", required=True, help="the segmentd command to serve with")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "conformance"))
    parser.add_argument("--regex", default=DEFAULT_REGEX, help="tests to select (stestr regex)")
    parser.add_argument("--concurrency", type=int, default=2)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
