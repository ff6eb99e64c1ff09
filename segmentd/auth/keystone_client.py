"""Talking to Keystone: segmentd's own sign-in, and asking about a token.

Every answer is read with a size limit and checked against the shape of Keystone's token
document before anything of it is used: an answer that is not what Keystone sends is
Keystone failing (503 for the request), never a 500 and never a principal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
)

from segmentd.config import KeystoneSettings

LOG = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 1_048_576  # a token document without its catalog is a few KiB
MAX_CONNECTIONS = 32
# segmentd's own token is renewed once less than RENEW_MARGIN seconds of it are left (half
# its lifetime for a short-lived one); one that looks expired on arrival (clocks apart) after
# MIN_RENEW seconds, not at every request.
RENEW_MARGIN, RENEW_FRACTION, MIN_RENEW = 300.0, 0.5, 10.0
# Statuses that say the token itself is no good (unknown, expired, revoked, malformed).
TOKEN_REFUSED = frozenset({400, 404, 413, 414, 431})
TOKEN_TEXT = re.compile(r"[A-Za-z0-9_.-]{1,8192}")  # what segmentd's own token may be made of

Text = StrictStr


class Unreachable(Exception):
    """Keystone did not answer, answered with an error that is not about the token, or
    refused segmentd itself."""


class Busy(Exception):
    """Every connection to Keystone is in use: this request waited long enough."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Domain(_Model):
    id: Text | None = None
    name: Text | None = None


class _User(_Model):
    id: Text = Field(min_length=1)
    name: Text = Field(min_length=1)
    domain: _Domain


class _Project(_Model):
    id: Text = Field(min_length=1)


class _Role(_Model):
    name: Text


class _Trustor(_Model):
    id: Text


class _Trust(_Model):
    id: Text
    impersonation: StrictBool = False
    trustor_user: _Trustor | None = None


