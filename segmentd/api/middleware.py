"""Pure ASGI middleware (cheaper per request than BaseHTTPMiddleware)."""

from __future__ import annotations

import uuid


class RequestIdMiddleware:
    """Give every request an id, answer it in X-Openstack-Request-Id, keep it for the logs."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-openstack-request-id", request_id.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
