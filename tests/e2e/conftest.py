"""End-to-end fixtures: `segmentd serve` as a subprocess on SQLite and on PostgreSQL.

The client scenarios run against the server README's start command starts: the shipped
etc/segmentd.example.toml as it is (token mode, its limits), only the database and port
differ. They authenticate with its bootstrap admin token.
"""

from __future__ import annotations

import pytest

from tests.e2e.server import database, start_example_server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def live_server(request, tmp_path):
    """A freshly migrated `segmentd serve` (a Live); its log is printed if the test fails."""
    yield from _serve(request, tmp_path, request.param)


# The CLI tests run the `openstack` shell a dozen times each: each runs against one database,
# PostgreSQL or the embedded SQLite, and the SDK tests against both.
@pytest.fixture
def pg_live_server(request, tmp_path):
    yield from _serve(request, tmp_path, "postgresql")


@pytest.fixture
def sqlite_live_server(request, tmp_path):
    yield from _serve(request, tmp_path, "sqlite")


def _serve(request, tmp_path, kind: str):
    with database(kind, tmp_path) as db_url:
        live = start_example_server(tmp_path, db_url, name=f"segmentd-{kind}")
        server = live.server
        try:
            yield live
        finally:
            server.stop()
            if _failed(request):
                print(f"--- {server.log_path} ---\n{server.log()}")
