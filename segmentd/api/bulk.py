"""Create bodies of one resource or many: `{"network": {...}}` or Neutron's bulk form
`{"networks": [{...}, ...]}`, which creates all of them in one transaction or none.

Neutron accepts the bulk form on every create (networks, subnets and ports natively,
segments by creating one after another and deleting them again if one fails)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from segmentd.api.deps import body_schema, json_response, read_json, validate_attributes
from segmentd.api.runtime import runtime
from segmentd.context import RequestContext
from segmentd.errors import HTTPBadRequest
from segmentd.services.uow import UnitOfWork, create_all

CreateOne = Callable[[UnitOfWork, dict[str, Any]], Awaitable[dict[str, Any]]]


def _attributes(item: Any, key: str) -> dict[str, Any]:
    """A bulk item is the attributes, or `{key: attributes}` (Neutron takes both)."""
    if not isinstance(item, dict):
        raise HTTPBadRequest(msg=f"Each item of '{key}s' must be a {key} (a JSON object)")
    if set(item) == {key} and isinstance(item[key], dict):
        return item[key]
    return item


async def parse_create_body(
    request: Request, key: str, model: type[BaseModel], max_items: int
) -> tuple[list[dict[str, Any]], bool]:
    """The parsed attributes of each resource to create, and whether the body was bulk.

    Every item is validated before anything is written; the first bad one is the 400.
    """
    doc = await read_json(request)
    collection = f"{key}s"
    if isinstance(doc, dict) and set(doc) == {collection}:
        items = doc[collection]
        if not isinstance(items, list):
            raise HTTPBadRequest(msg=f"'{collection}' must be a list of {collection}")
        if not items:
            raise HTTPBadRequest(msg="Resources required")  # Neutron's words
        if len(items) > max_items:
            raise HTTPBadRequest(
                msg=f"A bulk request may create at most {max_items} {collection}, not {len(items)}"
            )
        return [validate_attributes(_attributes(i, key), model) for i in items], True
    if not isinstance(doc, dict) or set(doc) != {key} or not isinstance(doc[key], dict):
        raise HTTPBadRequest(
            msg=f"Resource body required with the single key '{key}' or '{collection}'"
        )
    return [validate_attributes(doc[key], model)], False


async def create_response(
    request: Request,
    ctx: RequestContext,
    key: str,
    model: type[BaseModel],
    create_one: CreateOne,
    render: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
) -> Response:
    """201 with `{key: created}`, or `{key + "s": [created, ...]}` for a bulk body."""
    rt = runtime(request)
    items, bulk = await parse_create_body(request, key, model, rt.settings.bulk_max_items)
    if not bulk:
        created = await rt.write(ctx, request, lambda uow: create_one(uow, items[0]))
        return json_response({key: render(created)}, 201)
    created_all = await rt.write(ctx, request, lambda uow: create_all(uow, items, create_one))
    return json_response({f"{key}s": [render(c) for c in created_all]}, 201)


def create_body_schema(key: str, model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a create: one resource, or a bulk list of them."""
    single = body_schema(key, model)
    content = single["requestBody"]["content"]["application/json"]
    one = content["schema"]
    item = one["properties"][key]
    many = {
        "type": "object",
        "required": [f"{key}s"],
        "additionalProperties": False,
        "properties": {f"{key}s": {
            "type": "array", "minItems": 1, "items": item,
            "description": "created in one transaction, all or none (at most bulk_max_items)",
        }},
    }
    content["schema"] = {"oneOf": [one, many]}
    return single
