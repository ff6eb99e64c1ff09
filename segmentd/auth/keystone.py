"""Keystone tokens: validated with Keystone's token API, cached per process.

segmentd signs in to Keystone with its own credentials ([keystone] in the settings) and
asks `GET /v3/auth/tokens` about each token it has not seen lately, as keystonemiddleware
does for Neutron. What a token maps to:

- a project-scoped token: that project, with the token's role names (Keystone already adds
  the implied ones: admin implies member, member implies reader);
- a system-scoped token: no project; admin if it carries the admin role;
- an unscoped or domain-scoped token: refused (401), it names no project to act in.

A user of `host_user_domain_name` is a host agent bound to the host of its user name.

Keystone being unreachable is never a 401 (every client would drop its token) but a 503
with Retry-After, for tokens this process has not validated lately; after a failure the
next attempt waits a moment (at most `MAX_PAUSE` seconds), so a Keystone outage costs one
connection attempt per pause, not one per request, and recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from segmentd.auth.tokens import TOKEN_PREFIX, Principal, TokenValidator
from segmentd.config import KeystoneSettings
from segmentd.errors import IdentityUnavailable

LOG = logging.getLogger(__name__)
MIN_PAUSE, MAX_PAUSE = 1.0, 5.0  # seconds between attempts while Keystone is unreachable
# segmentd's own token is renewed once less than RENEW_MARGIN seconds of it are left, or
# half its lifetime for a short-lived one.
RENEW_FRACTION = 0.5
RENEW_MARGIN = 300.0
HEALTHY_RECHECK = 5.0  # readiness asks Keystone at most this often while it answers
# What a Keystone token is made of (Fernet: URL-safe base64; JWS: base64url and dots).
# Anything else is refused without asking Keystone.
TOKEN_TEXT = re.compile(r"[A-Za-z0-9_\-.=+/~]+")


class Unreachable(Exception):
    """Keystone did not answer, or answered with a server error or a refusal of segmentd."""


def _parse_time(text: str) -> float:
    """Keystone's ISO 8601 timestamp (UTC, with or without fraction) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


class KeystoneClient:
    """The HTTP side: segmentd's own sign-in, and asking Keystone about a token."""

    def __init__(self, settings: KeystoneSettings, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        verify: ssl.SSLContext | bool = not settings.insecure
        if settings.cafile and not settings.insecure:
            verify = ssl.create_default_context(cafile=settings.cafile)
        self._http = httpx.AsyncClient(
            base_url=settings.auth_url or "",
            timeout=httpx.Timeout(settings.http_request_timeout,
                                  connect=settings.http_connect_timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            verify=verify, transport=transport,
            headers={"User-Agent": "segmentd", "Accept": "application/json"},
        )
        self._token: str | None = None
        self._renew_at = 0.0  # monotonic
        self._sign_in_lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    def _credentials(self) -> dict[str, Any]:
        s = self._settings
        if s.application_credential_id:
            return {"identity": {"methods": ["application_credential"], "application_credential": {
                "id": s.application_credential_id, "secret": s.application_credential_secret}}}
        return {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.username, "password": s.password,
                "domain": {"name": s.user_domain_name}}}},
            "scope": {"project": {"name": s.project_name,
                                  "domain": {"name": s.project_domain_name}}},
        }

    async def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise Unreachable(f"Keystone answered {response.status_code}")
        return response

    async def service_token(self) -> str:
        """segmentd's own token, signing in again before it runs out."""
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._sign_in_lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                await self._sign_in()
        assert self._token is not None
        return self._token

    async def _sign_in(self) -> None:
        started = time.monotonic()
        response = await self._request("POST", "/auth/tokens?nocatalog",
                                       json={"auth": self._credentials()})
        token = response.headers.get("X-Subject-Token")
        if response.status_code != 201 or not token:
            LOG.error("Keystone refused segmentd's own credentials (%s): check [keystone]",
                      response.status_code)
            raise Unreachable(f"sign-in refused with {response.status_code}")
        try:
            body = response.json()["token"]
            lifetime = _parse_time(body["expires_at"]) - time.time()
        except (ValueError, KeyError, TypeError):
            raise Unreachable("Keystone's sign-in answer has no expiry") from None
        renew_in = max(0.0, lifetime - min(RENEW_MARGIN, lifetime * RENEW_FRACTION))
        self._token, self._renew_at = token, started + renew_in
        LOG.info("signed in to Keystone; renewing segmentd's token in %.0f s", renew_in)

    async def token_info(self, token: str) -> dict[str, Any] | None:
        """Keystone's description of a valid token; None for one it does not know (unknown,
        expired or revoked). Unreachable when it cannot tell."""
        for attempt in (1, 2):
            headers = {"X-Auth-Token": await self.service_token(), "X-Subject-Token": token}
            response = await self._request("GET", "/auth/tokens?nocatalog", headers=headers)
            if response.status_code == 200:
                try:
                    return response.json()["token"]
                except (ValueError, KeyError, TypeError):
                    raise Unreachable("Keystone's token answer is not a token") from None
            if response.status_code == 404:
                return None
            if response.status_code == 401 and attempt == 1:
                self._token = None  # segmentd's own token was revoked or ran out: sign in again
                continue
            if response.status_code in (401, 403):
                LOG.error("Keystone does not let segmentd validate tokens (%s): give its user "
                          "the service or admin role", response.status_code)
                raise Unreachable(f"validation refused with {response.status_code}")
            LOG.warning("Keystone answered %s about a token; refusing it", response.status_code)
            return None
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """Whether Keystone answers and takes segmentd's credentials (signing in if due)."""
        await self.service_token()
        await self._request("GET", "/")


