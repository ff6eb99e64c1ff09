"""A new network with one segment, its events and its audit row, in one PostgreSQL statement.

The common create (a project network, or a provider network of one segment) took four
round trips: BEGIN, the segment insert carrying the network along, the change's events
and audit row (db/change_records.py), COMMIT. As one statement sent outside an explicit
transaction it is atomic on its own, and it is one round trip. Every insert in it reads
from the segment insert, so when that inserts nothing (a concurrent writer took the ID
or the key) nothing at all is written and the caller goes the ordinary way. The
allocated ID is only known inside the statement: each event body is written with a
stand-in and PostgreSQL sets the real ID at the given JSON path (jsonb_set), so the
stored bodies keep the same fields, normalised by jsonb.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, insert, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import driver
from segmentd.db.change_records import AUDIT_COLUMNS, EVENT_COLUMNS
from segmentd.db.models import audit_events, outbox_events
from segmentd.db.models import networks as n
from segmentd.db.segments import insert_statement, probe_params


async def available(conn: AsyncConnection) -> bool:
    """Whether this connection can take the one-statement create: PostgreSQL on asyncpg,
    through an adapter whose transaction state db/driver.py understands, none begun yet."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "asyncpg":
        return False
    return driver.transaction_not_begun(await driver.raw_connection(conn))


@cache
def _statement(allocate: bool, n_events: int):
    segment = insert_statement("postgresql", allocate, True, False).cte("new_segment")
    network = insert(n).from_select(
        [col.name for col in n.c],
        select(*(bindparam(f"n_{col.name}", type_=col.type) for col in n.c)).select_from(segment),
    ).cte("new_network")

    def event_row(i: int):
        values = []
        for name in EVENT_COLUMNS:
            col = outbox_events.c[name]
            if name == "body":
                body = func.jsonb_set(
                    cast(bindparam(f"e{i}_body", type_=Text), JSONB),
                    bindparam(f"e{i}_path", type_=ARRAY(Text)),
                    func.to_jsonb(segment.c.alloc_id),
                )
                values.append(cast(body, Text))
            else:
                values.append(bindparam(f"e{i}_{name}", type_=col.type))
        return select(*values).select_from(segment)

    # One INSERT of a UNION ALL: rows take their sequence numbers in the order given.
    events = insert(outbox_events).from_select(
        list(EVENT_COLUMNS), union_all(*(event_row(i) for i in range(n_events)))
    ).cte("new_events")
    audit = insert(audit_events).from_select(
        list(AUDIT_COLUMNS),
        select(*(bindparam(f"a_{name}", type_=audit_events.c[name].type)
                 for name in AUDIT_COLUMNS)).select_from(segment),
    ).cte("new_audit")
    return select(segment.c.alloc_id, segment.c.segment_index).add_cte(network, events, audit)


async def create_network(
    conn: AsyncConnection,
    network: dict[str, Any],
    segment: dict[str, Any],
    *,
    alloc_id: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
    probes: tuple[int, ...] = (),
    events: Sequence[tuple[dict[str, Any], Sequence[str]]],
    audit: dict[str, Any],
) -> tuple[int, int] | None:
    """Insert everything, or nothing: (allocated ID, segment_index), or None when the
    segment insert found its ID or key taken (nothing was written).

    `segment` holds the segment insert's row parameters; give `alloc_id` for a fixed ID,
    or `lo`, `hi` and the random probes. `events` are outbox rows, each with the JSON path
    of its body where the allocated ID belongs. Call only where `available` said so, on a
    connection with no transaction open (the statement commits itself).
    """
    allocate = alloc_id is None
    params: dict[str, Any] = dict(segment)
    if allocate:
        params.update(lo=lo, hi=hi, **probe_params("postgresql", probes))
    else:
        params["alloc_id"] = alloc_id
    params.update({f"n_{k}": v for k, v in network.items()})
    for i, (row, path) in enumerate(events):
        params.update({f"e{i}_{k}": row[k] for k in EVENT_COLUMNS})
        params[f"e{i}_path"] = list(path)
    params.update({f"a_{k}": audit[k] for k in AUDIT_COLUMNS})
    returned = await driver.fetch_autocommit(conn, _statement(allocate, len(events)), params)
    if not returned:
        return None
    return returned[0][0], returned[0][1]
