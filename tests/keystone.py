"""A real Keystone for the tests: keystone 30.0.0 under gunicorn, on SQLite, with fernet tokens.

Keystone runs from a venv of its own, .venv-keystone (scripts/_keystone_venv.sh, which
scripts/test runs; SEGMENTD_KEYSTONE_VENV elsewhere): its SQLAlchemy, oslo.* and Flask pins
stay out of segmentd's .venv. A bootstrapped state (the SQLite database and the three key
repositories) is built once per checkout under .cache/, under a file lock so that parallel
test processes build it once, and each server starts on a copy of it: about 3 s instead of
the 15 s of keystone-manage's four steps.

The bootstrapped state: user `admin` (password in the state's `admin-password` file, random)
with the admin role on project `admin` and on the system, the roles admin, manager, member,
reader and service (admin implies manager implies member implies reader), project
`service`, region RegionOne and the identity endpoints (public, internal, admin) at the
server's own URL.

Keystone reads the process's own command line as its options, so gunicorn gets its settings
only from a config file named in GUNICORN_CMD_ARGS; gunicorn flags on the command line make
its workers exit with code 2.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import inspect
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYSTONE_VERSION = "30.0.0"  # as pinned in scripts/_keystone_venv.sh
KEYSTONE_VENV = Path(os.environ.get("SEGMENTD_KEYSTONE_VENV") or ROOT / ".venv-keystone")
CACHE = ROOT / ".cache"
REGION = "RegionOne"
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
SERVICE_PROJECT = "service"
DEFAULT_DOMAIN = "Default"  # its name; its id is "default"
TOKEN_EXPIRATION = 3600  # Keystone's default, seconds
KEY_REPOSITORIES = {"fernet_tokens": "fernet-keys", "fernet_receipts": "receipt-keys",
                    "credential": "credential-keys"}
# Ports from below the kernel's ephemeral range (32768-60999 here), as for the private
# RabbitMQ nodes (tests/events/brokers.py): a stopped server comes back on its own port, which
# an outgoing connection's local end could take in between if it were ephemeral.
PORT_RANGE = (20000, 32000)
START_TIMEOUT = 60.0  # gunicorn retries a taken port for 5 s; start-up itself takes ~3 s
STOP_TIMEOUT = 10.0
MANAGE_TIMEOUT = 120.0


def venv_bin(name: str) -> str:
    """An executable of the Keystone venv; a missing venv fails the test, saying what to run."""
    path = KEYSTONE_VENV / "bin" / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: the Keystone tests need the venv that scripts/test "
                    f"creates (or run scripts/_keystone_venv.sh)", pytrace=False)
    return str(path)


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for Keystone")


def write_conf(base: Path, token_expiration: int = TOKEN_EXPIRATION,
               conf: dict[str, dict[str, object]] | None = None) -> Path:
    """keystone.conf for the state in `base`; `conf` adds or overrides {section: {key: value}}."""
    sections: dict[str, dict[str, object]] = {
        # oslo.log to stderr, which gunicorn's log file takes (with gunicorn's own lines).
        "DEFAULT": {"use_stderr": True},
        "database": {"connection": f"sqlite:///{base / 'keystone.db'}"},
        "token": {"provider": "fernet", "expiration": token_expiration},
        **{section: {"key_repository": base / folder}
           for section, folder in KEY_REPOSITORIES.items()},
        # bcrypt's minimum (tests only): a password login took 28 ms here, 310 at the default 12.
        "identity": {"password_hash_rounds": 4},
        # A validation took 12 ms here, 860 without the cache; per process, so one gunicorn
        # worker (which then sees every revocation).
        "cache": {"enabled": True, "backend": "oslo_cache.dict"},
    }
    for section, values in (conf or {}).items():
        sections.setdefault(section, {}).update(values)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]
        lines.append("")
    path = base / "keystone.conf"
    path.write_text("\n".join(lines))
    return path


def _manage(base: Path, *args: str) -> subprocess.Popen:
    log = open(base / "manage.log", "ab")  # noqa: SIM115 (the child owns it)
    proc = subprocess.Popen(
        [venv_bin("keystone-manage"), "--config-file", str(base / "keystone.conf"), *args],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env(base))
    log.close()
    return proc


def _wait_all(base: Path, procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.wait(MANAGE_TIMEOUT):
            raise RuntimeError(f"{' '.join(proc.args[3:])} failed (exit code {proc.returncode})"
                               f":\n{_tail(base / 'manage.log')}")


def build_template(base: Path) -> None:
    """A bootstrapped state in `base`: keystone-manage's steps, then the service project."""
    for folder in KEY_REPOSITORIES.values():
        (base / folder).mkdir(mode=0o700)
    write_conf(base)
    password = secrets.token_urlsafe(16)
    (base / "admin-password").write_text(password)
    owner = ("--keystone-user", pwd.getpwuid(os.getuid()).pw_name,
             "--keystone-group", grp.getgrgid(os.getgid()).gr_name)  # of the key files
    # The key repositories and the database are independent: ~2.5 s of imports each, at once.
    _wait_all(base, [_manage(base, "db_sync"), _manage(base, "fernet_setup", *owner),
                     _manage(base, "credential_setup", *owner)])
    url = "http://127.0.0.1:1/v3/"  # rewritten to each server's own port
    _wait_all(base, [_manage(base, "bootstrap", "--bootstrap-username", ADMIN_USER,
                             "--bootstrap-password", password,
                             "--bootstrap-project-name", ADMIN_PROJECT,
                             "--bootstrap-region-id", REGION,
                             "--bootstrap-public-url", url, "--bootstrap-internal-url", url,
                             "--bootstrap-admin-url", url)])
    # bootstrap makes the roles admin, manager, member, reader and service (Keystone 30); a
    # project for service users it does not.
    server = KeystoneServer(base)
    try:
        server.start()
        if not server.get("/roles", params={"name": "service"})["roles"]:
            server.post("/roles", {"role": {"name": "service"}})
        server.create_project(SERVICE_PROJECT)
        server.stop()
    finally:
        server.close()
    for name in ("keystone.conf", "gunicorn.conf.py", "keystone.log", "manage.log"):
        (base / name).unlink(missing_ok=True)