def principal_of(body: dict[str, Any], host_domain: str | None) -> Principal | None:
    """Who a token Keystone vouched for speaks for; None when it names no project."""
    user = body.get("user") or {}
    roles = frozenset(str(r.get("name", "")).lower() for r in body.get("roles") or ())
    audit_ids = body.get("audit_ids") or [user.get("id")]  # never the token itself
    common = {"token_id": audit_ids[0], "user_id": user.get("id"), "user_name": user.get("name")}
    if host_domain is not None and (user.get("domain") or {}).get("name") == host_domain:
        common["host"] = user.get("name")
    project = body.get("project")
    if project and project.get("id"):
        return Principal(project_id=project["id"], roles=roles, **common)
    if body.get("system") and "admin" in roles:
        return Principal(project_id="", roles=roles, **common)
    return None


class _Cache:
    """A bounded map from a token's hash to (fresh until, principal), oldest out first."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._size = size

    def get(self, key: bytes, now: float) -> tuple[bool, Principal | None]:
        hit = self._entries.get(key)
        if hit is None:
            return False, None
        if hit[0] <= now:
            del self._entries[key]
            return False, None
        return True, hit[1]

    def put(self, key: bytes, until: float, principal: Principal | None) -> None:
        self._entries[key] = (until, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class KeystoneTokenValidator:
    """Keystone's tokens, and segmentd's own beside them (`local`, when accepted).

    A token with segmentd's prefix is only ever looked up locally. Another is looked up
    locally first (an operator's bootstrap token need not have the prefix), then asked of
    Keystone. Valid and invalid answers are cached apart, so a flood of bad tokens cannot
    push out the good ones.
    """

    def __init__(self, settings: KeystoneSettings, local: TokenValidator | None,
                 client: KeystoneClient | None = None) -> None:
        self._settings = settings
        self._local = local
        self._client = client or KeystoneClient(settings)
        self._valid = _Cache(settings.token_cache_size)
        self._invalid = _Cache(settings.token_cache_size)
        self._inflight: dict[bytes, asyncio.Future] = {}
        self._failures = 0
        self._paused_until = 0.0  # monotonic: no attempt before it
        self._checked_at = -math.inf  # monotonic: Keystone last answered
        self.last_error: str | None = None

    async def close(self) -> None:
        await self._client.close()

    @property
    def available(self) -> bool:
        return self._failures == 0

    async def validate(self, token: str,
                       before_asking: Callable[[], None] | None = None) -> Principal | None:
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        found, principal = self._valid.get(key, now)
        if found:
            return principal
        if token.startswith(TOKEN_PREFIX):
            return await self._local.validate(token) if self._local is not None else None
        if self._local is not None and (principal := await self._local.validate(token)):
            return principal
        found, _ = self._invalid.get(key, now)
        if found or not TOKEN_TEXT.fullmatch(token):
            return None
        pending = self._inflight.get(key)
        if pending is None:  # one question to Keystone per token, however many ask at once
            if before_asking is not None:
                before_asking()
            pending = asyncio.ensure_future(self._ask(key, token))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(pending)

    def _settled(self, key: bytes, done: asyncio.Future) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller has gone

    async def _ask(self, key: bytes, token: str) -> Principal | None:
        self._refuse_while_paused()
        try:
            body = await self._client.token_info(token)
        except Unreachable as exc:
            pause = self._failed(exc)
            raise IdentityUnavailable(retry_after=math.ceil(pause)) from None
        self._answered()
        now = time.monotonic()
        if body is None:
            LOG.info("Keystone does not know a token (unknown, expired or revoked)")
            self._invalid.put(key, now + self._settings.invalid_token_cache_time, None)
            return None
        principal = principal_of(body, self._settings.host_user_domain_name)
        if principal is None:
            LOG.info("refused a token of user %s scoped to no project",
                     (body.get("user") or {}).get("id"))
            self._invalid.put(key, now + self._settings.invalid_token_cache_time, None)
            return None
        try:
            left = _parse_time(body["expires_at"]) - time.time()
        except (KeyError, ValueError, TypeError):
            left = 0.0
        ttl = min(self._settings.token_cache_time, left)
        if ttl > 0:
            self._valid.put(key, now + ttl, principal)
        return principal

    def _refuse_while_paused(self) -> None:
        wait = self._paused_until - time.monotonic()
        if wait > 0:
            raise IdentityUnavailable(retry_after=max(1, math.ceil(wait)))

    def _failed(self, exc: Exception) -> float:
        """Pause further attempts (longer after each failure in a row); returns the pause."""
        self._failures += 1
        pause = min(MAX_PAUSE, MIN_PAUSE * 2 ** (self._failures - 1))
        self._paused_until = time.monotonic() + pause
        if self.last_error is None or self._failures == 1:
            LOG.warning("Keystone is unreachable (%s): tokens not validated in the last "
                        "%g s are answered 503 until it is back", exc,
                        self._settings.token_cache_time)
        self.last_error = str(exc)
        return pause

    def _answered(self) -> None:
        if self._failures:
            LOG.info("Keystone answers again after %d failed attempt(s)", self._failures)
        self._failures, self._paused_until, self.last_error = 0, 0.0, None
        self._checked_at = time.monotonic()

    async def check(self) -> bool:
        """Whether Keystone answers now (asked at most every few seconds, never while paused)."""
        now = time.monotonic()
        if self.available and now - self._checked_at < HEALTHY_RECHECK:
            return True
        if now < self._paused_until:
            return False
        try:
            await self._client.ping()
        except Unreachable as exc:
            self._failed(exc)
            return False
        self._answered()
        return True

    def cached(self) -> tuple[int, int]:
        """How many valid and invalid tokens this process remembers."""
        return len(self._valid), len(self._invalid)
