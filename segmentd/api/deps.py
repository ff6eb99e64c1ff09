"""What every route needs from a request: the caller, a parsed body, list parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from segmentd.context import RequestContext
from segmentd.errors import (
    HTTPBadRequest,
    IdentityUnavailable,
    MalformedRequestBody,
    NotAuthenticated,
    PreconditionFailed,
)
from segmentd.inputs import CONTROL, INT32_MAX, MAX_DIGITS, bounded_int
from segmentd.query import ListQuery, is_resource_id

DEV_PROJECT = "dev"
MAX_TOKEN_LENGTH = 8192  # Keystone Fernet tokens are far shorter; anything longer is refused
LIST_CONTROL_PARAMS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}


def _development_context(request: Request, policy) -> RequestContext:
    """Development mode: trust X-Project-Id / X-Roles; without them, admin of project `dev`."""
    headers = request.headers
    for name in ("x-project-id", "x-roles", "x-user-id", "x-host"):
        value = headers.get(name)
        if value is not None and not (len(value) <= 255 and value.isprintable()):
            raise HTTPBadRequest(msg=f"Header {name} must be at most 255 printable characters")
    project = headers.get("x-project-id")
    roles_header = headers.get("x-roles")
    if roles_header is not None:
        roles = {r.strip().lower() for r in roles_header.split(",") if r.strip()}
    elif project is not None:
        roles = {"member", "reader"}
    else:
        roles = {"admin", "member", "reader"}
    return RequestContext.build(
        project or DEV_PROJECT, roles, user_id=headers.get("x-user-id"),
        request_id=request.state.request_id, policy=policy,
        token_id=None, host=headers.get("x-host"),
    )


async def request_context(request: Request) -> RequestContext:
    """Who is asking, from X-Auth-Token (or development headers), then the rate limits.

    A caller without a valid token spends from its client address's bucket (429 once it is
    empty), then gets its 401. async so that FastAPI calls it inline instead of in its
    threadpool (measurable per request).
    """
    rt = request.app.state.runtime
    if rt.validator is None:
        ctx = _development_context(request, rt.policy)
        limit_key = request.headers.get("x-auth-token") or ctx.project_id
    else:
        token = request.headers.get("x-auth-token")
        address = request.client.host if request.client else None
        charged = []  # a token sent to Keystone is paid for first (see charge_unknown_token)

        def before_asking() -> None:
            if rt.limits.charge_unknown_token(address):  # 429 here: Keystone is not asked
                charged.append(True)

        principal = None
        if token and len(token) <= MAX_TOKEN_LENGTH:
            try:
                principal = await rt.validator.validate(token, before_asking=before_asking)
            except IdentityUnavailable:  # Keystone's failure is not the caller's
                if charged:
                    rt.limits.refund_anonymous(address)
                raise
        if principal is None:
            if not charged:
                rt.limits.take_anonymous(address)
            raise NotAuthenticated()
        if charged:
            rt.limits.refund_anonymous(address)
        ctx = RequestContext.build(
            principal.project_id, principal.roles, user_id=principal.user_id,
            user_name=principal.user_name, request_id=request.state.request_id, policy=rt.policy,
            token_id=principal.token_id, host=principal.host,
        )
        limit_key = principal.token_id
    # Only a caller who is someone has its refused requests stored in the audit trail.
    request.state.context = ctx
    request.state.caller_key = limit_key  # whose audit budget its refusals spend
    rt.limits.take_caller(ctx, limit_key)
    return ctx


async def unrouted_caller(request: Request) -> None:
    """A request no route takes (404, 405) passes the same limits as any other; an
    anonymous one is only counted (it gets its 404 or 405, not a 401)."""
    try:
        await request_context(request)
    except NotAuthenticated:
        pass


ContextDep = Annotated[RequestContext, Depends(request_context)]


def json_response(body: Any, status: int = 200) -> Response:
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: address counts of IPv6 subnets
        content = json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type="application/json")


def _describe(err: dict) -> str:
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    name = loc[-1] if loc else "body"
    kind = err.get("type", "")
    if kind == "missing":
        return f"Failed to parse request. Required attribute '{name}' not specified"
    if kind == "extra_forbidden":
        return f"Unrecognized attribute(s) '{name}'"
    value = err.get("input")
    reason = err.get("msg", "invalid value")
    if kind.startswith("value_error"):
        reason = reason.removeprefix("Value error, ")
    elif kind in ("int_type", "int_parsing") and not isinstance(value, (dict, list)):
        shown = orjson.dumps(value).decode() if not isinstance(value, str) else value
        reason = f"'{shown}' is not an integer"
    return f"Invalid input for {name}. Reason: {reason}."


async def read_json(request: Request) -> Any:
    """The request's JSON document, within the configured nesting depth."""
    try:
        raw = await request.body()
    except ClientDisconnect:  # gone mid-body: nobody reads the answer, and it is no 500
        raise MalformedRequestBody(reason="The client closed the connection mid-body") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedRequestBody(reason="Cannot understand JSON") from None
    max_depth = request.app.state.runtime.settings.max_json_depth
    if json_depth(doc, max_depth) > max_depth:
        raise MalformedRequestBody(reason=f"JSON nested deeper than {max_depth} levels")
    return doc


