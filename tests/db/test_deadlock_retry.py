"""A write the database aborts as a deadlock victim runs again from its start.

Real deadlocks on the real servers: two units of work lock the same two network rows in
opposite orders. PostgreSQL and MariaDB each abort one of them; `transact` runs the victim
again, and both changes land. SQLite has one writer at a time and cannot deadlock, so it is
not among the databases here.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from segmentd.db.engine import is_transient_conflict, write_connection
from segmentd.db.models import networks as n
from segmentd.errors import DatabaseContention
from segmentd.services import uow as uow_module
from segmentd.services.uow import transact
from tests.conftest import _truncate, run_on
from tests.db.test_driver import NET_A, NET_B, network_row


@pytest.fixture(params=[pytest.param("pg", marks=pytest.mark.postgresql), "mariadb"])
def server_db_url(request):
    """A migrated, empty database on each server that can deadlock."""
    url = request.getfixturevalue(f"{request.param}_template")
    yield url
    asyncio.run(_truncate(url))


async def _two_networks(engine) -> None:
    async with write_connection(engine) as conn:
        await conn.execute(insert(n), [network_row(NET_A, "a"), network_row(NET_B, "b")])


async def _names(engine) -> dict[str, str]:
    async with write_connection(engine) as conn:
        return dict((await conn.execute(select(n.c.id, n.c.name))).all())


def _crossing_writers(engine, attempts: dict[str, int]):
    """Two works renaming both networks in opposite orders; on their first attempt each
    waits, holding its first row, until the other holds its own: a certain deadlock."""
    both_hold_one = asyncio.Barrier(2)

    def writer(label: str, first: str, second: str):
        async def work(uow):
            attempts[label] += 1
            await uow.conn.execute(update(n).where(n.c.id == first).values(name=f"{label}1"))
            if attempts[label] == 1:
                await both_hold_one.wait()
            await uow.conn.execute(update(n).where(n.c.id == second).values(name=f"{label}2"))
            return label
        return work

    return writer("x", NET_A, NET_B), writer("y", NET_B, NET_A)


def test_a_deadlock_victim_runs_again_and_both_writes_land(server_db_url):
    attempts = {"x": 0, "y": 0}

    async def scenario(engine):
        await _two_networks(engine)
        x, y = _crossing_writers(engine, attempts)
        results = await asyncio.gather(transact(engine, x), transact(engine, y))
        return results, await _names(engine)

    results, names = run_on(server_db_url, scenario)
    assert results == ["x", "y"]
    # One of them was the victim and ran twice; the other ran once and committed first.
    assert sorted(attempts.values()) == [1, 2], attempts
    victim = "x" if attempts["x"] == 2 else "y"
    # The victim's second run came last, so both rows carry its names.
    assert names == ({NET_A: "x1", NET_B: "x2"} if victim == "x" else {NET_B: "y1", NET_A: "y2"})


def test_a_victim_out_of_attempts_is_a_503_that_committed_nothing(server_db_url, monkeypatch):
    monkeypatch.setattr(uow_module, "WRITE_ATTEMPTS", 1)
    attempts = {"x": 0, "y": 0}

    async def scenario(engine):
        await _two_networks(engine)
        x, y = _crossing_writers(engine, attempts)
        outcomes = await asyncio.gather(transact(engine, x), transact(engine, y),
                                        return_exceptions=True)
        return outcomes, await _names(engine)

    outcomes, names = run_on(server_db_url, scenario)
    assert attempts == {"x": 1, "y": 1}
    (failure,) = [o for o in outcomes if isinstance(o, BaseException)]
    (winner,) = [o for o in outcomes if isinstance(o, str)]
    assert isinstance(failure, DatabaseContention), repr(failure)
    assert failure.status == 503 and failure.headers == {"Retry-After": "1"}
    assert failure.type == "DatabaseContention" and "nothing was changed" in str(failure)
    assert is_transient_conflict(failure.__cause__)
    # Only the winner's renames are in the database.
    first, second = (NET_A, NET_B) if winner == "x" else (NET_B, NET_A)
    assert names == {first: f"{winner}1", second: f"{winner}2"}


def test_other_database_errors_are_not_retried(server_db_url):
    calls = []

    async def duplicate(uow):
        calls.append(1)
        await uow.conn.execute(insert(n), network_row(NET_A))

    async def scenario(engine):
        await _two_networks(engine)
        with pytest.raises(IntegrityError) as raised:
            await transact(engine, duplicate)
        return raised.value

    error = run_on(server_db_url, scenario)
    assert calls == [1] and not is_transient_conflict(error)


def test_sqlite_writers_queue_instead_of_deadlocking(sqlite_template, tmp_path):
    """The same crossing writers on SQLite: BEGIN IMMEDIATE makes the second wait for the
    first, so neither is a victim (the barrier is skipped: the second cannot start its
    first statement while the first holds the write lock, so it must not be waited for)."""
    path = tmp_path / "segmentd.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    attempts = {"x": 0, "y": 0}

    def writer(label: str, first: str, second: str):
        async def work(uow):
            attempts[label] += 1
            await uow.conn.execute(update(n).where(n.c.id == first).values(name=f"{label}1"))
            await asyncio.sleep(0.05)
            await uow.conn.execute(update(n).where(n.c.id == second).values(name=f"{label}2"))
            return label
        return work

    async def scenario(engine):
        await _two_networks(engine)
        results = await asyncio.gather(transact(engine, writer("x", NET_A, NET_B)),
                                       transact(engine, writer("y", NET_B, NET_A)))
        return results, await _names(engine)

    results, names = run_on(url, scenario)
    assert results == ["x", "y"] and attempts == {"x": 1, "y": 1}
    assert names in ({NET_A: "x1", NET_B: "x2"}, {NET_B: "y1", NET_A: "y2"})
