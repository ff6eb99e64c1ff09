"""/v2.0/agents: Neutron's agents API, admin-only by default."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from segmentd.api.deps import (
    ContextDep,
    body_schema,
    json_response,
    known_id,
    parse_body,
)
from segmentd.api.render import list_response, show_response
from segmentd.api.runtime import runtime
from segmentd.errors import AgentNotFound
from segmentd.schemas.hosts import AGENT_READ_ONLY, AgentUpdate
from segmentd.services import agents

router = APIRouter(tags=["agents"])
FIELDS = (
    "id", "host", "agent_type", "binary", "alive", "admin_state_up", "description",
    "configurations", "heartbeat_timestamp", "started_at", "created_at", "availability_zone",
    "topic",
)


@router.get("/v2.0/agents")
async def list_agents(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await list_response(request, ctx, "agents", FIELDS, agents.list_agents, rt.clock)


@router.get("/v2.0/agents/{agent_id}")
async def show_agent(agent_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)

    async def getter(ctx, conn, agent_id):
        return await agents.get_agent(ctx, conn, rt.clock, agent_id)

    return await show_response(request, ctx, "agent", FIELDS, getter, agent_id, (AgentNotFound, "id"))


@router.put("/v2.0/agents/{agent_id}", openapi_extra=body_schema("agent", AgentUpdate))
async def update_agent(agent_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(agent_id, AgentNotFound, "id")
    data = await parse_body(request, "agent", AgentUpdate, AGENT_READ_ONLY)
    agent = await rt.write(ctx, request, lambda uow: agents.update_agent(
        ctx, uow, rt.clock, agent_id, data))
    return json_response({"agent": agent})


@router.delete("/v2.0/agents/{agent_id}", status_code=204)
async def delete_agent(agent_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(agent_id, AgentNotFound, "id")
    async with rt.read() as conn:  # found first, then locked and changed (see delete_agent)
        host = await agents.host_of_agent(ctx, conn, agent_id)
    await rt.write(ctx, request, lambda uow: agents.delete_agent(ctx, uow, rt.clock, agent_id, host))
    return Response(status_code=204)