def validate_attributes(
    attrs: dict[str, Any], model: type[BaseModel], read_only: Iterable[str] = ()
) -> dict[str, Any]:
    """One resource's attributes parsed by `model`; every problem is a 400 naming it."""
    fixed = sorted(set(attrs) & set(read_only))
    if fixed:
        raise HTTPBadRequest(msg=f"Cannot update read-only attribute {', '.join(fixed)}")
    try:
        parsed = model.model_validate(attrs)
    except ValidationError as exc:
        raise HTTPBadRequest(msg=_describe(exc.errors()[0])) from None
    data = parsed.model_dump(by_alias=True, exclude_unset=True)
    # Neutron's check, word for word: both given means both the same (null included).
    if "project_id" in data and "tenant_id" in data and data["project_id"] != data["tenant_id"]:
        raise HTTPBadRequest(msg="'project_id' and 'tenant_id' do not match")
    return data


async def parse_body(
    request: Request, key: str, model: type[BaseModel], read_only: Iterable[str] = ()
) -> dict[str, Any]:
    """Parse `{key: {...}}` into `model`; every problem is a 400 naming the attribute."""
    doc = await read_json(request)
    if isinstance(doc, dict) and set(doc) == {f"{key}s"}:  # only creates have a bulk form
        raise HTTPBadRequest(msg="Bulk operation not supported")  # Neutron's words
    if not isinstance(doc, dict) or set(doc) != {key} or not isinstance(doc[key], dict):
        raise HTTPBadRequest(msg=f"Resource body required with the single key '{key}'")
    return validate_attributes(doc[key], model, read_only)


