"""Filters, sorting and keyset pagination over an allow-list of columns, as bound parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.errors import HTTPBadRequest
from segmentd.inputs import CONTROL, INT32_MAX, INT64_MAX, bounded_int
from segmentd.query import ListQuery, Rows, is_resource_id

TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False}
FILTER_VALUE_MAX_LEN = 255
NULL_SORT_SENTINEL = {"int": -(2**31), "str": ""}


@dataclass(frozen=True)
class Attribute:
    """A listable attribute: the column behind it, and whether it may filter and sort."""

    column: ColumnElement
    filter: bool = True
    sort: bool = True
    nullable: bool = False

    @property
    def int_max(self) -> int:
        """The largest value the integer column holds on every database."""
        return INT64_MAX if isinstance(self.column.type, BigInteger) else INT32_MAX

    @property
    def kind(self) -> str:
        if isinstance(self.column.type, Boolean):
            return "bool"
        if isinstance(self.column.type, Integer):
            return "int"
        return "str"

    def sort_expr(self) -> ColumnElement:
        """Nulls sort as a sentinel so ORDER BY and the keyset comparison agree everywhere."""
        if not self.nullable:
            return self.column
        return func.coalesce(self.column, literal(NULL_SORT_SENTINEL[self.kind]))


def convert_filter_value(name: str, attr: Attribute, raw: str):
    if len(raw) > FILTER_VALUE_MAX_LEN or CONTROL.search(raw):
        raise HTTPBadRequest(msg=f"Invalid filter value for {name}")
    if attr.kind == "bool":
        value = TRUE_WORDS.get(raw.lower())
        if value is None:
            raise HTTPBadRequest(msg=f"Invalid filter value for {name}: '{raw}' is not a boolean")
        return value
    if attr.kind == "int":
        value = bounded_int(raw, -attr.int_max - 1, attr.int_max)
        if value is None:
            raise HTTPBadRequest(
                msg=f"Invalid filter value for {name}: '{raw[:32]}' is not an integer in range"
            )
        return value
    return raw


def filter_clause(attr: Attribute, name: str, raws: list[str]) -> ColumnElement:
    """Repeated values of one attribute mean OR; an empty string matches NULL for nullables."""
    values = [convert_filter_value(name, attr, r) for r in raws]
    clauses = []
    concrete = [v for v in values if not (attr.nullable and v == "")]
    if concrete:
        clauses.append(attr.column.in_(concrete))
    if len(concrete) != len(values):
        clauses.append(attr.column.is_(None))
    return or_(*clauses)


def apply_filters(stmt: Select, attrs: dict[str, Attribute], q: ListQuery) -> Select:
    for name, raws in q.filters.items():
        attr = attrs.get(name)
        if attr is None or not attr.filter:
            raise HTTPBadRequest(msg=f"['{name}'] is invalid attribute for filtering")
        stmt = stmt.where(filter_clause(attr, name, raws))
    return stmt


def sort_plan(attrs: dict[str, Attribute], q: ListQuery, id_col: ColumnElement):
    plan = []
    for name, direction in q.sorts:
        attr = attrs.get(name)
        if attr is None or not attr.sort:
            raise HTTPBadRequest(msg=f"['{name}'] is invalid attribute for sort_keys")
        plan.append((attr.sort_expr(), direction == "desc"))
    if not any(expr is id_col for expr, _ in plan):
        last_desc = plan[-1][1] if plan else False
        plan.append((id_col, last_desc))  # a total order makes marker paging exact
    if q.page_reverse:
        plan = [(expr, not desc) for expr, desc in plan]
    return plan


REFILL_ROWS = 100  # rows read per further round when a row check dropped some of a page


async def fetch_page(
    conn: AsyncConnection,
    stmt: Select,
    attrs: dict[str, Attribute],
    id_col: ColumnElement,
    q: ListQuery,
    marker_ok: Callable[[str], bool] | None = None,
    keep: Callable[[Any], bool] | None = None,
) -> list:
    """The rows of one page: `q.limit` of them, fewer only where the rows run out.

    A marker is looked up within the same scope; `marker_ok` says which markers can name a
    row (default: ids segmentd hands out). `keep` is the read rule's check of one row; where
    the statement could not express the rule (an operator's), rows it drops are replaced by
    reading on, so a page is never cut short while rows the caller may see remain.
    """
    stmt = apply_filters(stmt, attrs, q)
    plan = sort_plan(attrs, q, id_col)
    usable = marker_ok(q.marker) if marker_ok and q.marker is not None else (
        q.marker is not None and _marker_usable(q.marker, attrs["id"])
    )
    order = [e.desc() if desc else e.asc() for e, desc in plan]

    async def read(select_: Select, size: int):
        return (await conn.execute(select_.order_by(*order).limit(size))).mappings().all()

    if usable:
        marker_id = int(q.marker) if attrs["id"].kind == "int" else q.marker
        rows = await read(stmt.where(_after(stmt, plan, id_col, marker_id)), q.limit)
        # An empty page: the marker was the last row, or it names no row in this scope,
        # and Neutron ignores a marker it cannot find, so do we.
        if not rows and (await conn.execute(
            stmt.where(id_col == marker_id).with_only_columns(literal(1))
        )).first() is None:
            rows = await read(stmt, q.limit)
    else:
        rows = await read(stmt, q.limit)
    kept = list(rows)
    if keep is not None:
        kept = [r for r in rows if keep(r)]
        size = q.limit
        while len(kept) < q.limit and len(rows) == size:  # rows were dropped, and more remain
            size = max(q.limit, REFILL_ROWS)
            after = _after(stmt, plan, id_col, rows[-1][id_col.key])
            rows = await read(stmt.where(after), size)
            kept += [r for r in rows if keep(r)]
        kept = kept[: q.limit]
    if q.page_reverse:
        kept.reverse()
    return kept


def _marker_usable(marker: str, id_attr: Attribute) -> bool:
    """A marker that cannot be an id of this table names no row (ignored, as in Neutron)."""
    if id_attr.kind == "int":
        return bounded_int(marker, 0, id_attr.int_max) is not None
    return is_resource_id(marker)


def _after(stmt: Select, plan, id_col: ColumnElement, row_id) -> ColumnElement:
    """Rows strictly after row `row_id` in the sort order: the expanded row comparison.

    The row's sort values are uncorrelated subqueries (each run once, and the keyset
    condition still uses the sort index): one statement, where a separate look-up of the
    row cost a round trip on every page.
    """
    row = stmt.where(id_col == row_id)
    values = [row.with_only_columns(e).limit(1).scalar_subquery().correlate(None)
              for e, _ in plan]
    ors = []
    for i, (expr, desc) in enumerate(plan):
        equal = [plan[j][0] == values[j] for j in range(i)]
        beyond = expr < values[i] if desc else expr > values[i]
        ors.append(and_(*equal, beyond))
    return or_(*ors)


def scoped(ctx, grants: frozenset[str] | None, kinds: dict[str, ColumnElement]) -> ColumnElement:
    """The rows of the granted kinds: `kinds` holds the clause of each kind a table has
    besides Rows.EVERY, which only callers reading every project (admin, service) get.
    `grants` None admits every kind, what segmentd lets a caller see before policy decides.
    """
    granted = set(kinds) | {Rows.EVERY} if grants is None else grants
    if ctx.reads_all_projects and Rows.EVERY in granted:
        return true()
    return or_(false(), *[clause for kind, clause in kinds.items() if kind in granted])


def count_stmt(stmt: Select) -> Select:
    return select(func.count()).select_from(stmt.subquery())

