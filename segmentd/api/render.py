"""The responses every collection shares: list (paging links, fields), show, update and
delete (the id checked first, If-Match honoured, the change written through Runtime.write)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request
from starlette.responses import Response

from segmentd.api.deps import (
    collection_links,
    if_match_revision,
    json_response,
    known_id,
    list_query,
    parse_body,
    requested_fields,
    select_fields,
)
from segmentd.api.runtime import runtime
from segmentd.context import RequestContext
from segmentd.query import Page

Lister = Callable[..., Awaitable[Page]]
Getter = Callable[..., Awaitable[dict]]
# (unit of work, body, If-Match revision or None) for an update; (uow, revision) for a delete
Updater = Callable[..., Awaitable[dict]]
Deleter = Callable[..., Awaitable[object]]


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


async def update_response(
    request: Request,
    ctx: RequestContext,
    member: str,
    schema: type,
    read_only: set[str],
    resource_id: str,
    not_found: tuple[type, str],
    update: Updater,
    shown: Callable[[dict], dict] = lambda view: view,
) -> Response:
    """PUT /v2.0/<collection>/<id>: `update(uow, data, revision)` in one audited
    transaction; `{member: shown(view)}`."""
    rt = runtime(request)
    known_id(resource_id, *not_found)
    data = await parse_body(request, member, schema, read_only)
    revision = if_match_revision(request)
    view = await rt.write(ctx, request, lambda uow: update(uow, data, revision))
    return json_response({member: shown(view)})


async def delete_response(
    request: Request,
    ctx: RequestContext,
    resource_id: str,
    not_found: tuple[type, str],
    delete: Deleter,
) -> Response:
    """DELETE /v2.0/<collection>/<id>: `delete(uow, revision)` in one audited transaction."""
    rt = runtime(request)
    known_id(resource_id, *not_found)
    revision = if_match_revision(request)
    await rt.write(ctx, request, lambda uow: delete(uow, revision))
    return Response(status_code=204)
