"""A minimal Identity (Keystone v3) stand-in for the conformance run: just what tempest asks
of it, handing out segmentd tokens as Keystone's tokens.

Static accounts (accounts.yaml): tempest sends `POST /v3/auth/tokens` (password method, project
scope), reads the token from X-Subject-Token and, from the body, the expiry, the user and
project and the catalog, whose `network` entry points at segmentd. Each static user's token
was made beforehand with `segmentd token create`. segmentd validates the token itself, so
the stub never sees the API traffic.

Dynamic credentials (the classes that force a project of their own, such as the paging and
sorting tests): tempest, as the configured admin, looks up the domain and roles, creates a
project and a user and assigns roles; the stub keeps them in memory and, on that user's first
authentication, makes a segmentd token for the project with `segmentd token create` (Keystone's
implied roles applied: admin implies member, member implies reader).

Run: python identity_stub.py SPEC.json PORT, where SPEC.json holds
{"users": [{"name", "password", "project_id", "project_name", "roles", "token"}],
 "network_url": "http://127.0.0.1:PORT", "token_command": ["segmentd", "token", "create", ...]}.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOMAIN = {"id": "default", "name": "Default", "enabled": True, "description": ""}
REGION = "RegionOne"
SEGMENTD_ROLES = ("admin", "member", "reader", "service")
IMPLIED = {"admin": {"member", "reader"}, "member": {"reader"}}  # Keystone's default implied roles


class Directory:
    """Users, projects, role assignments and the segmentd token of each (user, project)."""

    def __init__(self, spec: dict):
        self.lock = threading.Lock()
        self.network_url = spec["network_url"]
        self.token_command = spec["token_command"]
        self.roles = {r: {"id": r, "name": r, "domain_id": None} for r in SEGMENTD_ROLES}
        self.projects: dict[str, dict] = {}
        self.users: dict[str, dict] = {}  # by id
        self.assignments: dict[tuple[str, str], set[str]] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        for u in spec["users"]:
            self.projects[u["project_id"]] = self.project(u["project_id"], u["project_name"])
            self.users[u["name"]] = {"id": u["name"], "name": u["name"], "password": u["password"],
                                     "domain_id": DOMAIN["id"], "enabled": True}
            self.assignments[(u["name"], u["project_id"])] = set(u["roles"])
            self.tokens[(u["name"], u["project_id"])] = u["token"]

    @staticmethod
    def project(project_id: str, name: str, description: str = "") -> dict:
        return {"id": project_id, "name": name, "description": description, "enabled": True,
                "domain_id": DOMAIN["id"], "parent_id": DOMAIN["id"], "is_domain": False,
                "tags": [], "links": {}}

    def token_for(self, user: dict, project: dict) -> tuple[str, list[str]] | None:
        """The segmentd token of the user in the project, made on first use; None without
        a role segmentd knows."""
        key = (user["id"], project["id"])
        with self.lock:
            roles = set(self.assignments.get(key, ()))
            for role in list(roles):
                roles |= IMPLIED.get(role, set())
            known = sorted(roles & set(SEGMENTD_ROLES))
            if key not in self.tokens:
                if not known:
                    return None
                made = subprocess.run(
                    [*self.token_command, "--project", project["id"], "--roles", ",".join(known),
                     "--name", f"{user['name']}-{uuid.uuid4().hex[:8]}"],
                    check=True, capture_output=True, text=True)
                self.tokens[key] = made.stdout.strip()
            return self.tokens[key], sorted(roles)

    def is_admin_token(self, token: str | None) -> bool:
        with self.lock:
            return any(t == token and "admin" in self.assignments.get(k, ())
                       for k, t in self.tokens.items())


def token_body(d: Directory, user: dict, project: dict, roles: list[str], identity_url: str) -> dict:
    now = datetime.now(timezone.utc)
    stamp = "%Y-%m-%dT%H:%M:%S.000000Z"

    def service(kind: str, name: str, url: str) -> dict:
        return {"type": kind, "name": name, "id": kind, "endpoints": [
            {"id": f"{kind}-{iface}", "interface": iface, "region": REGION, "region_id": REGION,
             "url": url} for iface in ("public", "internal", "admin")]}

    return {"token": {
        "methods": ["password"],
        "issued_at": now.strftime(stamp),
        "expires_at": (now + timedelta(hours=12)).strftime(stamp),
        "user": {"id": user["id"], "name": user["name"], "domain": DOMAIN,
                 "password_expires_at": None},
        "project": {"id": project["id"], "name": project["name"],
                    "domain": {"id": DOMAIN["id"], "name": DOMAIN["name"]}},
        "roles": [{"id": r, "name": r} for r in roles],
        "catalog": [service("network", "neutron", d.network_url),
                    service("identity", "keystone", identity_url)],
        "is_domain": False,
    }}


class Handler(BaseHTTPRequestHandler):
    server_version = "identity-stub"
    directory: Directory

    def log_message(self, fmt, *args):  # the runner keeps this process's output in a file
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def _send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, title: str, message: str) -> None:
        self._send(status, {"error": {"code": status, "title": title, "message": message}})

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _path(self) -> str:
        return self.path.split("?")[0].rstrip("/")

    def _identity_url(self) -> str:
        return f"http://{self.headers.get('Host')}/v3"

    def _admin(self) -> bool:
        if self.directory.is_admin_token(self.headers.get("X-Auth-Token")):
            return True
        self._error(403, "Forbidden", "the identity API needs an admin token here")
        return False

    def do_GET(self):
        d, path = self.directory, self._path()
        if path in ("", "/v3"):
            self._send(200, {"version": {"id": "v3.14", "status": "stable", "links": [
                {"rel": "self", "href": self._identity_url() + "/"}]}})
        elif path == "/v3/auth/tokens":
            subject = self.headers.get("X-Subject-Token")
            for (user_id, project_id), token in list(d.tokens.items()):
                if token == subject and user_id in d.users and project_id in d.projects:
                    user, project = d.users[user_id], d.projects[project_id]
                    _, roles = d.token_for(user, project)
                    self._send(200, token_body(d, user, project, roles, self._identity_url()),
                               {"X-Subject-Token": subject})
                    return
            self._error(404, "Not Found", "token not found")
        elif not self._admin():
            return
        elif path == "/v3/domains":
            wanted = re.search(r"[?&]name=([^&]+)", self.path)
            match = wanted is None or wanted.group(1) == DOMAIN["name"]
            self._send(200, {"domains": [DOMAIN] if match else []})
        elif path == "/v3/roles":
            self._send(200, {"roles": list(d.roles.values())})
        elif path.startswith("/v3/projects/") and path.count("/") == 3:
            project = d.projects.get(path.rsplit("/", 1)[1])
            if project is None:
                self._error(404, "Not Found", "project not found")
            else:
                self._send(200, {"project": project})
        else:
            self._error(404, "Not Found", path)

    def do_POST(self):
        d, path = self.directory, self._path()
        if path == "/v3/auth/tokens":
            self._issue()
            return
        if not self._admin():
            return
        body = self._body()
        if path == "/v3/projects":
            p = body["project"]
            project = d.project(uuid.uuid4().hex, p["name"], p.get("description", ""))
            d.projects[project["id"]] = project
            self._send(201, {"project": project})
        elif path == "/v3/users":
            u = body["user"]
            user = {"id": uuid.uuid4().hex, "name": u["name"], "password": u.get("password"),
                    "domain_id": DOMAIN["id"], "enabled": True}
            d.users[user["id"]] = user
            self._send(201, {"user": {k: v for k, v in user.items() if k != "password"}})
        elif path == "/v3/roles":
            name = body["role"]["name"]
            d.roles.setdefault(name, {"id": name, "name": name, "domain_id": None})
            self._send(201, {"role": d.roles[name]})
        else:
            self._error(404, "Not Found", path)

    def do_PUT(self):
        d, path = self.directory, self._path()
        if not self._admin():
            return
        m = re.fullmatch(r"/v3/projects/([^/]+)/users/([^/]+)/roles/([^/]+)", path)
        if m:
            d.assignments.setdefault((m.group(2), m.group(1)), set()).add(m.group(3))
            self._send(204)
        elif re.fullmatch(r"/v3/(domains/[^/]+|system)/users/[^/]+/roles/[^/]+", path):
            self._send(204)  # domain and system roles mean nothing to segmentd
        else:
            self._error(404, "Not Found", path)

    def do_PATCH(self):
        if self._admin():
            self._send(200, {"domain": DOMAIN})

    def do_DELETE(self):
        d, path = self.directory, self._path()
        if not self._admin():
            return
        kind, _, ident = path.removeprefix("/v3/").partition("/")
        table = {"projects": d.projects, "users": d.users}.get(kind)
        if table is not None and table.pop(ident, None) is not None:
            self._send(204)
        else:
            self._error(404, "Not Found", path)

    def _issue(self) -> None:
        d = self.directory
        try:
            auth = self._body()["auth"]
            password = auth["identity"]["password"]["user"]
        except (ValueError, KeyError, TypeError):
            self._error(400, "Bad Request", "password authentication only")
            return
        user = d.users.get(password.get("id") or "") or next(
            (u for u in d.users.values() if u["name"] == password.get("name")), None)
        if user is None or user["password"] != password.get("password"):
            self._error(401, "Unauthorized", "The request you have made requires authentication.")
            return
        scope = (auth.get("scope") or {}).get("project") or {}
        candidates = [p for (uid, pid) in d.assignments if uid == user["id"]
                      for p in [d.projects.get(pid)] if p is not None]
        project = next((p for p in candidates
                        if p["id"] == scope.get("id") or p["name"] == scope.get("name")), None)
        if project is None and not scope and candidates:
            project = candidates[0]
        found = d.token_for(user, project) if project is not None else None
        if found is None:
            self._error(401, "Unauthorized", f"user {user['name']} has no role on that project")
            return
        token, roles = found
        self._send(201, token_body(d, user, project, roles, self._identity_url()),
                   {"X-Subject-Token": token})


def main() -> None:
    spec_file, port = sys.argv[1], int(sys.argv[2])
    with open(spec_file) as f:
        Handler.directory = Directory(json.load(f))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