def json_depth(doc: Any, stop_after: int) -> int:
    """Nesting depth of a parsed JSON document, counting no further than stop_after + 1."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth > stop_after:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def if_match_revision(request: Request) -> int | None:
    """`If-Match: revision_number=N` (Neutron's optimistic concurrency); other forms are 412."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    prefix = "revision_number="
    text = value.strip()
    # A revision beyond the column's range can match no row: 412 like any other mismatch.
    revision = bounded_int(text[len(prefix):], 0, INT32_MAX) if text.startswith(prefix) else None
    if revision is None:
        raise PreconditionFailed()
    return revision


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise HTTPBadRequest(msg=f"Parameter {name} must be given at most once")
    return values[0] if values else None


def list_query(request: Request, max_limit: int) -> ListQuery:
    params = request.query_params
    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if len(keys) != len(dirs):
        raise HTTPBadRequest(msg="The number of sort_keys and sort_dirs must be same")
    bad_dirs = [d for d in dirs if d not in ("asc", "desc")]
    if bad_dirs:
        raise HTTPBadRequest(
            msg=f"{bad_dirs} is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
        )
    limit_text = _single(request, "limit")
    limit, asked = max_limit, False
    if limit_text is not None:
        requested = bounded_int(limit_text, 0, 10**MAX_DIGITS)  # beyond the maximum: the maximum
        if requested is None:
            raise HTTPBadRequest(msg="Bad limit request: Limit must be an integer 0 or greater "
                                     f"and not '{limit_text[:32]}'")
        asked = requested > 0  # Neutron: limit=0 asks for no paging
        limit = min(requested, max_limit) or max_limit
    reverse_text = (_single(request, "page_reverse") or "false").lower()
    if reverse_text not in ("true", "false"):
        raise HTTPBadRequest(msg="page_reverse must be True or False")
    marker = _single(request, "marker")
    filters: dict[str, list[str]] = {}
    for name, value in params.multi_items():
        if name not in LIST_CONTROL_PARAMS:
            # The rule of every body string holds for filters too (fixed_ips=ip_address=…).
            if CONTROL.search(value):
                raise HTTPBadRequest(msg=f"Invalid filter value for {name[:64]}")
            filters.setdefault(name, []).append(value)
    return ListQuery(
        filters=filters,
        sorts=tuple(zip(keys, dirs)),
        limit=limit,
        marker=marker,
        page_reverse=reverse_text == "true",
        paged=asked or marker is not None or reverse_text == "true",
    )


def requested_fields(request: Request, known: Iterable[str]) -> list[str] | None:
    """`fields=a&fields=b`; unknown names are a 400 rather than silently ignored."""
    fields = request.query_params.getlist("fields")
    if not fields:
        return None
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise HTTPBadRequest(msg=f"{unknown} is invalid attribute for fields")
    return fields


def select_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return item
    return {k: item[k] for k in fields if k in item}


def collection_links(request: Request, items, q: ListQuery, key: str = "id"):
    """Neutron's `<collection>_links`, which depend only on the page the caller got.

    As Neutron's get_pagination_links: going forward, a full page links next and every page
    links previous; going back (page_reverse) the two swap. A client walks next links to
    the first page that is not full (often an empty one). An empty page's link has no
    marker: it starts again from the far end. A list that asked for no paging gets only a
    next link, when the configured maximum filled its page. The marker is each item's
    `key` (hosts are named, not numbered).
    """
    full = len(items) >= q.limit
    ahead, behind = (True, full) if q.page_reverse else (full, q.paged)
    base = str(request.url.remove_query_params(["marker", "page_reverse"]))
    sep = "&" if "?" in base else "?"
    links = []
    if ahead:
        marker = f"marker={quote(str(items[-1][key]), safe='')}" if items else ""
        links.append({"rel": "next", "href": f"{base}{sep}{marker}" if marker else base})
    if behind:
        marker = f"marker={quote(str(items[0][key]), safe='')}&" if items else ""
        links.append({"rel": "previous", "href": f"{base}{sep}{marker}page_reverse=True"})
    return links or None


def _inline_refs(node: Any, defs: dict) -> Any:
    """Replace pydantic's local "#/$defs/X" references with X itself (they would dangle
    once the schema is embedded in an OpenAPI operation)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def body_schema(key: str, model: type[BaseModel]) -> dict:
    """The OpenAPI request body of `{key: model}`; routes parse it themselves (Neutron's 400s)."""
    inner = model.model_json_schema(by_alias=True)
    schema = {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: _inline_refs(inner, inner.pop("$defs", {}))},
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ID_LIKE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def known_id(value: str, not_found: type, kwarg: str) -> None:
    """A path id that cannot be an id is answered 404 at once, like any missing resource."""
    if not is_resource_id(value):
        # Quoted back only when it looks like an identifier: free text from the path (a
        # space, quotes, SQL words) is not repeated in an error message.
        shown = value if _ID_LIKE.fullmatch(value) else "<invalid id>"
        raise not_found(**{kwarg: shown})
