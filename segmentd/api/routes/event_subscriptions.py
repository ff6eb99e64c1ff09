"""/v2.0/event-subscriptions (webhooks, admin-only) and /v2.0/event-schemas."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from segmentd.api.deps import ContextDep, body_schema, json_response, known_id, parse_body
from segmentd.api.render import list_response, show_response
from segmentd.api.runtime import runtime
from segmentd.auth.policy import enforce
from segmentd.constants import EVENT_TYPES
from segmentd.errors import EventSubscriptionNotFound, EventTypeNotFound
from segmentd.events import catalog
from segmentd.schemas.subscriptions import SUBSCRIPTION_READ_ONLY, SubscriptionCreate, SubscriptionUpdate
from segmentd.services import subscriptions

router = APIRouter(tags=["events"])
FIELDS = (
    "id", "name", "url", "event_types", "enabled", "created_at", "updated_at", "revision_number",
)
DELIVERY_FIELDS = (
    "id", "event_id", "event_type", "target", "status", "attempts", "last_error",
    "next_attempt_at", "delivered_at",
)
NOT_FOUND = (EventSubscriptionNotFound, "id")


@router.get("/v2.0/event-subscriptions")
async def list_event_subscriptions(request: Request, ctx: ContextDep):
    return await list_response(
        request, ctx, "event_subscriptions", FIELDS, subscriptions.list_subscriptions
    )


@router.post(
    "/v2.0/event-subscriptions", status_code=201,
    openapi_extra=body_schema("event_subscription", SubscriptionCreate),
)
async def create_event_subscription(request: Request, ctx: ContextDep):
    rt = runtime(request)
    data = await parse_body(request, "event_subscription", SubscriptionCreate)
    sub = await rt.write(ctx, request, lambda uow: subscriptions.create_subscription(
        ctx, uow, rt.address_policy, data))
    return json_response({"event_subscription": sub}, 201)


@router.get("/v2.0/event-subscriptions/{sub_id}")
async def show_event_subscription(sub_id: str, request: Request, ctx: ContextDep):
    return await show_response(
        request, ctx, "event_subscription", FIELDS, subscriptions.get_subscription, sub_id,
        NOT_FOUND,
    )


@router.put(
    "/v2.0/event-subscriptions/{sub_id}",
    openapi_extra=body_schema("event_subscription", SubscriptionUpdate),
)
async def update_event_subscription(sub_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(sub_id, *NOT_FOUND)
    data = await parse_body(request, "event_subscription", SubscriptionUpdate, SUBSCRIPTION_READ_ONLY)
    sub = await rt.write(ctx, request, lambda uow: subscriptions.update_subscription(
        ctx, uow, rt.address_policy, sub_id, data))
    return json_response({"event_subscription": sub})


@router.delete("/v2.0/event-subscriptions/{sub_id}", status_code=204)
async def delete_event_subscription(sub_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(sub_id, *NOT_FOUND)
    await rt.write(ctx, request, lambda uow: subscriptions.delete_subscription(ctx, uow, sub_id))
    return Response(status_code=204)


@router.get("/v2.0/event-subscriptions/{sub_id}/deliveries")
async def list_event_deliveries(sub_id: str, request: Request, ctx: ContextDep):
    known_id(sub_id, *NOT_FOUND)
    return await list_response(
        request, ctx, "deliveries", DELIVERY_FIELDS, subscriptions.list_deliveries, sub_id
    )


@router.get("/v2.0/event-schemas")
async def list_event_schemas(ctx: ContextDep):
    """Every event type and its JSON Schema (the files shipped in the package)."""
    enforce(ctx, "get_event_schema")
    return json_response(
        {"event_schemas": [{"type": t, "schema": catalog.schema(t)} for t in EVENT_TYPES]}
    )


@router.get("/v2.0/event-schemas/{event_type}")
async def show_event_schema(event_type: str, ctx: ContextDep):
    """The JSON Schema document of one event type, as is."""
    enforce(ctx, "get_event_schema")
    if event_type not in EVENT_TYPES:
        shown = event_type if event_type.isprintable() and len(event_type) <= 64 else "<invalid>"
        raise EventTypeNotFound(type=shown)
    return json_response(catalog.schema(event_type))
