"""Statements sent straight to the driver (db/driver.py) run in the caller's transaction
and behave like SQLAlchemy's."""

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from segmentd.db import driver
from segmentd.db.engine import read_connection, write_connection
from segmentd.db.models import networks as n
from segmentd.services.clock import utcnow
from tests.conftest import run_on


def network_row(network_id: str, name: str = "n") -> dict:
    now = utcnow()
    return {
        "id": network_id, "project_id": "p", "name": name, "description": "",
        "admin_state_up": True, "shared": False, "status": "ACTIVE", "mtu": 1500,
        "created_at": now, "updated_at": now, "revision_number": 0,
    }


INSERT = insert(n).returning(n.c.id, n.c.name)
COUNT = select(func.count()).select_from(n)
NET_A = "00000000-0000-4000-8000-00000000000a"
NET_B = "00000000-0000-4000-8000-00000000000b"


def test_postgresql_writes_take_the_driver_path_and_others_do_not(db_url):
    """Guards the SQLAlchemy internals the fast path relies on: an upgrade that removes
    them makes this fail instead of silently slowing every write down."""

    async def work(engine):
        async with write_connection(engine) as conn:
            return await driver.driver_connection(conn)

    found = run_on(db_url, work)
    if db_url.startswith("postgresql"):
        assert found is not None and type(found).__module__.startswith("asyncpg")
    else:
        assert found is None


def test_rows_returned_and_committed_with_the_transaction(db_url):
    async def work(engine):
        async with write_connection(engine) as conn:
            got = await driver.fetch(conn, INSERT, network_row(NET_A, "first"))
        async with read_connection(engine) as conn:
            return [tuple(r) for r in got], (await conn.execute(COUNT)).scalar()

    assert run_on(db_url, work) == ([(NET_A, "first")], 1)


def test_a_failed_transaction_takes_the_fast_statement_back_with_it(db_url):
    async def work(engine):
        with pytest.raises(RuntimeError):
            async with write_connection(engine) as conn:
                await driver.fetch(conn, INSERT, network_row(NET_A))
                raise RuntimeError("later step failed")
        async with read_connection(engine) as conn:
            return (await conn.execute(COUNT)).scalar()

    assert run_on(db_url, work) == 0


def test_fast_statement_sees_earlier_ordinary_statements_of_its_transaction(db_url):
    async def work(engine):
        with pytest.raises(IntegrityError):  # same key: the driver sees the first row
            async with write_connection(engine) as conn:
                await conn.execute(insert(n), network_row(NET_A))
                await driver.fetch(conn, INSERT, network_row(NET_A))
        async with read_connection(engine) as conn:
            return (await conn.execute(COUNT)).scalar()

    assert run_on(db_url, work) == 0


def test_a_refused_row_raises_sqlalchemys_integrity_error(db_url):
    async def work(engine):
        async with write_connection(engine) as conn:
            await driver.fetch(conn, INSERT, network_row(NET_B))
        with pytest.raises(IntegrityError):
            async with write_connection(engine) as conn:
                await driver.fetch(conn, INSERT, {**network_row(NET_A), "name": None})
        async with read_connection(engine) as conn:
            return (await conn.execute(COUNT)).scalar()

    assert run_on(db_url, work) == 1
