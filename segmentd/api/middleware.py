"""Pure ASGI middleware (cheaper per request than BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import uuid

from starlette.requests import Request

from segmentd.api.errors import SECURITY_HEADERS, error_response
from segmentd.api.runtime import audit_target
from segmentd.errors import RequestEntityTooLarge
from segmentd.inputs import bounded_int
from segmentd.services import audit

LOG = logging.getLogger(__name__)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

RAW_SECURITY_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class ResponseHeadersMiddleware:
    """A request id for every request (X-Openstack-Request-Id) and the security headers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [(b"x-openstack-request-id", request_id.encode()), *RAW_SECURITY_HEADERS]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413, by Content-Length or while they stream in.

    A 413 decided by Content-Length comes before anyone is identified, so it is logged and
    not stored in the audit trail (storing it would be an unauthenticated write path).
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if bounded_int(value.decode("latin-1"), 0, self.limit) is None:
                    LOG.info("refused a %s-byte body on %s %s", value[:20].decode(errors="replace"),
                             scope["method"], scope["path"])
                    err = RequestEntityTooLarge(limit=self.limit)
                    response = error_response(err.status, err.type, str(err))
                    return await response(scope, receive, send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise RequestEntityTooLarge(limit=self.limit)
            return message

        await self.app(scope, counting_receive, send)


class AuditFailuresMiddleware:
    """Record mutating requests that did not succeed, in a transaction of their own.

    Successful writes record their audit row inside their own transaction (Runtime.write).
    Only refusals of an identified caller are stored, within that caller's audit budget.
    Those of anonymous callers (no valid token, in token mode), of the rate limits (429) and
    those beyond the budget go to the log, in normalized form: their number is the caller's
    to choose, so storing them all would be a write path for anyone, or for a token that may
    change nothing.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            return await self.app(scope, receive, send)
        status = 500

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            state = scope.get("state", {})
            if status >= 400 and not state.get("audited"):
                request = Request(scope)
                ctx = state.get("context")
                if status == 429 or ctx is None:
                    self._log(request, ctx, status, "")
                elif not request.app.state.runtime.limits.record_refusal(
                        state.get("caller_key") or ctx.token_id or ""):
                    self._log(request, ctx, status, ", over the audit budget")
                else:
                    await self._record(request, ctx, status)

    @staticmethod
    def _log(request: Request, ctx, status: int, why: str) -> None:
        """A refusal that is logged rather than stored, in normalized form."""
        action, resource_type, _ = audit_target(request)
        client = request.scope.get("client") or ("unknown", 0)
        caller = "" if ctx is None else f" project {ctx.project_id} token {ctx.token_id}"
        LOG.info("refused %s (%s) from %s%s: %d [%s%s]", action, resource_type, client[0],
                 caller, status, request.scope.get("state", {}).get("request_id", ""), why)

    async def _record(self, request: Request, ctx, status: int) -> None:
        rt = request.app.state.runtime
        action, resource_type, resource_id = audit_target(request)
        try:
            async with rt.engine.begin() as conn:
                await audit.record(
                    conn, ctx, request_id=request.state.request_id,
                    action=action, resource_type=resource_type, resource_id=resource_id,
                    status=status,
                )
        except Exception:
            LOG.exception("could not record the audit event of a refused request")
