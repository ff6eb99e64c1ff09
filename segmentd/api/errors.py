"""One error mapper: Neutron's error body for every failure, nothing internal in it."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from segmentd.api.deps import unrouted_caller
from segmentd.errors import SegmentdError

LOG = logging.getLogger(__name__)

# Headers for a JSON API that no browser should render, frame, cache or sniff.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

HTTP_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    413: "HTTPRequestEntityTooLarge",
}


def error_response(
    status: int, type_: str, message: str, request_id: str | None = None, headers=None
):
    """The NeutronError body; `request_id` only where ResponseHeadersMiddleware cannot add it."""
    body = orjson.dumps({"NeutronError": {"type": type_, "message": message, "detail": ""}})
    headers = dict(headers or {})
    if request_id:
        headers["X-Openstack-Request-Id"] = request_id
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _domain_error(request: Request, exc: SegmentdError):
    return error_response(exc.status, exc.type, str(exc), headers=exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException):
    """The router's own answers (no route: 404; no such method: 405), after the caller has
    passed the limits every request passes."""
    if exc.status_code in (404, 405) and getattr(request.state, "context", None) is None:
        try:
            await unrouted_caller(request)
        except SegmentdError as err:  # OverLimit
            return await _domain_error(request, err)
    messages = {404: "The resource could not be found.", 405: "The method is not allowed."}
    if exc.status_code == 405:
        headers = {"Allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
        return error_response(405, "HTTPMethodNotAllowed", messages[405], headers=headers)
    message = messages.get(exc.status_code, "The request could not be processed.")
    return error_response(exc.status_code, HTTP_TYPES.get(exc.status_code, "HTTPError"), message)


async def _validation_error(request: Request, exc: RequestValidationError):
    """FastAPI's 422 for path and query parameters becomes Neutron's 400."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return error_response(400, "HTTPBadRequest", f"Invalid input for {where}.")


async def _unexpected(request: Request, exc: Exception):
    """Anything unexpected: logged in full, answered with nothing but the request id."""
    # Served by Starlette's outermost middleware, outside ResponseHeadersMiddleware's reach.
    request_id = getattr(request.state, "request_id", "")
    LOG.exception("unhandled error in %s %s [%s]", request.method, request.url.path, request_id)
    return error_response(
        500, "HTTPInternalServerError",
        f"The server could not complete the request (request id {request_id}).", request_id,
        headers=SECURITY_HEADERS,  # ResponseHeadersMiddleware does not wrap this response
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SegmentdError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
