"""The list and show responses every collection shares: paging links, fields, envelopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request
from starlette.responses import Response

from segmentd.api.deps import (
    collection_links,
    json_response,
    known_id,
    list_query,
    requested_fields,
    select_fields,
)
from segmentd.api.runtime import runtime
from segmentd.context import RequestContext
from segmentd.query import Page

Lister = Callable[..., Awaitable[Page]]
Getter = Callable[..., Awaitable[dict]]


async def list_response(
    request: Request,
    ctx: RequestContext,
    collection: str,
    fields: Iterable[str],
    lister: Lister,
    *args,
    key: str = "id",
) -> Response:
    """GET /v2.0/<collection>: one page, `fields` applied, `<collection>_links` when paged.

    `args` go to the lister after the query (a parent id); `key` is what markers name.
    """
    rt = runtime(request)
    q = list_query(request, rt.settings.pagination_max_limit)
    wanted = requested_fields(request, fields)
    async with rt.read() as conn:
        page = await lister(ctx, conn, q, *args)
    body = {collection: [select_fields(item, wanted) for item in page.items]}
    links = collection_links(request, page.items, q, key)
    if links:
        body[f"{collection}_links"] = links
    return json_response(body)


async def show_response(
    request: Request,
    ctx: RequestContext,
    member: str,
    fields: Iterable[str],
    getter: Getter,
    resource_id: str,
    not_found: tuple[type, str],
) -> Response:
    """GET /v2.0/<collection>/<id>: `{member: {...}}` with `fields` applied."""
    rt = runtime(request)
    wanted = requested_fields(request, fields)
    known_id(resource_id, *not_found)
    async with rt.read() as conn:
        item = await getter(ctx, conn, resource_id)
    return json_response({member: select_fields(item, wanted)})
