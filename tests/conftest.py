"""Real databases for every test: SQLite files and a PostgreSQL server, migrated by Alembic."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from segmentd.api.ratelimit import RequestLimits
from segmentd.app import create_app
from segmentd.config import Settings, load_settings
from segmentd.db import migrate
from segmentd.db import outbox as outbox_rows
from segmentd.db.engine import make_engine
from segmentd.events.bus import Event, EventBus

pytest_plugins = ("tests.keystone_fixtures",)  # `keystone`, `private_keystone`

PG_HOST = os.environ.get("SEGMENTD_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SEGMENTD_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SEGMENTD_TEST_PG_USER", "postgres")
PG_ADMIN_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
MARIADB_HOST = os.environ.get("SEGMENTD_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("SEGMENTD_TEST_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("SEGMENTD_TEST_MARIADB_USER", "root")
TABLES = ("segments", "networks")  # what "a rejected request changed nothing" compares
# Emptied between tests, children first (dispatch_lock keeps its one row).
ALL_TABLES = (
    "ovn_chassis_watch", "ovn_drift_checks", "event_deliveries", "outbox_events",
    "event_subscriptions", "host_reach", "agents", "hosts", "audit_events", "tokens",
    "ip_allocations", "ports", "subnets",
    *TABLES,
)

BASE_CONFIG = {
    "auth_mode": "development",
    "vlan_ranges": ["physnet1:100:2999", "physnet2", "small:10:12"],
    "flat_networks": ["*"],
    "tenant_network_types": ["geneve"],
    "vni_ranges": {"vxlan": ["1:1000"], "geneve": ["1:16777215"]},
    "pagination_max_limit": 50,
}


def pg_url(dbname: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database(name: str) -> str:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_template():
    """A migrated PostgreSQL database for this test session; a missing server fails loudly."""
    if not _reachable(PG_HOST, PG_PORT):
        pytest.fail(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}; scripts/test starts it")
    url, drop = migrated_database("postgresql", f"segmentd_test_{os.getpid()}")
    yield url
    drop()


async def _mariadb_admin(sql: str) -> None:
    import asyncmy

    conn = await asyncmy.connect(host=MARIADB_HOST, port=MARIADB_PORT, user=MARIADB_USER)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mariadb_template():
    """A migrated MariaDB database for this test session; a missing server fails loudly."""
    if not _reachable(MARIADB_HOST, MARIADB_PORT):
        pytest.fail(f"MariaDB is not reachable at {MARIADB_HOST}:{MARIADB_PORT}; scripts/test starts it")
    url, drop = migrated_database("mariadb", f"segmentd_test_{os.getpid()}")
    yield url
    drop()


def migrated_database(kind: str, name: str):
    """(URL, drop) of a new database `name` on the PostgreSQL or MariaDB server, migrated."""
    if kind == "postgresql":
        url = create_pg_database(name)
        migrate.upgrade(url)
        return url, lambda: drop_pg_database(name)
    asyncio.run(_mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))
    asyncio.run(_mariadb_admin(f"CREATE DATABASE `{name}`"))
    url = f"mysql+asyncmy://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    migrate.upgrade(url)
    return url, lambda: asyncio.run(_mariadb_admin(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _truncate(url: str) -> None:
    """Empty every table, children first, in one round trip on the driver's own connection:
    DELETEs of the few rows a test leaves (on PostgreSQL a TRUNCATE of these tables took
    48 ms here against 4 ms for DELETEs); an engine per reset cost 35 ms more."""
    deletes = ";".join(f"DELETE FROM {table}" for table in ALL_TABLES)  # fixed names
    if url.startswith("postgresql"):
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(deletes)  # one simple-protocol query, one transaction
        finally:
            await conn.close()
        return
    import asyncmy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncmy.connect(host=parsed.host, port=parsed.port or 3306,
                                 user=parsed.username, password=parsed.password or "",
                                 db=parsed.database, autocommit=False)
    try:
        async with conn.cursor() as cur:
            for table in ALL_TABLES:
                await cur.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
        await conn.commit()
    finally:
        conn.close()


def pytest_collection_finish(session):
    """Each test process' heap, settled as a serving process settles its own
    (segmentd.app.settle_heap): what exists once the tests are collected (modules, schemas,
    the fuzzer's cases; alive to the end) is frozen out of the collector's full passes, and
    young objects are collected every 20,000 allocations instead of 700. Running tests/api,
    tests/hosts and tests/property in one process, the collector's passes took 4.65 s before
    (6,675 of them) and 2.00 s after (668)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    """`@pytest.mark.sqlite_only` (on a test, class or module): a test that uses a database
    runs on SQLite alone. For matrices of rules (validation, authorization, limits): their
    code decides before any SQL runs, or runs SQL that other tests cover on every database.
    Whatever depends on the database (SQL, locking, allocation, migrations, concurrency)
    runs on all three: `db_kind` has one parameter per kind."""
    if not metafunc.definition.get_closest_marker("sqlite_only"):
        return
    chosen = any("db_kind" in str(mark.args[0])
                 for mark in metafunc.definition.iter_markers("parametrize"))
    if "db_kind" in metafunc.fixturenames and not chosen:  # a test's own choice wins
        # As a marker, so pytest's own hooks (which run after this one) apply it and leave
        # the fixture's parameters out, as for a test that names its database itself.
        metafunc.definition.add_marker(pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True),
                                      append=False)  # first in the id, as before


