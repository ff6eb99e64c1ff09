"""segmentd in Keystone mode against a real Keystone: a cloud of projects and users, and
`segmentd serve` on the shipped example config with only auth_mode and [keystone] added."""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import (
    EXAMPLE_CONFIG,
    Server,
    bootstrap_tokens,
    start_server,
    stop_servers,
)
from tests.keystone import SERVICE_PROJECT, KeystoneServer

PASSWORD = "pw-" + uuid.uuid4().hex[:12]  # every test user's; Keystone hashes it cheaply


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@dataclass
class Cloud:
    """A Keystone with segmentd registered in its catalog, and the people using it."""

    keystone: KeystoneServer
    suffix: str  # makes this cloud's names unique in the shared Keystone
    projects: dict[str, str] = field(default_factory=dict)  # name -> id
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    service_user: str = ""

    def add_project(self, name: str) -> str:
        self.projects[name] = self.keystone.create_project(f"{name}-{self.suffix}")
        return self.projects[name]

    def add_user(self, name: str, project: str | None, roles=("member",),
                 domain_id: str = "default") -> str:
        project_id = self.projects.get(project) if project else None
        self.users[name] = self.keystone.create_user(
            self.user_name(name), PASSWORD, domain_id=domain_id, project=project_id,
            roles=roles)
        return self.users[name]

    def user_name(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    def token(self, user: str, project: str | None, **kw) -> str:
        """A Keystone token of `user` (a short name) on `project` (a short name)."""
        return self.keystone.issue_token(
            self.user_name(user), PASSWORD,
            project=f"{project}-{self.suffix}" if project else None, **kw)[0]

    def keystone_section(self, **overrides) -> dict:
        return {"auth_url": self.keystone.url, "username": self.user_name(self.service_user),
                "password": PASSWORD, "project_name": SERVICE_PROJECT,
                "user_domain_name": "Default", "project_domain_name": "Default", **overrides}


def make_cloud(keystone: KeystoneServer) -> Cloud:
    """Projects p1 and p2; alice (member of p1), bob (member of p2), carol (reader of p1),
    and segmentd's own user with the service role on project `service`."""
    cloud = Cloud(keystone, uuid.uuid4().hex[:8])
    (service,) = keystone.get("/projects", params={"name": SERVICE_PROJECT})["projects"]
    cloud.projects["service"] = service["id"]
    for name in ("p1", "p2"):
        cloud.add_project(name)
    cloud.add_user("alice", "p1")
    cloud.add_user("bob", "p2")
    cloud.add_user("carol", "p1", roles=("reader",))
    cloud.service_user = "segmentd"
    cloud.add_user("segmentd", "service", roles=("service",))
    return cloud


def keystone_config(cloud: Cloud, **keystone) -> dict:
    """The shipped example config, with auth_mode = "keystone" and a [keystone] section."""
    config = tomllib.loads(EXAMPLE_CONFIG.read_text())
    return {**config, "auth_mode": "keystone", "keystone": cloud.keystone_section(**keystone)}


def serve(request, tmp_path: Path, cloud: Cloud, name: str, **keystone) -> Server:
    server = start_server(tmp_path, f"sqlite:///{tmp_path}/{name}.db", name=name,
                          config=keystone_config(cloud, **keystone))
    request.addfinalizer(lambda: stop_servers(request, [server]))
    return server


@pytest.fixture(scope="module")
def cloud(keystone) -> Cloud:
    return make_cloud(keystone)


@dataclass
class Live:
    server: Server
    bootstrap: str  # segmentd's own admin token, printed at first start

    @property
    def url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def live(request, cloud, tmp_path_factory) -> Live:
    """segmentd on the example config in Keystone mode (caching as shipped), in the catalog."""
    tmp = tmp_path_factory.mktemp("segmentd-keystone")
    server = start_server(tmp, f"sqlite:///{tmp}/segmentd.db", name="segmentd",
                          config=keystone_config(cloud))
    try:
        cloud.keystone.register_service(server.base_url)
        (bootstrap,) = bootstrap_tokens(server)
    except BaseException:
        server.stop()
        raise
    yield Live(server, bootstrap)
    server.stop()


def call(url: str, method: str, path: str, token: str | None, **kw) -> httpx.Response:
    headers = {"X-Auth-Token": token} if token else {}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw)
