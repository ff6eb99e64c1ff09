"""Keystone tokens: validated with Keystone's token API (auth/keystone_client.py), cached per
process.

What a token maps to:
- a project-scoped token: that project, with the token's role names (Keystone already adds
  the implied ones: admin implies member, member implies reader);
- a system-scoped token: no project; admin if it carries the admin role;
- an unscoped or domain-scoped token: refused (401), it names no project to act in;
- a trust's token carrying the service role: refused. A trust hands its trustor's roles to
  another user, so a host agent's user (bound to its host by its domain) could hand its
  service role to a user outside that domain, who would then be bound to no host.
A user of `host_user_domain_name` is a host agent bound to the host of its user name.

Keystone failing is never a 401 (every client would drop its token) but a 503 with
Retry-After, for tokens this process has not validated lately. After a failure nothing is
asked of Keystone for a pause (1 s, doubling to MAX_PAUSE while failures go on); then one
request at a time probes it, the others answered 503 at once, until one succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from segmentd.auth.keystone_client import Busy, KeystoneClient, TokenBody, Unreachable
from segmentd.auth.tokens import TOKEN_PREFIX, Principal, TokenValidator
from segmentd.config import KeystoneSettings
from segmentd.errors import IdentityUnavailable

LOG = logging.getLogger(__name__)
MIN_PAUSE, MAX_PAUSE = 1.0, 5.0  # seconds between attempts while Keystone is unreachable
HEALTHY_RECHECK = 5.0  # readiness asks Keystone at most this often while it answers
# Valid tokens remembered per Keystone user (a tenth of the cache): one user's tokens cannot
# push out everyone else's.
PER_USER_SHARE = 10
# A Keystone token in the one form Keystone issues it: Fernet (URL-safe base64 without
# padding) or JWS (three such parts, the first a JSON header). Keystone's decoders accept
# other spellings of the same token (padding, +/ for -_, stray dots); refusing them keeps
# one cache entry and one validation per token.
FERNET = re.compile(r"[A-Za-z0-9_-]+")
JWS = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS = {0: 0, 2: 0xF, 3: 0x3}  # by length mod 4: the last character's spare bits


def _canonical_b64(part: str) -> bool:
    """URL-safe base64 without padding whose last character has no spare bits set (else
    the same bytes have several spellings)."""
    spare = _UNUSED_BITS.get(len(part) % 4)
    return spare is not None and not (_B64.index(part[-1]) & spare)


def canonical(token: str) -> bool:
    """The one spelling Keystone issues of a Fernet or JWS token."""
    if FERNET.fullmatch(token):
        return _canonical_b64(token)
    return bool(JWS.fullmatch(token)) and all(_canonical_b64(p) for p in token.split("."))


def principal_of(body: TokenBody, host_domain: str | None) -> Principal | None:
    """Who a token Keystone vouched for speaks for; None when it may not act here."""
    roles = frozenset(r.name.lower() for r in body.roles)
    user_name = body.user.name
    if body.trust is not None:
        if "service" in roles:
            return None
        trustor = body.trust.trustor_user.id if body.trust.trustor_user else "?"
        user_name = f"{user_name} (trust {body.trust.id} of user {trustor})"[:255]
    common = {
        "token_id": (body.audit_ids or [body.user.id])[0],  # never the token itself
        "user_id": body.user.id, "user_name": user_name,
    }
    if host_domain is not None and body.user.domain.name == host_domain:
        common["host"] = body.user.name
    if body.project is not None:
        return Principal(project_id=body.project.id, roles=roles, **common)
    if body.system is not None and "admin" in roles:
        return Principal(project_id="", roles=roles, **common)
    return None


class _Cache:
    """A bounded map from a token's hash to (fresh until, principal), oldest out first,
    with at most `per_user` entries of one user."""

    def __init__(self, size: int, per_user: int | None = None) -> None:
        self._entries: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._size = size
        self._per_user = per_user
        self._by_user: dict[str | None, OrderedDict[bytes, None]] = {}

    def get(self, key: bytes, now: float) -> tuple[bool, Principal | None]:
        hit = self._entries.get(key)
        if hit is None:
            return False, None
        if hit[0] <= now:
            self._drop(key)
            return False, None
        self._entries.move_to_end(key)  # least recently used out first
        if self._per_user is not None and hit[1] is not None:
            self._by_user[hit[1].user_id].move_to_end(key)
        return True, hit[1]

    def put(self, key: bytes, until: float, principal: Principal | None) -> None:
        self._drop(key)
        self._entries[key] = (until, principal)
        if self._per_user is not None and principal is not None:
            mine = self._by_user.setdefault(principal.user_id, OrderedDict())
            mine[key] = None
            if len(mine) > self._per_user:
                self._drop(next(iter(mine)))
        while len(self._entries) > self._size:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry[1] is not None and self._per_user is not None:
            mine = self._by_user.get(entry[1].user_id)
            if mine is not None:
                mine.pop(key, None)
                if not mine:
                    del self._by_user[entry[1].user_id]

    def __len__(self) -> int:
        return len(self._entries)


class KeystoneTokenValidator:
    """Keystone's tokens, and segmentd's own beside them (`local`, when accepted).

    A token with segmentd's prefix is only ever looked up locally. Another is looked up
    locally first (an operator's bootstrap token need not have the prefix), then asked of
    Keystone. Valid and refused tokens are cached apart, so a flood of bad tokens cannot
    push out the good ones; concurrent requests with one new token share one question.
    """

    def __init__(self, settings: KeystoneSettings, local: TokenValidator | None,
                 client: KeystoneClient | None = None) -> None:
        self._settings = settings
        self._local = local
        self._client = client or KeystoneClient(settings)
        self._valid = _Cache(settings.token_cache_size,
                             max(1, settings.token_cache_size // PER_USER_SHARE))
        self._invalid = _Cache(settings.token_cache_size)
        self._inflight: dict[bytes, asyncio.Future] = {}
        self._failures = 0
        self._paused_until = 0.0  # monotonic: no attempt before it
        self._probing = False  # after a pause, one request at a time asks Keystone
        self._checked_at = -math.inf  # monotonic: Keystone last answered
        self._check: asyncio.Future | None = None

    async def close(self) -> None:
        await self._client.close()

    @property
    def available(self) -> bool:
        return self._failures == 0

    async def validate(self, token: str,
                       before_asking: Callable[[], None] | None = None) -> Principal | None:
        key = hashlib.sha256(token.encode()).digest()
        found, principal = self._valid.get(key, time.monotonic())
        if found:
            return principal
        if token.startswith(TOKEN_PREFIX):
            return await self._local.validate(token) if self._local is not None else None
        if self._local is not None and (principal := await self._local.validate(token)):
            return principal
        if not canonical(token):
            return None
        now = time.monotonic()  # again: others may have asked while the lookup ran
        found, principal = self._valid.get(key, now)
        if found:
            return principal
        found, _ = self._invalid.get(key, now)
        if found:
            return None
        pending = self._inflight.get(key)
        if pending is None:  # one question to Keystone per token, however many ask at once
            if before_asking is not None:
                before_asking()
            probe = self._admit()
            pending = asyncio.ensure_future(self._ask(key, token, probe))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(pending)

    def _settled(self, key: bytes, done: asyncio.Future) -> None:
        self._inflight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller has gone

    def _admit(self) -> bool:
        """While Keystone is failing: 503 during the pause, then one probe at a time.
        True when this request is the probe (it alone clears the probe's place)."""
        if self._failures == 0:
            return False
        wait = self._paused_until - time.monotonic()
        if wait > 0 or self._probing:
            raise IdentityUnavailable(retry_after=max(1, math.ceil(wait)))
        self._probing = True
        return True

    async def _ask(self, key: bytes, token: str, probe: bool) -> Principal | None:
        try:
            body = await self._client.token_info(token)
        except Busy:
            LOG.warning("every connection to Keystone is busy; answering 503")
            raise IdentityUnavailable(retry_after=1) from None
        except Unreachable as exc:
            raise IdentityUnavailable(retry_after=math.ceil(self._failed(exc))) from None
        finally:
            if probe:
                self._probing = False
        self._answered()
        now = time.monotonic()
        principal = None if body is None else principal_of(body, self._settings.host_user_domain_name)
        if principal is None:
            LOG.info("refused a token: %s", "unknown, expired or revoked" if body is None else
                     f"user {body.user.id} may not act with it (scope, or a trust's service role)")
            self._invalid.put(key, now + self._settings.invalid_token_cache_time, None)
            return None
        ttl = min(self._settings.token_cache_time, body.seconds_left())
        if ttl > 0:
            self._valid.put(key, now + ttl, principal)
        return principal

    def _failed(self, exc: Exception) -> float:
        """Pause further attempts (longer after each failure in a row); returns the pause.
        Requests that failed together (waiting for one sign-in) count as one failure."""
        left = self._paused_until - time.monotonic()
        if left > 0:
            return left
        self._failures += 1
        pause = min(MAX_PAUSE, MIN_PAUSE * 2 ** (self._failures - 1))
        self._paused_until = time.monotonic() + pause
        if self._failures == 1:
            LOG.warning("Keystone is unreachable (%s): tokens not validated in the last "
                        "%g s are answered 503 until it is back", exc,
                        self._settings.token_cache_time)
        return pause

    def _answered(self) -> None:
        if self._failures:
            LOG.info("Keystone answers again after %d failed attempt(s)", self._failures)
        self._failures, self._paused_until = 0, 0.0
        self._checked_at = time.monotonic()

    async def check(self) -> bool:
        """Whether Keystone answers now: asked at most every few seconds, one question at a
        time, never while paused or while a probe is out; meanwhile what is known."""
        now = time.monotonic()
        if self.available and now - self._checked_at < HEALTHY_RECHECK:
            return True
        if self._check is None:
            try:
                probe = self._admit()
            except IdentityUnavailable:
                return False
            self._check = asyncio.ensure_future(self._ping(probe))
            self._check.add_done_callback(self._checked)
        return await asyncio.shield(self._check)

    def _checked(self, done: asyncio.Future) -> None:
        self._check = None
        if not done.cancelled():
            done.exception()

    async def _ping(self, probe: bool) -> bool:
        try:
            await self._client.ping()
        except Busy:
            return self.available
        except Unreachable as exc:
            self._failed(exc)
            return False
        finally:
            if probe:
                self._probing = False
        self._answered()
        return True

    def cached(self) -> tuple[int, int]:
        """How many valid and refused tokens this process remembers."""
        return len(self._valid), len(self._invalid)
