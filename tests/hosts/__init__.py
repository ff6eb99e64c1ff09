"""Helpers the host tests share: callers, segments, and the rows a report touches (report
bodies and send_report are in tests/factories.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text, update

from segmentd.db.models import agents as agents_table
from segmentd.db.models import hosts as hosts_table
from segmentd.services.clock import utcnow
from segmentd.workers.hosts import sweep_expired
from tests.conftest import in_transaction
from tests.factories import make_network, make_segment, walk

ADMIN = {"X-Roles": "admin", "X-Project-Id": "ops"}
MEMBER = {"X-Roles": "member,reader", "X-Project-Id": "p1"}
READER = {"X-Roles": "reader", "X-Project-Id": "p1"}
SRIOV = "NIC Switch agent"
LINUXBRIDGE = "Linux bridge agent"
# The tables a host report may write; "nothing written" compares all of them.
HOST_TABLES = ("hosts", "agents", "host_reach", "outbox_events", "audit_events")


# -- segments (admin through development auth) --------------------------------------------

def base_network(api) -> dict:
    """A network whose own segment is flat on a physnet no host reports."""
    return make_network(api, mtu=1400, **{"provider:network_type": "flat",
                                "provider:physical_network": "nobody"})


def add_segment(api, network_id: str, network_type: str, physnet: str | None = None) -> str:
    attrs = {"network_type": network_type}
    if physnet is not None:
        attrs["physical_network"] = physnet
    return make_segment(api, network_id, **attrs)["id"]


def hosts_of(api, segment_id: str) -> set[str]:
    """GET /v2.0/segments/{id}/hosts, all pages."""
    items, _ = walk(api, f"/v2.0/segments/{segment_id}/hosts?limit=50", "hosts")
    return {h["host"] for h in items}


def segments_of(api, host: str) -> set[str]:
    """The segments `?host=` answers; /v2.0/hosts/{host}/segments must agree when it exists."""
    items, _ = walk(api, f"/v2.0/segments?host={host}&limit=50", "segments")
    return {s["id"] for s in items}


def host_entry(api, host: str) -> dict | None:
    found = api.get(f"/v2.0/hosts?host={host}").json()["hosts"]
    return found[0] if found else None


# -- rows and events -----------------------------------------------------------------------

def table_rows(api, *, without=()) -> dict[str, list[tuple]]:
    """Every row of the host tables, sorted, leaving out the named columns.

    `fanned_out` is always left out: the dispatcher flips it in the background.
    """
    without = {*without, "fanned_out"}

    async def read(conn):
        out = {}
        for table in HOST_TABLES:
            result = await conn.execute(text(f"SELECT * FROM {table}"))  # fixed names
            keep = [i for i, col in enumerate(result.keys()) if col not in without]
            out[table] = sorted(tuple(str(row[i]) for i in keep) for row in result)
        return out

    return api._run(read)


def row_counts(api) -> dict[str, int]:
    return {table: len(rows) for table, rows in table_rows(api).items()}


def reach_keys(api, host: str) -> set[tuple[str, str]]:
    async def read(conn):
        result = await conn.execute(
            text("SELECT network_type, physnet FROM host_reach WHERE host = :h"), {"h": host}
        )
        return {tuple(r) for r in result}

    return api._run(read)


def audit_outcomes(api) -> list[tuple[str, int]]:
    async def read(conn):
        result = await conn.execute(text("SELECT outcome, status FROM audit_events ORDER BY id"))
        return [tuple(r) for r in result]

    return api._run(read)


def changes(api, host: str | None = None) -> list[dict]:
    """The host.segments_changed resources committed since the last clear_events()."""
    return [e.resource for e in api.events
            if e.type == "host.segments_changed" and (host is None or e.resource_id == host)]


def age_host(api, host: str, seconds: int) -> None:
    """Move every heartbeat (and start) of `host` `seconds` into the past, without waiting."""
    past = utcnow() - timedelta(seconds=seconds)

    async def work(conn):
        await conn.execute(update(agents_table).where(agents_table.c.host == host)
                           .values(heartbeat_at=past, started_at=past))
        await conn.execute(update(hosts_table).where(hosts_table.c.name == host)
                           .values(reported_at=past))

    in_transaction(api, work)


def age_agent(api, agent_id: str, seconds: int) -> None:
    past = utcnow() - timedelta(seconds=seconds)
    in_transaction(api, lambda conn: conn.execute(
        update(agents_table).where(agents_table.c.id == agent_id)
        .values(heartbeat_at=past, started_at=past)
    ))


def agent_row(api, agent_id: str) -> dict:
    async def read(conn):
        result = await conn.execute(select(agents_table).where(agents_table.c.id == agent_id))
        return dict(result.mappings().one())

    return api._run(read)


def sweep(api) -> int:
    """One round of the app's own sweeper, run in the app's event loop."""
    rt = api.client.app.state.runtime
    return api.client.portal.call(sweep_expired, rt.engine, rt.clock, rt.dispatcher.wake)
