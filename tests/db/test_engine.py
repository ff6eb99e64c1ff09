"""How callers hold connections: one transaction per write, given back whatever happens."""

import asyncio

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from segmentd.db.engine import read_connection, snapshot_connection, write_connection
from segmentd.db.models import networks as n
from tests.conftest import run_on
from tests.db.test_driver import NET_A, NET_B, network_row

COUNT = select(func.count()).select_from(n)


def checked_out(engine) -> int:
    return engine.sync_engine.pool.checkedout()


def test_a_write_commits_and_gives_its_connection_back(db_url):
    async def work(engine):
        async with write_connection(engine) as conn:
            await conn.execute(insert(n), network_row(NET_A))
            assert conn.in_transaction()
        async with read_connection(engine) as conn:
            count = (await conn.execute(COUNT)).scalar()
        return count, checked_out(engine)

    assert run_on(db_url, work) == (1, 0)


def test_a_cancelled_write_rolls_back_and_gives_its_connection_back(db_url):
    async def work(engine):
        inserted = asyncio.Event()

        async def slow_write():
            async with write_connection(engine) as conn:
                await conn.execute(insert(n), network_row(NET_A))
                inserted.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(slow_write())
        await inserted.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with read_connection(engine) as conn:
            count = (await conn.execute(COUNT)).scalar()
        return count, checked_out(engine)

    assert run_on(db_url, work) == (0, 0)


def test_a_failed_statement_takes_the_whole_write_back(db_url):

    async def work(engine):
        with pytest.raises(IntegrityError):
            async with write_connection(engine) as conn:
                await conn.execute(insert(n), network_row(NET_A))
                await conn.execute(insert(n), network_row(NET_A))
        async with read_connection(engine) as conn:
            count = (await conn.execute(COUNT)).scalar()
        return count, checked_out(engine)

    assert run_on(db_url, work) == (0, 0)


def test_a_snapshot_does_not_see_what_commits_after_its_first_read(db_url):
    async def work(engine):
        async with snapshot_connection(engine) as snap:
            before = (await snap.execute(COUNT)).scalar()
            if engine.dialect.name != "sqlite":  # SQLite's one writer would wait on the reader
                async with write_connection(engine) as conn:
                    await conn.execute(insert(n), network_row(NET_B))
            after = (await snap.execute(COUNT)).scalar()
        return before, after, checked_out(engine)

    assert run_on(db_url, work) == (0, 0, 0)


def test_reads_are_autocommit_and_give_their_connection_back(db_url):
    async def work(engine):
        async with read_connection(engine) as conn:
            await conn.execute(COUNT)
            options = conn.sync_connection.get_execution_options().get("isolation_level")
        return options, checked_out(engine)

    assert run_on(db_url, work) == ("AUTOCOMMIT", 0)


def test_server_warnings_name_autovacuum_off_exactly_when_postgresql_has_it_off(db_url):
    """The start-up warning follows the server's own setting (this machine's PostgreSQL runs
    with autovacuum off; a default one has it on); other databases have nothing to say."""
    from sqlalchemy import text

    from segmentd.db.engine import AUTOVACUUM_OFF, server_warnings

    async def work(engine):
        async with read_connection(engine) as conn:
            setting = None
            if conn.dialect.name == "postgresql":
                setting = (await conn.execute(text("SHOW autovacuum"))).scalar()
            return setting, await server_warnings(conn)

    setting, warnings = run_on(db_url, work)
    if db_url.startswith("postgresql"):
        assert setting in ("on", "off")
        assert warnings == ([AUTOVACUUM_OFF] if setting == "off" else [])
    else:
        assert warnings == []


def test_db_check_prints_the_server_warnings_and_still_passes(db_url, capsys, monkeypatch):
    from segmentd import cli
    from segmentd.db import engine as engine_module

    async def two_warnings(engine):
        return ["first thing to know", "second thing to know"]

    monkeypatch.setattr(engine_module, "server_warnings", two_warnings)
    assert cli.main(["db", "check", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "the database matches the models" in out
    assert [line for line in out.splitlines() if line.startswith("warning: ")] == [
        "warning: first thing to know", "warning: second thing to know"]


@pytest.mark.parametrize("url", [
    "postgresql+asyncpg://postgres@10.255.255.1:5432/none",  # dropped or refused
    "postgresql+asyncpg://postgres@127.0.0.1:1/none",  # nothing listens
])
def test_start_up_does_not_wait_long_on_a_database_server_it_cannot_reach(url, caplog, monkeypatch):
    import time

    from segmentd import app as app_module
    from segmentd.db.engine import make_engine

    monkeypatch.setattr(app_module, "SERVER_CHECK_SECONDS", 0.5)

    async def check():
        engine = make_engine(url)
        try:
            await app_module._warn_about_server(engine)
        finally:
            await engine.dispose()

    started = time.monotonic()
    asyncio.run(check())
    assert time.monotonic() - started < 3
    assert "could not read the database server's settings" in caplog.text