@contextmanager
def fresh_database(request, kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database of `kind`: a copy of the SQLite template in `workdir`, or
    this session's PostgreSQL or MariaDB database, emptied afterwards."""
    if kind == "sqlite":
        path = workdir / "segmentd.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("pg_template" if kind == "postgresql" else "mariadb_template")
    yield url
    asyncio.run(_truncate(url))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_kind(request) -> str:
    """Which database a test runs on: by default each kind in turn (choose others with
    `@pytest.mark.parametrize("db_kind", [...], indirect=True)` or `sqlite_only`)."""
    return request.param


@pytest.fixture
def db_url(request, db_kind, tmp_path):
    """A migrated, empty database of the test's kind, for this test alone."""
    with fresh_database(request, db_kind, tmp_path) as url:
        yield url


def make_settings(db_url: str, **overrides) -> Settings:
    return load_settings(None, **{**BASE_CONFIG, "database_url": db_url, **overrides})


@dataclass
class Api:
    """A TestClient on the real app, the events it committed, and row counts.

    Once the client is started (`with api.client:`), requests go to the app in the client's
    event loop through httpx's ASGI transport, one call into that loop per request (the
    TestClient itself makes eight, which cost a third of each request's CPU); the client's
    address and User-Agent stay the TestClient's."""

    client: TestClient
    _events_after: int = 0
    _asgi: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def db_url(self) -> str:
        """The database the app serves (for a second engine or app on the same one)."""
        return self.client.app.state.runtime.settings.database_url

    def _run(self, work):
        """Run `work(conn)` on the app's own engine, in the app's event loop."""
        engine = self.client.app.state.runtime.engine

        async def run():
            async with engine.connect() as conn:
                return await work(conn)

        return self.client.portal.call(run)

    @property
    def events(self) -> list[Event]:
        """Events in the outbox since the last clear_events(), oldest first."""
        found = self._run(lambda conn: outbox_rows.events_after(conn, self._events_after))
        return [Event.from_document(orjson.loads(body)) for _, body in found]

    def clear_events(self) -> None:
        found = self._run(lambda conn: outbox_rows.events_after(conn, self._events_after))
        if found:
            self._events_after = found[-1][0]

    def request(self, method: str, path: str, *, json=None, headers=None, **kw):
        portal = self.client.portal
        if portal is None:  # not started: the TestClient starts the app for this request
            return self.client.request(method, path, json=json, headers=headers, **kw)
        if self._asgi is None:
            self._asgi = httpx.AsyncClient(
                transport=httpx.ASGITransport(self.client.app, raise_app_exceptions=False,
                                              client=("testclient", 50000)),
                base_url="http://testserver", headers={"user-agent": "testclient"},
                follow_redirects=True,
            )
        return portal.call(partial(self._asgi.request, method, path, json=json,
                                   headers=headers, **kw))

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def counts(self) -> dict[str, int]:
        """Rows per table, read through the app's own engine."""

        async def count(conn):
            return {
                t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar()  # noqa: S608
                for t in TABLES
            }

        return self._run(count)


def in_transaction(api: Api, work):
    """Run `await work(conn)` in one committed transaction on the app's own engine, in the
    app's event loop."""
    engine = api.client.app.state.runtime.engine

    async def run():
        async with engine.begin() as conn:
            return await work(conn)

    return api.client.portal.call(run)


def build_api(db_url: str, bus: EventBus | None = None, **overrides):
    app = create_app(make_settings(db_url, **overrides), bus=bus)
    return Api(TestClient(app, raise_server_exceptions=False))


@pytest.fixture(scope="session")
def shared_apps(request, tmp_path_factory):
    """One running app per kind of database and settings in this test process, each on a
    database of its own (SQLite file, or a PostgreSQL or MariaDB database named after the
    process), for the tests that use `api` or `shared_api`: started once, they keep their
    engine's compiled statements, which an app per test compiled afresh in every test."""
    apps: dict[str, Api] = {}
    dropped = []

    def get(kind: str, **overrides) -> Api:
        key = f"{kind} {sorted(overrides.items())!r}"
        if key not in apps:
            if kind == "sqlite":
                path = tmp_path_factory.mktemp("shared") / "segmentd.db"
                shutil.copy(request.getfixturevalue("sqlite_template"), path)
                url = f"sqlite+aiosqlite:///{path}"
            else:
                request.getfixturevalue("pg_template" if kind == "postgresql"
                                        else "mariadb_template")  # the server is up
                url, drop = migrated_database(kind, f"segmentd_shared_{os.getpid()}_{len(apps)}")
                dropped.append(drop)
            api = build_api(url, **overrides)
            api.client.__enter__()
            apps[key] = api
        return apps[key]

    yield get
    for api in apps.values():
        api.client.__exit__(None, None, None)
    for drop in dropped:
        drop()


@pytest.fixture
def api(request, db_kind):
    """The app of this process for the test's kind of database (see `shared_api`)."""
    return shared_api(request, db_kind)


def shared_api(request, kind: str, **overrides) -> Api:
    """The running app of this process for `kind` of database and these settings (beyond
    BASE_CONFIG), as a new one would be: every table emptied (through the app's own engine,
    in its event loop) and its request limits restored. A test that needs a bus or workers
    of its own, or its database to itself (`db_url`), builds its own app."""
    shared = request.getfixturevalue("shared_apps")(kind, **overrides)
    runtime = shared.client.app.state.runtime
    api = Api(shared.client)

    async def empty(conn):
        for table in ALL_TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)

    in_transaction(api, empty)
    runtime.limits = RequestLimits(runtime.settings)
    return api


@pytest.fixture
def new_id():
    return lambda: str(uuid.uuid4())


def wait_until(predicate, what: str, timeout: float = 15.0):
    """Poll until predicate() is truthy and return it; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def run_on(db_url: str, work):
    """`await work(engine)` on a fresh engine for `db_url`, disposed afterwards."""

    async def go():
        engine = make_engine(db_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())
