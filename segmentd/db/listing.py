"""Filters, sorting and keyset pagination over an allow-list of columns, as bound parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.errors import HTTPBadRequest
from segmentd.inputs import CONTROL, INT32_MAX, INT64_MAX, bounded_int
from segmentd.query import ListQuery, is_resource_id

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


async def fetch_page(
    conn: AsyncConnection,
    stmt: Select,
    attrs: dict[str, Attribute],
    id_col: ColumnElement,
    q: ListQuery,
    marker_ok: Callable[[str], bool] | None = None,
):
    """Rows of one page, and whether more exist; a marker is looked up within the same scope.

    `marker_ok` says which markers can name a row (default: ids segmentd hands out).
    """
    stmt = apply_filters(stmt, attrs, q)
    plan = sort_plan(attrs, q, id_col)
    usable = marker_ok(q.marker) if marker_ok and q.marker is not None else (
        q.marker is not None and _marker_usable(q.marker, attrs["id"])
    )
    order = [e.desc() if desc else e.asc() for e, desc in plan]

    async def page(select_: Select):
        return (await conn.execute(select_.order_by(*order).limit(q.limit + 1))).mappings().all()

    if usable:
        # The marker row's sort values as uncorrelated subqueries (each run once, and the
        # keyset condition still uses the sort index): one statement, where a separate
        # look-up of the marker cost a round trip on every page.
        marker_id = int(q.marker) if attrs["id"].kind == "int" else q.marker
        marker = stmt.where(id_col == marker_id)
        values = [marker.with_only_columns(e).limit(1).scalar_subquery().correlate(None)
                  for e, _ in plan]
        rows = await page(stmt.where(_after(plan, values)))
        # An empty page: the marker was the last row, or it names no row in this scope,
        # and Neutron ignores a marker it cannot find, so do we.
        if not rows and (await conn.execute(marker.with_only_columns(literal(1)))).first() is None:
            rows = await page(stmt)
    else:
        rows = await page(stmt)
    has_more = len(rows) > q.limit
    rows = rows[: q.limit]
    if q.page_reverse:
        rows = rows[::-1]
    return rows, has_more


def _marker_usable(marker: str, id_attr: Attribute) -> bool:
    """A marker that cannot be an id of this table names no row (ignored, as in Neutron)."""
    if id_attr.kind == "int":
        return bounded_int(marker, 0, id_attr.int_max) is not None
    return is_resource_id(marker)


def _after(plan, values) -> ColumnElement:
    """Rows strictly after the marker in the sort order: the expanded row comparison."""
    ors = []
    for i, (expr, desc) in enumerate(plan):
        equal = [plan[j][0] == values[j] for j in range(i)]
        beyond = expr < values[i] if desc else expr > values[i]
        ors.append(and_(*equal, beyond))
    return or_(*ors)


def count_stmt(stmt: Select) -> Select:
    return select(func.count()).select_from(stmt.subquery())