class TokenBody(_Model):
    """What segmentd reads of Keystone's token document (GET /v3/auth/tokens)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    user: _User
    expires_at: AwareDatetime
    roles: list[_Role] = []
    project: _Project | None = None
    system: dict[str, Any] | None = None
    domain: _Domain | None = None
    audit_ids: list[Text] = []
    trust: _Trust | None = Field(default=None, alias="OS-TRUST:trust")

    def seconds_left(self) -> float:
        try:
            return self.expires_at.timestamp() - time.time()
        except (OverflowError, ValueError, OSError):
            return 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    subject_token: str | None
    body: bytes


class KeystoneClient:
    """segmentd's sign-in (one at a time, renewed early) and token validation, over one
    pool of kept-alive connections."""

    def __init__(self, settings: KeystoneSettings):
        self._settings = settings
        verify: ssl.SSLContext | bool = not settings.insecure
        if settings.cafile and not settings.insecure:
            verify = ssl.create_default_context(cafile=settings.cafile)
        self._http = httpx.AsyncClient(
            base_url=settings.auth_url or "",
            timeout=httpx.Timeout(settings.http_request_timeout,
                                  connect=settings.http_connect_timeout,
                                  pool=settings.http_connect_timeout),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                                max_keepalive_connections=MAX_CONNECTIONS // 2),
            verify=verify, follow_redirects=False,
            headers={"User-Agent": "segmentd", "Accept": "application/json"},
        )
        self._token: str | None = None
        self._renew_at = 0.0  # monotonic
        self._expires_at = 0.0  # monotonic
        self._retry_at = 0.0  # monotonic: after a failed renewal, the next attempt
        self._signing: asyncio.Future | None = None

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

    async def _request(self, method: str, url: str, **kwargs) -> Answer:
        """One request; its body read up to MAX_ANSWER_BYTES."""
        try:
            async with self._http.stream(method, url, **kwargs) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise Unreachable(f"Keystone's answer is larger than {MAX_ANSWER_BYTES} bytes")
                return Answer(response.status_code, response.headers.get("X-Subject-Token"),
                              bytes(body))
        except httpx.PoolTimeout:
            raise Busy() from None
        except (httpx.HTTPError, UnicodeError) as exc:  # UnicodeError: a header it could not send
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None

    async def service_token(self) -> str:
        """segmentd's own token: signed in again before it runs out (one sign-in at a time,
        which every caller waits for); while a renewal fails, the old token serves until it
        expires."""
        now = time.monotonic()
        if self._token is not None and now < max(self._renew_at, self._retry_at):
            return self._token  # fresh, or a renewal failed lately and this one still serves
        if self._signing is None:
            self._signing = asyncio.ensure_future(self._sign_in())
            self._signing.add_done_callback(self._signed)
        try:
            await asyncio.shield(self._signing)
        except (Unreachable, Busy):
            if self._token is not None and time.monotonic() < self._expires_at:
                self._retry_at = min(time.monotonic() + MIN_RENEW, self._expires_at)
                LOG.warning("renewing segmentd's Keystone token failed; the current one "
                            "serves until it expires")
                return self._token
            raise
        assert self._token is not None
        return self._token

    def _signed(self, done: asyncio.Future) -> None:
        self._signing = None
        if not done.cancelled():
            done.exception()  # retrieved here, whoever waits

    async def _sign_in(self) -> None:
        started = time.monotonic()
        answer = await self._request("POST", "/auth/tokens?nocatalog",
                                     json={"auth": self._credentials()})
        if answer.status == 201 and not TOKEN_TEXT.fullmatch(answer.subject_token or ""):
            LOG.error("Keystone's sign-in answer carries no usable X-Subject-Token")
            raise Unreachable("sign-in answered without a usable token")
        if answer.status != 201:
            if answer.status < 500 and answer.status not in (408, 429):
                LOG.error("Keystone refused segmentd's own credentials (%s): check [keystone]",
                          answer.status)
            raise Unreachable(f"sign-in answered {answer.status}")
        lifetime = _parse(answer.body).seconds_left()
        if lifetime > 0:
            renew_in = lifetime - min(RENEW_MARGIN, lifetime * RENEW_FRACTION)
        else:  # expired by this host's clock: not again before MIN_RENEW (a 401 still will)
            renew_in = MIN_RENEW
        self._token = answer.subject_token
        self._renew_at, self._expires_at = started + renew_in, started + max(lifetime, 0.0)
        LOG.info("signed in to Keystone; renewing segmentd's token in %.0f s", renew_in)

    async def token_info(self, token: str) -> TokenBody | None:
        """Keystone's description of a valid token; None for one it refuses (unknown,
        expired, revoked or malformed). Unreachable when it cannot tell; Busy when no
        connection was free in time."""
        for attempt in (1, 2):
            headers = {"X-Auth-Token": await self.service_token(), "X-Subject-Token": token}
            answer = await self._request("GET", "/auth/tokens?nocatalog", headers=headers)
            if answer.status == 200:
                return _parse(answer.body)
            if answer.status in TOKEN_REFUSED:
                return None
            if answer.status == 401 and attempt == 1:
                self._token = None  # segmentd's own token was revoked or ran out: sign in again
                self._renew_at = self._expires_at = self._retry_at = 0.0
                continue
            if answer.status in (401, 403):
                LOG.error("Keystone does not let segmentd validate tokens (%s): give its user "
                          "the service or admin role", answer.status)
            raise Unreachable(f"token validation answered {answer.status}")
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """Whether Keystone answers and takes segmentd's credentials (signing in if due)."""
        await self.service_token()
        answer = await self._request("GET", "/")
        if answer.status >= 300:
            raise Unreachable(f"Keystone's version document answered {answer.status}")


class _TokenDocument(_Model):
    token: TokenBody


def _parse(body: bytes) -> TokenBody:
    try:
        return _TokenDocument.model_validate_json(body).token
    except ValidationError as exc:
        raise Unreachable(f"Keystone's answer is not a token document "
                          f"({exc.error_count()} problem(s))") from None