def template() -> Path:
    """The bootstrapped state, built on first use (once, whatever the number of processes)."""
    # Named after what builds it: a changed recipe builds a new one.
    recipe = "".join(inspect.getsource(f) for f in (build_template, write_conf))
    digest = hashlib.sha256(f"{KEYSTONE_VERSION}\n{recipe}".encode()).hexdigest()[:12]
    path = CACHE / f"keystone-{KEYSTONE_VERSION}-template-{digest}"
    if path.is_dir():
        return path
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait
        if path.is_dir():
            return path
        for stale in CACHE.glob(f"{path.name}.building-*"):  # of a build that died
            shutil.rmtree(stale, ignore_errors=True)
        building = CACHE / f"{path.name}.building-{os.getpid()}"
        building.mkdir()
        try:
            build_template(building)
            building.rename(path)  # whole or not at all
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return path


def _child_env(base: Path) -> dict[str, str]:
    """This environment without anyone's OS_* client settings, with Keystone's config folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_KEYSTONE_CONFIG_DIR"] = str(base)
    return env


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def expiry(body: dict) -> float:
    """A token body's expires_at as a Unix time."""
    return datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()


class KeystoneServer:
    """Keystone on a copy of the bootstrapped state in `base`, under one gunicorn worker.

    start() copies the state on first use and picks a free port; stop() and start() again
    bring it back on the same port with the same state (users, tokens, keys). The helpers
    speak Keystone's API with an admin token, as an operator's client would.
    """

    def __init__(self, base: Path, *, token_expiration: int = TOKEN_EXPIRATION,
                 conf: dict[str, dict[str, object]] | None = None) -> None:
        self.base = base
        self.token_expiration = token_expiration
        self.conf = conf
        self.port: int | None = None
        self.log_path = base / "keystone.log"  # gunicorn's and Keystone's lines
        self.shared = False  # the session's server: never stopped by a test
        self._proc: subprocess.Popen | None = None
        self._http: httpx.Client | None = None
        self._admin: tuple[str, float] | None = None  # (token, expires at)
        self._role_ids: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The identity API's URL, what auth_url names: http://127.0.0.1:PORT/v3."""
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def admin_password(self) -> str:
        return (self.base / "admin-password").read_text()

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30.0)
        return self._http

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- the process ---------------------------------------------------------------------

    def start(self) -> None:
        """Serve, and return once GET /v3 answers; on the first start copy the state and pick
        a port, afterwards keep both."""
        if self.shared:
            raise RuntimeError("the session's shared Keystone is never restarted: use "
                               "private_keystone")
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"Keystone is already running on {self.url}")
        if not (self.base / "keystone.db").exists():
            shutil.copytree(template(), self.base, dirs_exist_ok=True)
        first = self.port is None
        for attempt in range(3):
            if first:
                self.port = _free_port()
            self._prepare()
            if self._serve():
                return
            taken = "in use" in _tail(self.log_path, 20)
            if first and taken and attempt < 2:  # taken since _free_port(): another port
                continue
            raise RuntimeError(f"Keystone did not start on {self.url} (exit code "
                               f"{self._proc.returncode}):\n{_tail(self.log_path)}")

    def _prepare(self) -> None:
        write_conf(self.base, self.token_expiration, self.conf)
        (self.base / "gunicorn.conf.py").write_text(
            'wsgi_app = "keystone.wsgi.api:application"\n'
            f'bind = "127.0.0.1:{self.port}"\n'
            "workers = 1\n"  # the dict cache is per process: one sees every revocation
            "control_socket_disable = True\n"
            'accesslog = "-"\n'
            "graceful_timeout = 5\n")
        with sqlite3.connect(self.base / "keystone.db") as db:
            db.execute("UPDATE endpoint SET url = ? WHERE service_id IN "
                       "(SELECT id FROM service WHERE type = 'identity')", (self.url + "/",))
        db.close()
        self._close_http()  # the port may have changed

    def _serve(self) -> bool:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child owns it)
        env = {**_child_env(self.base),
               "GUNICORN_CMD_ARGS": f"--config {self.base / 'gunicorn.conf.py'}"}
        self._proc = subprocess.Popen([venv_bin("gunicorn")], cwd=self.base, env=env,
                                      stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                if httpx.get(self.url, timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self._terminate(graceful=False)
        return False

    def stop(self) -> None:
        """Stop serving (the port refuses connections); start() brings it back."""
        if self.shared:
            raise RuntimeError("the session's shared Keystone is never stopped: use "
                               "private_keystone")
        self._terminate(graceful=True)

    def _terminate(self, graceful: bool) -> None:
        self._close_http()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if graceful and proc.poll() is None:
            proc.terminate()  # gunicorn's master stops its worker and exits: ~1 s
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of it is left (its worker)
        except ProcessLookupError:
            pass
        proc.wait(STOP_TIMEOUT)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel and never
        answered, as with a hung Keystone; resume() thaws it."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self.shared:
            raise RuntimeError("the session's shared Keystone is never paused: use "
                               "private_keystone")
        assert self._proc is not None and self._proc.poll() is None, "Keystone is not running"
        os.killpg(self._proc.pid, sig)

    def close(self) -> None:
        """Stop for good, at once (the fixtures' teardown: the state is thrown away)."""
        self._terminate(graceful=False)

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- the API -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, token: str | None = None,
                expect: tuple[int, ...] = (200, 201, 204), **kw) -> httpx.Response:
        """`method path` (under /v3) with `token`, the admin's by default; a status outside
        `expect` fails, with the response and where Keystone's log is."""
        headers = {"X-Auth-Token": token or self.admin_token(), **kw.pop("headers", {})}
        resp = self.http.request(method, path, headers=headers, **kw)
        if resp.status_code not in expect:
            raise AssertionError(f"Keystone: {method} {path} -> {resp.status_code} "
                                 f"{resp.text[:1000]} (log: {self.log_path})")
        return resp

    def get(self, path: str, **kw) -> dict:
        return self.request("GET", path, **kw).json()

    def post(self, path: str, json: dict, **kw) -> dict:
        return self.request("POST", path, json=json, **kw).json()

    def _issue(self, auth: dict) -> tuple[str, dict]:
        resp = self.http.post("/auth/tokens", json={"auth": auth})
        if resp.status_code != 201:
            raise AssertionError(f"Keystone refused a token: {resp.status_code} "
                                 f"{resp.text[:1000]} (log: {self.log_path})")
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def admin_token(self) -> str:
        """A token of the bootstrap admin on project `admin` (Keystone 30's default policies
        let the admin role on a project call every identity API these helpers use), reused
        until a second before it expires. Not system-scoped: Keystone 30 took 60 ms to
        authenticate each request with a system-scoped token, 8 ms with this one."""
        if self._admin is None or self._admin[1] - time.time() < 1.0:
            token, body = self.issue_token(ADMIN_USER, self.admin_password, project=ADMIN_PROJECT)
            self._admin = (token, expiry(body))
        return self._admin[0]

    def issue_token(self, user: str, password: str, project: str | None = None, *,
                    system: bool = False, domain: str | None = None,
                    user_domain: str = DEFAULT_DOMAIN,
                    project_domain: str = DEFAULT_DOMAIN) -> tuple[str, dict]:
        """(token, its body: the response's `token` object) for user `user` (a name in
        `user_domain`, a domain name) by password: scoped to `project` (a name in
        `project_domain`), the system, or `domain` (a name); unscoped when none."""
        auth: dict = {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": user_domain}, "password": password}}}}
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
        elif system:
            auth["scope"] = {"system": {"all": True}}
        elif domain is not None:
            auth["scope"] = {"domain": {"name": domain}}
        return self._issue(auth)

    def issue_application_credential_token(self, credential_id: str,
                                           secret: str) -> tuple[str, dict]:
        """(token, body) for an application credential (scoped to its project)."""
        return self._issue({"identity": {"methods": ["application_credential"],
                                         "application_credential": {"id": credential_id,
                                                                    "secret": secret}}})

    def validate(self, token: str) -> httpx.Response:
        """GET /v3/auth/tokens for `token` with the admin token: 200 with its body, or 404."""
        return self.request("GET", "/auth/tokens", headers={"X-Subject-Token": token},
                            expect=(200, 404))

    def revoke_token(self, token: str) -> None:
        self.request("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})

    def role_id(self, name: str) -> str:
        if name not in self._role_ids:
            (role,) = self.get("/roles", params={"name": name})["roles"]
            self._role_ids[name] = role["id"]
        return self._role_ids[name]

    def create_domain(self, name: str) -> str:
        return self.post("/domains", {"domain": {"name": name}})["domain"]["id"]

    def create_project(self, name: str, domain_id: str = "default") -> str:
        return self.post("/projects", {"project": {"name": name,
                                                   "domain_id": domain_id}})["project"]["id"]

    def delete_project(self, project_id: str) -> None:
        self.request("DELETE", f"/projects/{project_id}")

    def create_user(self, name: str, password: str, domain_id: str = "default",
                    project: str | None = None, roles: tuple[str, ...] | list[str] = ("member",)
                    ) -> str:
        """A user; with `project` (an id), `roles` (names) on that project."""
        user_id = self.post("/users", {"user": {"name": name, "password": password,
                                                "domain_id": domain_id}})["user"]["id"]
        for role in roles if project is not None else ():
            self.request("PUT", f"/projects/{project}/users/{user_id}/roles/{self.role_id(role)}")
        return user_id

    def assign_system_role(self, user_id: str, role: str) -> None:
        self.request("PUT", f"/system/users/{user_id}/roles/{self.role_id(role)}")

    def create_application_credential(self, user_id: str, user_token: str,
                                      name: str) -> tuple[str, str]:
        """(id, secret) of an application credential of the user, on the project of
        `user_token` (the user's own, project-scoped), with its roles."""
        body = self.post(f"/users/{user_id}/application_credentials",
                         {"application_credential": {"name": name}}, token=user_token)
        return body["application_credential"]["id"], body["application_credential"]["secret"]

    def register_service(self, url: str) -> str:
        """Service `segmentd` of type network, with public, internal and admin endpoints in
        RegionOne at `url`, in place of an earlier registration; its id."""
        for service in self.get("/services", params={"type": "network"})["services"]:
            if service["name"] == "segmentd":
                self.request("DELETE", f"/services/{service['id']}")  # and its endpoints
        service_id = self.post("/services", {"service": {"type": "network",
                                                         "name": "segmentd"}})["service"]["id"]
        for interface in ("public", "internal", "admin"):
            self.post("/endpoints", {"endpoint": {"service_id": service_id, "url": url,
                                                  "interface": interface,
                                                  "region_id": REGION}})
        return service_id
